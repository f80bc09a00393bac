"""Bearer tokens (RFC 6750 §2.1): the ``Authorization: Bearer <token>`` of a request, looked up
by its SHA-256 digest among the settings' tokens in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from contextvars import ContextVar

from aiohttp import web

from callserver.config.admin import AdminToken, token_digest

__all__ = [
    "bearer_token",
    "find_token",
    "holder",
    "request_token",
    "require_operator",
    "sees_customer",
]

# The token of the request being handled: set by the server's middlewares for each request
# (None until its token is known), read by the handlers and the audit log.
holder: ContextVar[AdminToken | None] = ContextVar("admin_token_holder", default=None)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), None without one."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def find_token(token: str, tokens: Iterable[AdminToken]) -> AdminToken | None:
    """The settings' entry of ``token``: every digest is compared, each in constant time, so
    how long it takes says nothing of which entry matched or how much of it."""
    digest = token_digest(token).encode("ascii")
    found = None
    for entry in tokens:
        if hmac.compare_digest(digest, entry.sha256.encode("ascii")):
            found = entry
    return found


def sees_customer(token: AdminToken, customer: str | None) -> bool:
    """An operator sees everything; a customer token only its own customer's objects."""
    return token.role == "operator" or (customer is not None and customer == token.customer)


def request_token() -> AdminToken:
    """The token of the request being handled (the server's middleware let it through)."""
    token = holder.get()
    assert token is not None, "a handler of /api runs behind the token check"
    return token


def require_operator(what: str) -> AdminToken:
    """The request's token when it is an operator's; else 403 saying ``what`` needs one."""
    token = request_token()
    if token.role != "operator":
        raise web.HTTPForbidden(
            text=f"{what} needs an operator token; {token.name} is a token of {token.customer}"
        )
    return token
