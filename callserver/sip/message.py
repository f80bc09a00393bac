"""SIP messages: requests, responses and their header fields (RFC 3261 §7).

Theory of operation
-------------------
A message keeps its header fields as an ordered list of ``(name, raw value)`` pairs, exactly as
they arrived (names normalised to their canonical long form, so ``v`` becomes ``Via``). Parsing a
header's *structure* (a Via, a name-addr, a CSeq) happens on demand through ``Headers.parsed``,
which caches the result until the field is changed. Most messages on the hot path only need Via,
From, To, Call-ID and CSeq; the rest stay strings and are copied verbatim into responses.

Serialisation writes the fields in order and always writes a Content-Length that matches the
body (RFC 3261 §20.14), so a message built in code cannot go out with a wrong length.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from callserver.sip.headers import Address, CSeq, Via, parse_address, parse_cseq, parse_vias
from callserver.sip.uri import Uri

__all__ = [
    "COMPACT_FORMS",
    "LIST_HEADERS",
    "Headers",
    "Message",
    "Request",
    "Response",
    "canonical_name",
    "reason_phrase",
]

T = TypeVar("T")

# RFC 3261 §7.3.3 compact forms, plus the ones later RFCs registered.
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "u": "Allow-Events",
    "y": "Identity",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

_CANONICAL: dict[str, str] = {
    name.lower(): name
    for name in (
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Authentication-Info",
        "Authorization",
        "Call-ID",
        "Call-Info",
        "Contact",
        "Content-Disposition",
        "Content-Encoding",
        "Content-Language",
        "Content-Length",
        "Content-Type",
        "CSeq",
        "Date",
        "Error-Info",
        "Event",
        "Expires",
        "From",
        "In-Reply-To",
        "Max-Forwards",
        "Min-Expires",
        "Min-SE",
        "MIME-Version",
        "Organization",
        "P-Asserted-Identity",
        "Priority",
        "Privacy",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Require",
        "RAck",
        "Reason",
        "Record-Route",
        "Refer-To",
        "Referred-By",
        "Reply-To",
        "Require",
        "Retry-After",
        "Route",
        "RSeq",
        "Server",
        "Session-Expires",
        "Subject",
        "Supported",
        "Timestamp",
        "To",
        "Unsupported",
        "User-Agent",
        "Via",
        "Warning",
        "WWW-Authenticate",
    )
}

_CANONICAL_FORMS: frozenset[str] = frozenset(_CANONICAL.values())

# Header fields whose values are comma-separated lists (RFC 3261 §7.3.1). Fields with
# comma-bearing values (Authorization, Date, ...) are never split.
LIST_HEADERS: frozenset[str] = frozenset(
    {
        "Accept",
        "Accept-Encoding",
        "Accept-Language",
        "Alert-Info",
        "Allow",
        "Allow-Events",
        "Call-Info",
        "Contact",
        "Content-Encoding",
        "Content-Language",
        "Error-Info",
        "In-Reply-To",
        "Proxy-Require",
        "Reason",
        "Record-Route",
        "Require",
        "Route",
        "Supported",
        "Unsupported",
        "Via",
        "Warning",
    }
)

_REASONS: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    422: "Session Interval Too Small",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}


def canonical_name(name: str) -> str:
    """Return the canonical long form of a header field name (RFC 3261 §7.3.3, §7.3.5).

    Compact forms expand (``v`` -> ``Via``); known names get their registered spelling;
    unknown names keep the case they arrived in (comparison is case-insensitive anyway).
    """
    if name in _CANONICAL_FORMS:
        return name
    lower = name.lower()
    if len(lower) == 1 and lower in COMPACT_FORMS:
        return COMPACT_FORMS[lower]
    return _CANONICAL.get(lower, name)


def reason_phrase(status: int) -> str:
    """Return the RFC 3261 §21 reason phrase for ``status`` (a class default if unknown)."""
    phrase = _REASONS.get(status)
    if phrase is not None:
        return phrase
    return _REASONS.get(status - status % 100, "Unknown")


class Headers:
    """An ordered, case-insensitive multi-map of header fields with a parse cache.

    Names are stored in canonical form. ``get_all`` returns each field line's raw value;
    ``values`` also splits list-valued fields at top-level commas (RFC 3261 §7.3.1).
    """

    __slots__ = ("_cache", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]
        self._cache: dict[str, object] = {}

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> Headers:
        """Return an independent copy (the parse cache is not shared)."""
        new = Headers()
        new._items = list(self._items)
        return new

    def get(self, name: str) -> str | None:
        """Return the first raw value of ``name``, or None."""
        name = canonical_name(name)
        for n, v in self._items:
            if n == name or n.lower() == name.lower():
                return v
        return None

    def get_all(self, name: str) -> list[str]:
        """Return the raw value of every field line named ``name``, in order."""
        name = canonical_name(name)
        lower = name.lower()
        return [v for n, v in self._items if n == name or n.lower() == lower]

    def values(self, name: str) -> list[str]:
        """Return all values of ``name``, list-valued fields split at top-level commas."""
        from callserver.sip.grammar import split_commas

        raw = self.get_all(name)
        if canonical_name(name) not in LIST_HEADERS:
            return raw
        out: list[str] = []
        for value in raw:
            out.extend(split_commas(value))
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        name = canonical_name(name)
        self._items.append((name, value))
        self._cache.pop(name, None)

    def prepend(self, name: str, value: str) -> None:
        """Insert a field line before all others (used for Via and Record-Route)."""
        name = canonical_name(name)
        self._items.insert(0, (name, value))
        self._cache.pop(name, None)

    def set(self, name: str, value: str) -> None:
        """Replace every field line named ``name`` with one, kept at the first one's place."""
        name = canonical_name(name)
        lower = name.lower()
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() == lower:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((name, value))
        self._items = out
        self._cache.pop(name, None)

    def remove(self, name: str) -> None:
        """Remove every field line named ``name``."""
        lower = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != lower]
        self._cache.pop(canonical_name(name), None)

    def parsed(self, name: str, parser: Callable[[list[str]], T]) -> T:
        """Return ``parser(values(name))``, cached until the field changes.

        Raises:
            SipParseError: from ``parser`` when the field is malformed (not cached).
        """
        name = canonical_name(name)
        try:
            return self._cache[name]  # type: ignore[return-value]
        except KeyError:
            result = parser(self.values(name))
            self._cache[name] = result
            return result

    def prime(self, name: str, value: object) -> None:
        """Cache ``value`` as what ``parsed(name, ...)`` returns until the field changes.

        For the message parser, which has already parsed the field while checking it.
        """
        self._cache[canonical_name(name)] = value


