"""Errors raised by the sans-IO SIP core (docs/architecture.md, "Bad input and errors")."""

from __future__ import annotations

__all__ = ["LocalProtocolError", "SipParseError"]


class SipParseError(ValueError):
    """A message (or one header field) does not follow the RFC 3261 §25 grammar.

    ``status_hint`` is the response a UAS should send when enough of the request parsed
    to build one: 400 syntax, 413 too large, 416 URI scheme, 420 extension, 505 version.
    ``partial`` is the Request or Response as far as it parsed (start line and header fields),
    when that much did, so the UAS can answer with ``status_hint``; None otherwise.
    """

    def __init__(self, msg: str, status_hint: int = 400, partial: object | None = None) -> None:
        super().__init__(msg)
        self.status_hint = status_hint
        self.partial = partial


class LocalProtocolError(RuntimeError):
    """Our own code asked a state machine for something its current state does not allow."""
