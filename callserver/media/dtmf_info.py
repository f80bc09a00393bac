"""DTMF in SIP INFO bodies: ``application/dtmf-relay`` and ``application/dtmf``.

Phones and PBXs that do not send RFC 4733 events (``dtmf``) send each key press as an INFO
request in the dialog (RFC 6086 carries the method; the bodies have no RFC of their own). These
helpers read a digit from such a body and write one. Sans-IO: bytes in, digits out.
"""

from __future__ import annotations

from callserver.media.dtmf import DIGITS

__all__ = ["build_dtmf_info", "parse_dtmf_info"]

_DEFAULT_INFO_MS = 100
_RELAY = "application/dtmf-relay"
_PLAIN = "application/dtmf"


def parse_dtmf_info(content_type: str, body: bytes) -> tuple[str, int] | None:
    """Read a digit from a SIP INFO body: ``application/dtmf-relay`` or ``application/dtmf``.

    ``application/dtmf-relay`` (the de-facto format, no RFC) has ``Signal=`` and ``Duration=``
    lines; keys are case-insensitive, spaces around ``=`` are allowed and lines end in CRLF or
    LF. ``Signal=10`` and ``11`` stand for ``*`` and ``#`` as some phones send them (12-15 for
    A-D, as event codes, RFC 4733 §3.2). A missing or unusable Duration means 100 ms.
    ``application/dtmf`` carries just the digit, optionally followed by a newline. Media types
    compare case-insensitively and parameters are ignored (RFC 3261 §20.15).

    Returns:
        ``(digit, duration_ms)``, or None for another content type or a body with no valid
        digit.
    """
    media_type = content_type.partition(";")[0].strip().lower()
    text = body.decode("utf-8", errors="replace")
    if media_type == _RELAY:
        return _parse_relay(text)
    if media_type == _PLAIN:
        digit = _digit(text)
        return None if digit is None else (digit, _DEFAULT_INFO_MS)
    return None


def build_dtmf_info(digit: str, duration_ms: int) -> tuple[str, bytes]:
    """The Content-Type and body of an ``application/dtmf-relay`` SIP INFO for ``digit``.

    Raises:
        ValueError: for a digit not in :data:`DIGITS` or a duration that is not positive.
    """
    if len(digit) != 1 or digit not in DIGITS:
        raise ValueError(f"{digit!r} is not a DTMF digit (one of {DIGITS})")
    if duration_ms <= 0:
        raise ValueError(f"duration {duration_ms} ms is not positive")
    return _RELAY, f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode("ascii")


def _parse_relay(text: str) -> tuple[str, int] | None:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        name, equals, value = line.partition("=")
        if equals:
            fields.setdefault(name.strip().lower(), value.strip())
    digit = _digit(fields.get("signal", ""))
    if digit is None:
        return None
    return digit, _milliseconds(fields.get("duration", ""))


def _digit(value: str) -> str | None:
    value = value.strip().upper()
    if len(value) == 1 and value in DIGITS:
        return value
    if value in ("10", "11", "12", "13", "14", "15"):
        return DIGITS[int(value)]
    return None


def _milliseconds(value: str) -> int:
    # At most five digits: an absurd value falls back to the default rather than raising.
    if len(value) <= 5 and value.isascii() and value.isdigit() and int(value) > 0:
        return int(value)
    return _DEFAULT_INFO_MS
