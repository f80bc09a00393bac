"""Lexical building blocks of the SIP grammar (RFC 3261 §25.1).

Theory of operation
-------------------
Header values reach these helpers already unfolded (the parser turns ``CRLF 1*WSP`` into a
single space, RFC 3261 §7.3.1), so linear white space is just SP and HT here. The helpers split
values at separators that sit outside quoted strings and angle brackets, check tokens, and
quote or unquote strings. They raise only :class:`SipParseError` with status 400.

They sit on the hot path (every Via, From, To and CSeq of every message goes through them),
so each takes a fast path when the value holds no quote or bracket. The parsers' memo tables
(``memo_put``) and the parameter-list shapes they share (``param_list``) live here too.
"""

from __future__ import annotations

import re
from typing import TypeVar

from callserver.sip.errors import SipParseError

__all__ = [
    "FIRST_PARAM_PATTERN",
    "LWS",
    "MEMO_KEY_MAX",
    "MEMO_MAX",
    "TOKEN_CHARS",
    "TOKEN_PATTERN",
    "Params",
    "close_quote",
    "find_control",
    "is_digits",
    "is_token",
    "memo_put",
    "param_list",
    "parse_params",
    "parse_port",
    "quote",
    "split_commas",
    "split_quoted",
    "unquote",
]

T = TypeVar("T")

LWS = " \t"
"""Linear white space once folding is undone (RFC 3261 §25.1 ``LWS``)."""

TOKEN_CHARS: frozenset[str] = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~"
)
"""The characters of an RFC 3261 §25.1 ``token``."""

Params = tuple[tuple[str, str | None], ...]
"""Parameters in order: (name as written, value or None when valueless)."""

TOKEN_PATTERN = r"[A-Za-z0-9\-.!%*_+`'~]+"
"""A ``token`` as a regular expression."""
_VALUE_PATTERN = r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+"
_VALUE_CHARS = TOKEN_CHARS | frozenset(":[]")
# ``*( SEMI token [ EQUAL value ] )`` without LWS, quotes or empty values: the shape nearly
# every parameter list has, checked in one C-level match (``parse_params`` accepts a superset).
_FAST_PARAMS = re.compile(rf"(?:;{TOKEN_PATTERN}(?:={_VALUE_PATTERN})?)*")
FIRST_PARAM_PATTERN = rf"(?:;({TOKEN_PATTERN})(?:=({_VALUE_PATTERN}))?(;.*)?)?"
"""An optional first parameter of the fast shape, as groups name, value, rest (see
``param_list``): what follows the part of a value that recurs from message to message."""
_PARAM_TAILS: dict[str, Params] = {}


def is_token(text: str) -> bool:
    """Return True if ``text`` is a non-empty ``token`` (RFC 3261 §25.1)."""
    return bool(text) and TOKEN_CHARS.issuperset(text)


# Control characters a header field may not hold: RFC 3261 §25.1 TEXT-UTF8char and qdtext
# exclude every CTL but the LWS characters SP and HT (CR and LF only in folding, undone before).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def find_control(text: str) -> int:
    """The index of the first control character ``text`` may not hold, or -1.

    RFC 3261 §25.1: TEXT-UTF8char and qdtext exclude every CTL but SP and HT; a control
    character is legal only as a quoted-pair inside a quoted-string (``\\`` then any of
    %x00-09 / %x0B-0C / %x0E-7F, RFC 4475 §3.1.1.2), never CR or LF.
    """
    found = _CONTROL.search(text)
    if found is None:
        return -1
    quoted = False
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if quoted and char == "\\" and index + 1 < end:
            if text[index + 1] in "\r\n":
                return index + 1
            index += 2
            continue
        if char == '"':
            quoted = not quoted
        elif _CONTROL.match(char):
            return index
        index += 1
    return -1


def is_digits(text: str) -> bool:
    """Return True if ``text`` is ``1*DIGIT`` in ASCII (``str.isdigit`` accepts too much)."""
    return bool(text) and text.isascii() and text.isdigit()


MEMO_MAX = 1024
"""Entries a parser's memo table holds before ``memo_put`` empties it."""
MEMO_KEY_MAX = 256
"""Longest text a memo table keeps: longer ones are parsed every time they come."""


def memo_put(table: dict[str, T], key: str, value: T) -> None:
    """Store ``value`` under ``key`` in a parser's memo table, emptying a full table first.

    The parsers memoise immutable results by the exact text they came from, since lines,
    start lines, URIs, addresses and parameter lists recur from message to message. Bounds
    on entries and on key length cap each table's memory whatever a peer sends.
    """
    if len(key) <= MEMO_KEY_MAX:
        if len(table) >= MEMO_MAX:
            table.clear()
        table[key] = value


def parse_port(text: str) -> int:
    """Parse a ``port`` (RFC 3261 §25.1) into 0..65535.

    Raises:
        SipParseError: (400) when ``text`` is not 1..5 digits or is out of range.
    """
    if not is_digits(text) or len(text) > 5 or int(text) > 65535:
        raise SipParseError(f"invalid port {text!r}", 400)
    return int(text)