def _single(values: list[str], name: str) -> str:
    from callserver.sip.errors import SipParseError

    if not values:
        raise SipParseError(f"missing {name} header field", 400)
    if len(values) > 1:
        raise SipParseError(f"{name} appears more than once", 400)
    return values[0]


class _MessageBase(ABC):
    """Accessors shared by requests and responses; each parses once and caches."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def vias(self) -> list[Via]:
        """All Via values, topmost first (RFC 3261 §8.1.1.7)."""
        return self.headers.parsed("Via", parse_vias)

    def top_via(self) -> Via:
        """The topmost Via. Raises SipParseError when there is none."""
        from callserver.sip.errors import SipParseError

        vias = self.vias()
        if not vias:
            raise SipParseError("missing Via header field", 400)
        return vias[0]

    def from_(self) -> Address:
        """The From address (RFC 3261 §8.1.1.3)."""
        return self.headers.parsed("From", lambda v: parse_address(_single(v, "From")))

    def to(self) -> Address:
        """The To address (RFC 3261 §8.1.1.2)."""
        return self.headers.parsed("To", lambda v: parse_address(_single(v, "To")))

    def call_id(self) -> str:
        """The Call-ID value (RFC 3261 §8.1.1.4)."""
        return self.headers.parsed("Call-ID", lambda v: _single(v, "Call-ID").strip())

    def cseq(self) -> CSeq:
        """The CSeq (RFC 3261 §8.1.1.5)."""
        return self.headers.parsed("CSeq", lambda v: parse_cseq(_single(v, "CSeq")))

    def serialize(self) -> bytes:
        """Return the wire form, with a Content-Length matching the body."""
        lines = [self._start_line()]
        length_written = False
        for name, value in self.headers:
            if name == "Content-Length":
                if length_written:
                    continue
                value = str(len(self.body))
                length_written = True
            lines.append(f"{name}: {value}")
        if not length_written:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    @abstractmethod
    def _start_line(self) -> str:
        """The Request-Line or Status-Line, without CRLF."""


@dataclass(slots=True, eq=True)
class Request(_MessageBase):
    """A SIP request (RFC 3261 §7.1)."""

    method: str
    uri: Uri
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def _start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(slots=True, eq=True)
class Response(_MessageBase):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    version: str = "SIP/2.0"

    def _start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


Message = Request | Response
