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
from callserver.sip.names import (
    CANONICAL_FORMS,
    COMPACT_FORMS,
    LIST_HEADERS,
    canonical_name,
    reason_phrase,
)
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


_LOWER: dict[str, str] = {}
_LIST_KEYS = frozenset(name.lower() for name in LIST_HEADERS)  # as _key gives them


def _key(name: str) -> str:
    """The index key of a header name: its canonical form, lower-cased (memoised)."""
    key = _LOWER.get(name)
    if key is None:
        key = canonical_name(name).lower()
        if len(_LOWER) < 4096:
            _LOWER[name] = key
    return key


class Headers:
    """An ordered, case-insensitive multi-map of header fields with a parse cache.

    Names are stored in canonical form. ``get_all`` returns each field line's raw value;
    ``values`` also splits list-valued fields at top-level commas (RFC 3261 §7.3.1).
    Lookups go through an index by lower-case name, built on first use and dropped on any
    change, so a lookup costs one dict access however many fields the message has.
    """

    __slots__ = ("_cache", "_index", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = [(canonical_name(n), v) for n, v in items]
        self._index: dict[str, list[str]] | None = None
        self._cache: dict[str, object] = {}

    @classmethod
    def from_parsed(cls, items: list[tuple[str, str]], index: dict[str, list[str]]) -> Headers:
        """Adopt ``items`` (names already canonical) and their index by lower-case name.

        For the message parser, which builds both in one pass; no copy is made.
        """
        new = cls.__new__(cls)
        new._items = items
        new._index = index
        new._cache = {}
        return new

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
        new = Headers.from_parsed(list(self._items), {})
        new._index = None  # rebuilt on first lookup
        return new

    def _lookup(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for name, value in self._items:
                key = _key(name)
                values = index.get(key)
                if values is None:
                    index[key] = [value]
                else:
                    values.append(value)
            self._index = index
        return index

    def _changed(self, name: str) -> None:
        self._index = None
        self._cache.pop(name, None)
        self._cache.pop("+" + name, None)

    # get, get_all and values run some twenty times a call: the index and the memoised key
    # are read inline when they are there (what _lookup and _key would return).

    def get(self, name: str) -> str | None:
        """Return the first raw value of ``name``, or None."""
        index = self._index if self._index is not None else self._lookup()
        values = index.get(_LOWER.get(name) or _key(name))
        return values[0] if values else None

    def get_all(self, name: str) -> list[str]:
        """Return the raw value of every field line named ``name``, in order."""
        index = self._index if self._index is not None else self._lookup()
        return list(index.get(_LOWER.get(name) or _key(name), ()))

    def values(self, name: str) -> list[str]:
        """Return all values of ``name``, list-valued fields split at top-level commas."""
        index = self._index if self._index is not None else self._lookup()
        key = _LOWER.get(name) or _key(name)
        raw = index.get(key)
        if not raw:
            return []
        if key not in _LIST_KEYS:
            return list(raw)
        from callserver.sip.grammar import split_commas

        out: list[str] = []
        for value in raw:
            if "," in value:
                out.extend(split_commas(value))
            else:
                out.append(value.strip())
        return out

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _key(name) in self._lookup()

    def add(self, name: str, value: str) -> None:
        """Append a field line."""
        if name not in CANONICAL_FORMS:
            name = canonical_name(name)
        self._items.append((name, value))
        index = self._index
        if index is not None:
            index.setdefault(_key(name), []).append(value)
        self._cache.pop(name, None)

    def prepend(self, name: str, value: str) -> None:
        """Insert a field line before all others (used for Via and Record-Route)."""
        name = canonical_name(name)
        self._items.insert(0, (name, value))
        self._changed(name)

    def set(self, name: str, value: str) -> None:
        """Replace every field line named ``name`` with one, kept at the first one's place."""
        name = canonical_name(name)
        key = _key(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if _key(n) == key:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((name, value))
        self._items = out
        self._changed(name)

    def replace_first(self, name: str, value: str) -> None:
        """Replace the first value of list field ``name`` (the top Via), keeping the rest.

        The other values of the same field line stay on it, after ``value``.
        """
        from callserver.sip.grammar import split_commas

        key = _key(name)
        for position, (n, line) in enumerate(self._items):
            if _key(n) == key:
                rest = split_commas(line)[1:] if "," in line else []
                self._items[position] = (n, ", ".join([value, *rest]))
                self._changed(n)
                return
        self.add(name, value)

    def remove(self, name: str) -> None:
        """Remove every field line named ``name``."""
        key = _key(name)
        self._items = [(n, v) for n, v in self._items if _key(n) != key]
        self._changed(canonical_name(name))

    def parsed(self, name: str, parser: Callable[[list[str]], T]) -> T:
        """Return ``parser(values(name))``, cached until the field changes.

        ``name`` must be the canonical name (``"Via"``, not ``"v"``), as in ``prime``.

        Raises:
            SipParseError: from ``parser`` when the field is malformed (not cached).
        """
        try:
            return self._cache[name]  # type: ignore[return-value]
        except KeyError:
            result = parser(self.values(name))
            self._cache[name] = result
            return result

    def prime(self, name: str, value: object) -> None:
        """Cache ``value`` as what ``parsed(name, ...)`` returns until the field changes.

        For the message parser, which has already parsed the field while checking it, and
        for responses, which copy fields a request has parsed already.
        """
        self._cache[name] = value

    def primed(self, name: str) -> object | None:
        """The cached parse of ``name``, if there is one (see ``prime``)."""
        return self._cache.get(name)


def _single(values: list[str], name: str) -> str:
    from callserver.sip.errors import SipParseError

    if not values:
        raise SipParseError(f"missing {name} header field", 400)
    if len(values) > 1:
        raise SipParseError(f"{name} appears more than once", 400)
    return values[0]


def _parse_from(values: list[str]) -> Address:
    return parse_address(_single(values, "From"))


def _parse_to(values: list[str]) -> Address:
    return parse_address(_single(values, "To"))


def _parse_call_id(values: list[str]) -> str:
    return _single(values, "Call-ID").strip()


def _parse_cseq(values: list[str]) -> CSeq:
    return parse_cseq(_single(values, "CSeq"))


class _MessageBase(ABC):
    """Accessors shared by requests and responses; each parses once and caches."""

    __slots__ = ()
    headers: Headers
    body: bytes

    # Each accessor looks in the parse cache first (the parser primes it for the five
    # fields below), so the common case is one dict lookup and no parse at all.

    def vias(self) -> list[Via]:
        """All Via values, topmost first (RFC 3261 §8.1.1.7)."""
        cached = self.headers._cache.get("Via")
        return cached if cached is not None else self.headers.parsed("Via", parse_vias)  # type: ignore[return-value]

    def top_via(self) -> Via:
        """The topmost Via. Raises SipParseError when there is none."""
        vias = self.vias()
        if not vias:
            from callserver.sip.errors import SipParseError

            raise SipParseError("missing Via header field", 400)
        return vias[0]

    def from_(self) -> Address:
        """The From address (RFC 3261 §8.1.1.3)."""
        cached = self.headers._cache.get("From")
        return cached if cached is not None else self.headers.parsed("From", _parse_from)  # type: ignore[return-value]

    def to(self) -> Address:
        """The To address (RFC 3261 §8.1.1.2)."""
        cached = self.headers._cache.get("To")
        return cached if cached is not None else self.headers.parsed("To", _parse_to)  # type: ignore[return-value]

    def call_id(self) -> str:
        """The Call-ID value (RFC 3261 §8.1.1.4)."""
        cached = self.headers._cache.get("Call-ID")
        return cached if cached is not None else self.headers.parsed("Call-ID", _parse_call_id)  # type: ignore[return-value]

    def cseq(self) -> CSeq:
        """The CSeq (RFC 3261 §8.1.1.5)."""
        cached = self.headers._cache.get("CSeq")
        return cached if cached is not None else self.headers.parsed("CSeq", _parse_cseq)  # type: ignore[return-value]

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