def close_quote(text: str, start: int) -> int:
    """Return the index of the DQUOTE closing the quoted string opened at ``text[start]``.

    Raises:
        SipParseError: (400) when the quoted string is not terminated (RFC 3261 §25.1).
    """
    i = start + 1
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == '"':
            return i
        i += 1
    raise SipParseError("unterminated quoted string", 400)


def split_quoted(text: str, sep: str) -> list[str]:
    """Split ``text`` at every ``sep`` outside quoted strings and ``<...>``.

    Pieces are returned as written (not stripped). A quote left open raises.

    Raises:
        SipParseError: (400) on an unterminated quoted string.
    """
    if '"' not in text and "<" not in text:
        return text.split(sep)
    pieces: list[str] = []
    start = 0
    depth = 0
    i = 0
    end = len(text)
    while i < end:
        ch = text[i]
        if ch == '"':
            i = close_quote(text, i)
        elif ch == "<":
            depth += 1
        elif ch == ">" and depth:
            depth -= 1
        elif ch == sep and not depth:
            pieces.append(text[start:i])
            start = i + 1
        i += 1
    pieces.append(text[start:])
    return pieces


def split_commas(value: str) -> list[str]:
    """Split a list-valued header field at its top-level commas (RFC 3261 §7.3.1).

    Commas inside quoted strings (with backslash escapes) and inside ``<...>`` do not split.
    Each element is stripped of LWS; empty elements are dropped.

    Raises:
        SipParseError: (400) on an unterminated quoted string.
    """
    return [piece for raw in split_quoted(value, ",") if (piece := raw.strip(LWS))]


def unquote(text: str) -> str:
    """Return the content of a ``quoted-string`` with its ``quoted-pair``\\ s resolved.

    ``text`` must start and end with DQUOTE (surrounding LWS already stripped).
    See RFC 3261 §25.1 (``quoted-string``, ``quoted-pair``).

    Raises:
        SipParseError: (400) when ``text`` is not exactly one well-formed quoted string.
    """
    if len(text) < 2 or text[0] != '"' or close_quote(text, 0) != len(text) - 1:
        raise SipParseError(f"malformed quoted string {text!r}", 400)
    inner = text[1:-1]
    if "\\" not in inner:
        return inner
    out: list[str] = []
    i = 0
    while i < len(inner):
        if inner[i] == "\\":
            i += 1
            if inner[i] in "\r\n":
                raise SipParseError("CR or LF in a quoted-pair", 400)
        out.append(inner[i])
        i += 1
    return "".join(out)


def quote(text: str) -> str:
    """Return ``text`` as a ``quoted-string`` (RFC 3261 §25.1).

    Backslash, DQUOTE and control characters are escaped as ``quoted-pair``; CR and LF,
    which no quoted-pair may carry, become spaces so a header line can never be split.
    """
    out: list[str] = ['"']
    for ch in text:
        if ch in "\r\n":
            out.append(" ")
        elif ch in '"\\' or (ord(ch) < 0x20 and ch != "\t") or ch == "\x7f":
            out.append("\\" + ch)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _split_checked(text: str) -> Params:
    """Split ``;a=b;c``, which ``_FAST_PARAMS`` matched, into ``(("a", "b"), ("c", None))``."""
    out: list[tuple[str, str | None]] = []
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        out.append((name, value if eq else None))
    return tuple(out)


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )`` (RFC 3261 §25.1), e.g. ``";a=b;c"``.

    LWS around ``;`` and ``=`` is allowed; a value is a token, a host or a quoted-string
    (kept with its quotes).

    Returns:
        ``(("a", "b"), ("c", None))`` for ``";a=b;c"``; ``()`` for empty text.

    Raises:
        SipParseError: (400) on an empty or non-token name or a malformed value.
    """
    text = text.strip(LWS)
    if not text:
        return ()
    if _FAST_PARAMS.fullmatch(text):
        return _split_checked(text)
    return _parse_params_general(text)


def _parse_params_general(text: str) -> Params:
    if text[0] != ";":
        raise SipParseError(f"parameters must start with ';': {text!r}", 400)
    out: list[tuple[str, str | None]] = []
    for item in split_quoted(text[1:], ";"):
        name, eq, value = item.partition("=")
        name = name.strip(LWS)
        if not is_token(name):
            raise SipParseError(f"invalid parameter name {name!r}", 400)
        if not eq:
            out.append((name, None))
            continue
        value = value.strip(LWS)
        if value.startswith('"'):
            unquote(value)
        elif not value or not _VALUE_CHARS.issuperset(value):
            raise SipParseError(f"invalid value for parameter {name!r}: {value!r}", 400)
        out.append((name, value))
    return tuple(out)


def param_list(name: str | None, value: str | None, rest: str | None) -> Params | None:
    """The parameters matched by ``FIRST_PARAM_PATTERN``, or None if they are unusual.

    ``name`` and ``value`` are the first parameter's, the one that changes from message to
    message (the branch of a Via, the tag of a From or To); ``rest``, from its ``;`` on, is
    what recurs, so its parse is memoised. None sends the caller to its general path.
    """
    if name is None:
        return ()
    if rest is None:
        return ((name, value),)
    tail = _PARAM_TAILS.get(rest)
    if tail is None:
        try:
            tail = parse_params(rest)
        except SipParseError:
            return None
        memo_put(_PARAM_TAILS, rest, tail)
    return ((name, value), *tail)
