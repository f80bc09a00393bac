"""Query parameters of the API's lists, checked: a bad one is 400 naming it and its form.

A parameter the resource does not know is refused too (a misspelt ``from`` would otherwise
widen a query silently). ``customer_scope`` applies a token's customer: a customer token may
name only its own customer (another is 404, as a customer that does not exist) and always
sees only its own records.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from aiohttp import web

from callserver.admin.auth import request_token
from callserver.cdr.export import parse_time

__all__ = [
    "bad",
    "check_known",
    "choice",
    "customer_scope",
    "page_of",
    "query_int",
    "query_period",
    "query_text",
    "query_time",
]

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000


def bad(name: str, message: str) -> web.HTTPBadRequest:
    """The 400 of parameter ``name``."""
    return web.HTTPBadRequest(text=f"query parameter {name}: {message}")


def check_known(request: web.Request, known: Collection[str]) -> None:
    """400 for a parameter not in ``known``, or one given twice."""
    for name in request.query:
        if name not in known:
            expected = ", ".join(sorted(known)) or "no parameter"
            raise bad(name, f"unknown here; this request takes {expected}")
        if len(request.query.getall(name)) > 1:
            raise bad(name, "given more than once; give it once")


def query_text(request: web.Request, name: str) -> str | None:
    """The parameter's value, None when absent; 400 when empty."""
    value = request.query.get(name)
    if value is None:
        return None
    if not value.strip():
        raise bad(name, "is empty; leave it out or give a value")
    return value.strip()


def choice(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    """The parameter's value, one of ``choices``; None when absent; else 400 naming them."""
    value = query_text(request, name)
    if value is None or value in choices:
        return value
    raise bad(name, f"{value!r} is not one of: {', '.join(sorted(choices))}")


def query_time(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC unless it says), as ``callserver cdr --since``."""
    value = query_text(request, name)
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise bad(name, str(exc)) from None


def query_period(request: web.Request) -> tuple[datetime | None, datetime | None]:
    """``from`` and ``to`` (``query_time``); 400 when ``to`` is not after ``from``."""
    since, until = query_time(request, "from"), query_time(request, "to")
    if since and until and until <= since:
        raise bad("to", f"{until.isoformat()} is not after from")
    return since, until


def query_int(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """A whole number in [low, high]; ``default`` when absent."""
    value = query_text(request, name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()) or not low <= int(value) <= high:
        raise bad(name, f"{value!r} is not a whole number from {low} to {high}")
    return int(value)


def page_of(request: web.Request) -> tuple[int, int]:
    """A list's ``offset`` (from 0) and ``limit`` (1 to ``MAX_LIMIT``, ``DEFAULT_LIMIT``
    when absent), as ``/api/cdrs`` pages its records."""
    offset = query_int(request, "offset", default=0, low=0, high=10**9)
    return offset, query_int(request, "limit", default=DEFAULT_LIMIT, low=1, high=MAX_LIMIT)


def customer_scope(request: web.Request) -> str | None:
    """The customer a request may see: a customer token's own (naming another is 404), an
    operator's ``customer`` parameter (None: every customer)."""
    token = request_token()
    wanted = query_text(request, "customer")
    if token.role == "operator":
        return wanted
    if wanted is not None and wanted != token.customer:
        raise web.HTTPNotFound(text=f"no customer {wanted}: {token.name} sees {token.customer}")
    return token.customer
