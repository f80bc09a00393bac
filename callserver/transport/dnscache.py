"""A bounded cache of DNS answers, each kept for its TTL (RFC 1035 §3.2.1, RFC 2308 §5).

Theory of operation
-------------------
Keys are (name, record type); values are the answer's records, an empty tuple for a negative
answer (NXDOMAIN or no records of that type), which RFC 2308 lets a resolver cache like any
other. Time comes in as ``now`` from the caller's clock, so tests move it by hand. When full,
the least recently used entry goes first; an expired entry is dropped when it is next read.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CacheStatistics", "TtlCache"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheStatistics:
    """Counters of one ``TtlCache`` (``entries`` is current)."""

    entries: int
    hits: int
    misses: int
    evicted: int


class TtlCache(Generic[K, V]):
    """Values kept until their TTL runs out, at most ``max_entries`` of them."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("a DNS cache holds at least one entry")
        self.max_entries = max_entries
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._hits = self._misses = self._evicted = 0

    def get(self, key: K, now: float) -> V | None:
        """The value stored under ``key`` if its TTL has not run out at ``now``, else None."""
        entry = self._entries.get(key)
        if entry is None or entry[0] <= now:
            if entry is not None:
                del self._entries[key]
            self._misses += 1
            return None
        self._entries.move_to_end(key)
        self._hits += 1
        return entry[1]

    def put(self, key: K, value: V, ttl: float, now: float) -> None:
        """Keep ``value`` for ``ttl`` seconds from ``now``; a TTL of 0 is not cached (RFC 1035
        §3.2.1: "zero values are interpreted to mean that the RR can only be used for the
        transaction in progress")."""
        if ttl <= 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = (now + ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self._evicted += 1

    def held(self, now: float) -> list[tuple[K, V, float]]:
        """Every entry still good at ``now`` with its seconds left, for display: a hit is not
        counted and nothing moves or is dropped."""
        return [(key, value, at - now) for key, (at, value) in self._entries.items() if at > now]

    def __len__(self) -> int:
        return len(self._entries)

    def statistics(self) -> CacheStatistics:
        """Entries held now, and hits, misses and evictions since the cache was made."""
        return CacheStatistics(
            entries=len(self._entries), hits=self._hits, misses=self._misses, evicted=self._evicted
        )
