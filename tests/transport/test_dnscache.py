"""The DNS answer cache: TTL expiry on an injected clock, a size bound, zero TTLs not kept."""

from __future__ import annotations

import pytest

from callserver.transport.dnscache import TtlCache


def test_an_entry_lives_for_its_ttl_and_not_a_moment_longer() -> None:
    """Stored at 100 with TTL 60: there at 159.9, gone at 160."""
    cache: TtlCache[str, tuple[str, ...]] = TtlCache(8)
    cache.put("a", ("192.0.2.1",), 60, now=100.0)
    assert cache.get("a", now=159.9) == ("192.0.2.1",)
    assert cache.get("a", now=160.0) is None
    assert len(cache) == 0


def test_a_negative_answer_is_cached_like_any_other() -> None:
    """An empty answer (NXDOMAIN) is a value, not a miss (RFC 2308)."""
    cache: TtlCache[str, tuple[str, ...]] = TtlCache(8)
    cache.put("nx", (), 30, now=0.0)
    assert cache.get("nx", now=29.0) == ()


def test_a_zero_ttl_is_not_kept() -> None:
    """TTL 0 means use once: nothing is stored, and an older value under the key goes."""
    cache: TtlCache[str, int] = TtlCache(8)
    cache.put("k", 1, 60, now=0.0)
    cache.put("k", 2, 0, now=1.0)
    assert cache.get("k", now=1.0) is None


def test_the_least_recently_used_entry_goes_when_full() -> None:
    """With room for two, reading "a" keeps it and "b" is evicted by "c"."""
    cache: TtlCache[str, int] = TtlCache(2)
    cache.put("a", 1, 60, now=0.0)
    cache.put("b", 2, 60, now=0.0)
    assert cache.get("a", now=1.0) == 1
    cache.put("c", 3, 60, now=1.0)
    assert cache.get("b", now=1.0) is None
    assert cache.get("a", now=1.0) == 1 and cache.get("c", now=1.0) == 3
    stats = cache.statistics()
    assert (stats.entries, stats.evicted, stats.hits, stats.misses) == (2, 1, 3, 1)


def test_a_cache_without_room_is_refused() -> None:
    """max_entries below 1 is a programming error, said at once."""
    with pytest.raises(ValueError, match="at least one"):
        TtlCache(0)


def test_held_lists_live_entries_with_time_left_and_counts_nothing() -> None:
    """held gives each entry not expired with its seconds left, and is no hit nor miss."""
    cache: TtlCache[str, int] = TtlCache(4)
    cache.put("a", 1, 10.0, 100.0)
    cache.put("b", 2, 60.0, 100.0)
    assert cache.held(105.0) == [("a", 1, 5.0), ("b", 2, 55.0)]
    assert cache.held(120.0) == [("b", 2, 40.0)]
    stats = cache.statistics()
    assert (stats.hits, stats.misses, stats.entries) == (0, 0, 2)
