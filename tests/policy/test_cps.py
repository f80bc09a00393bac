"""Tests for call-rate limits: token buckets per trunk and per source address."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.policy.cps import CallRateLimiter, RateRefusal, RateStatistics, TokenBucket


def test_bucket_starts_full_and_empties() -> None:
    """A new bucket admits ``burst`` takes at one instant, then refuses."""
    bucket = TokenBucket(rate=2.0, burst=3.0)
    assert [bucket.take(10.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.tokens(10.0) == 0.0


def test_bucket_refills_continuously() -> None:
    """Tokens come back at ``rate`` a second, in fractions too."""
    bucket = TokenBucket(rate=4.0, burst=1.0)
    assert bucket.take(0.0)
    assert not bucket.take(0.2)
    assert bucket.tokens(0.2) == pytest.approx(0.8)
    assert bucket.take(0.25)


def test_bucket_never_holds_more_than_burst() -> None:
    """A long idle time fills the bucket only up to ``burst``."""
    bucket = TokenBucket(rate=10.0, burst=2.0)
    bucket.take(0.0)
    assert bucket.tokens(1000.0) == 2.0
    assert bucket.is_full(1000.0)


def test_bucket_ignores_a_clock_stepping_back() -> None:
    """An earlier ``now`` refills nothing and does not move the refill point back."""
    bucket = TokenBucket(rate=1.0, burst=1.0)
    assert bucket.take(100.0)
    assert not bucket.take(50.0)
    assert bucket.tokens(100.5) == pytest.approx(0.5)


def test_bucket_take_of_several_tokens_is_all_or_nothing() -> None:
    """A take of more tokens than held takes none."""
    bucket = TokenBucket(rate=1.0, burst=3.0)
    assert not bucket.take(0.0, tokens=3.5)
    assert bucket.take(0.0, tokens=2.5)
    assert bucket.tokens(0.0) == pytest.approx(0.5)


def test_retry_after_is_time_to_the_next_token() -> None:
    """retry_after is 0 with a token held, else the wait for the missing fraction."""
    bucket = TokenBucket(rate=2.0, burst=1.0)
    assert bucket.retry_after(0.0) == 0.0
    bucket.take(0.0)
    assert bucket.retry_after(0.0) == pytest.approx(0.5)
    assert bucket.retry_after(0.3) == pytest.approx(0.2)
    assert bucket.retry_after(0.5) == 0.0
    assert bucket.retry_after(0.5, tokens=2.0) == math.inf


@pytest.mark.parametrize(
    ("rate", "burst", "message"),
    [
        (0.0, 1.0, "call rate 0.0 is not a positive"),
        (-1.0, 1.0, "call rate -1.0"),
        (math.nan, 1.0, "call rate nan"),
        (math.inf, 1.0, "call rate inf"),
        (1.0, 0.5, "burst 0.5 is less than one call"),
    ],
)
def test_bad_rate_or_burst_is_rejected(rate: float, burst: float, message: str) -> None:
    """A rate that is not positive and finite, or a burst under one call, raises ValueError."""
    with pytest.raises(ValueError, match=message):
        TokenBucket(rate, burst)


def test_reconfigure_keeps_tokens_clamped_to_the_new_burst() -> None:
    """Reconfiguring keeps the level, cut down to a smaller burst, and refills at the new rate."""
    bucket = TokenBucket(rate=1.0, burst=10.0)
    bucket.take(0.0, tokens=2.0)
    bucket.reconfigure(rate=1.0, burst=20.0)
    assert bucket.tokens(0.0) == 8.0
    bucket.reconfigure(rate=5.0, burst=4.0)
    assert bucket.tokens(0.0) == 4.0
    bucket.take(0.0, tokens=4.0)
    assert bucket.tokens(0.5) == pytest.approx(2.5)


def test_trunk_bucket_limits_the_trunk() -> None:
    """A trunk's calls beyond its burst are refused with the wait for its next token."""
    limiter = CallRateLimiter({"trunk:gw1": (2.0, 2.0)})
    assert limiter.admit(["trunk:gw1"], 0.0) is None
    assert limiter.admit(["trunk:gw1"], 0.0) is None
    assert limiter.admit(["trunk:gw1"], 0.0) == RateRefusal(key="trunk:gw1", retry_after=0.5)
    assert limiter.admit(["trunk:gw1"], 0.5) is None


def test_keys_without_a_bucket_are_unlimited() -> None:
    """A trunk without a rate, and sources when there is no default rate, are never refused."""
    limiter = CallRateLimiter({"trunk:gw1": (1.0, 1.0)})
    for _ in range(100):
        assert limiter.admit(["source:192.0.2.1", "trunk:gw2"], 0.0) is None
    assert limiter.tokens("trunk:gw2", 0.0) is None
    assert limiter.statistics().source_buckets == 0


def test_source_buckets_are_made_on_demand_at_the_default_rate() -> None:
    """Each new source gets its own full bucket at the default rate, burst at least 1."""
    limiter = CallRateLimiter(default_rate=0.5)
    assert limiter.admit(["source:192.0.2.1"], 0.0) is None
    refusal = limiter.admit(["source:192.0.2.1"], 0.0)
    assert refusal == RateRefusal(key="source:192.0.2.1", retry_after=2.0)
    assert limiter.admit(["source:192.0.2.2"], 0.0) is None
    assert limiter.statistics().source_buckets == 2


def test_refused_call_takes_no_token_from_any_bucket() -> None:
    """A call refused by its source's bucket leaves its trunk's tokens alone, and vice versa."""
    limiter = CallRateLimiter({"trunk:gw1": (1.0, 5.0)}, default_rate=1.0)
    assert limiter.admit(["source:192.0.2.1", "trunk:gw1"], 0.0) is None
    refusal = limiter.admit(["source:192.0.2.1", "trunk:gw1"], 0.0)
    assert isinstance(refusal, RateRefusal)
    assert refusal.key == "source:192.0.2.1"
    assert limiter.tokens("trunk:gw1", 0.0) == 4.0
    limiter.update_rates({"trunk:gw1": (1.0, 1.0)})
    assert limiter.admit(["source:192.0.2.2", "trunk:gw1"], 0.0) is None
    assert limiter.admit(["source:192.0.2.3", "trunk:gw1"], 0.0) is not None
    assert limiter.tokens("source:192.0.2.3", 0.0) == 1.0


def test_refusal_waits_for_every_empty_bucket() -> None:
    """With two empty buckets the refusal names the first and waits for the slower."""
    limiter = CallRateLimiter({"trunk:gw1": (0.25, 1.0)}, default_rate=1.0)
    assert limiter.admit(["source:192.0.2.1", "trunk:gw1"], 0.0) is None
    refusal = limiter.admit(["source:192.0.2.1", "trunk:gw1"], 0.0)
    assert refusal == RateRefusal(key="source:192.0.2.1", retry_after=4.0)


def test_flood_from_one_source_never_starves_others() -> None:
    """Thousands of attempts from one source take tokens from no other source or trunk."""
    limiter = CallRateLimiter({"trunk:a": (10.0, 10.0), "trunk:b": (10.0, 10.0)}, default_rate=2.0)
    flood = ["source:198.51.100.66", "trunk:a"]
    admitted = 0
    for step in range(5000):
        admitted += limiter.admit(flood, step * 1e-7) is None
    assert admitted == 2
    assert limiter.tokens("trunk:a", 0.001) == pytest.approx(8.0, abs=0.01)
    assert limiter.tokens("trunk:b", 0.001) == 10.0
    for peer in range(8):
        assert limiter.admit([f"source:192.0.2.{peer}", "trunk:a"], 0.001) is None
    for peer in range(10):
        assert limiter.admit([f"source:203.0.113.{peer}", "trunk:b"], 0.001) is None
    assert limiter.statistics().refused == {"source": 4998}


def test_source_buckets_are_bounded_and_evict_the_least_recent() -> None:
    """Past max_keys the least recently used source bucket goes; a returning source starts full."""
    limiter = CallRateLimiter(default_rate=1.0, max_keys=3)
    for host in (1, 2, 3):
        limiter.admit([f"source:192.0.2.{host}"], 0.0)
    limiter.admit(["source:192.0.2.1"], 5.0)
    limiter.admit(["source:192.0.2.4"], 5.0)
    assert limiter.tokens("source:192.0.2.2", 5.0) is None
    assert limiter.tokens("source:192.0.2.1", 5.0) == 0.0
    assert limiter.statistics() == RateStatistics(
        admitted=5, refused={}, source_buckets=3, evicted=1, evicted_active=0
    )


def test_spoofed_source_flood_keeps_memory_bounded() -> None:
    """Twenty thousand distinct sources at once hold no more than max_keys buckets."""
    limiter = CallRateLimiter({"trunk:a": (1000.0, 1000.0)}, default_rate=1.0, max_keys=100)
    for host in range(20_000):
        limiter.admit([f"source:10.{host >> 16}.{(host >> 8) & 255}.{host & 255}"], 0.0)
    stats = limiter.statistics()
    assert stats.source_buckets == 100
    assert stats.evicted == stats.evicted_active == 19_900
    assert limiter.tokens("trunk:a", 0.0) == 1000.0


def test_update_rates_keeps_tokens_and_drops_removed_keys() -> None:
    """A reload keeps each bucket's tokens (clamped), makes new ones full and drops the rest."""
    limiter = CallRateLimiter({"trunk:a": (1.0, 10.0), "trunk:b": (1.0, 10.0)})
    for _ in range(4):
        limiter.admit(["trunk:a", "trunk:b"], 0.0)
    limiter.update_rates({"trunk:a": (1.0, 20.0), "trunk:c": (1.0, 3.0)})
    assert limiter.tokens("trunk:a", 0.0) == 6.0
    assert limiter.tokens("trunk:b", 0.0) is None
    assert limiter.tokens("trunk:c", 0.0) == 3.0
    limiter.update_rates({"trunk:a": (1.0, 2.0)})
    assert limiter.tokens("trunk:a", 0.0) == 2.0


def test_update_rates_default_rate_keep_change_or_remove() -> None:
    """Leaving default_rate out keeps it; a new one reconfigures sources; None drops them."""
    limiter = CallRateLimiter(default_rate=3.0)
    limiter.admit(["source:192.0.2.1"], 0.0)
    limiter.update_rates({})
    assert limiter.tokens("source:192.0.2.1", 0.0) == 2.0
    limiter.update_rates({}, default_rate=1.0)
    assert limiter.tokens("source:192.0.2.1", 0.0) == 1.0
    limiter.update_rates({}, default_rate=None)
    assert limiter.statistics().source_buckets == 0
    assert limiter.admit(["source:192.0.2.1"] * 3, 0.0) is None


def test_configured_source_key_keeps_its_bucket() -> None:
    """A source given its own rate on reload keeps the tokens its on-demand bucket had."""
    limiter = CallRateLimiter(default_rate=5.0)
    limiter.admit(["source:192.0.2.1"], 0.0)
    limiter.update_rates({"source:192.0.2.1": (50.0, 50.0)})
    assert limiter.tokens("source:192.0.2.1", 0.0) == 4.0
    assert limiter.statistics().source_buckets == 0


def test_bad_reload_changes_nothing() -> None:
    """A reload with a bad rate raises ValueError and the old buckets stay."""
    limiter = CallRateLimiter({"trunk:a": (1.0, 2.0)})
    limiter.admit(["trunk:a"], 0.0)
    with pytest.raises(ValueError, match=r"burst 0\.5"):
        limiter.update_rates({"trunk:a": (9.0, 9.0), "trunk:b": (1.0, 0.5)})
    with pytest.raises(ValueError, match="call rate -1"):
        limiter.update_rates({"trunk:a": (9.0, 9.0)}, default_rate=-1.0)
    assert limiter.tokens("trunk:a", 0.0) == 1.0
    with pytest.raises(ValueError, match="max_keys"):
        CallRateLimiter(max_keys=0)


@settings(deadline=None)
@given(
    rate=st.floats(0.5, 200.0),
    burst=st.floats(1.0, 50.0),
    gaps=st.lists(st.floats(0.0, 0.05), min_size=1, max_size=400),
)
def test_admitted_never_exceed_rate_times_time_plus_burst(
    rate: float, burst: float, gaps: list[float]
) -> None:
    """Over any stretch of attempts, a key admits at most rate·t + burst calls."""
    limiter = CallRateLimiter({"trunk:a": (rate, burst)})
    now = 0.0
    times: list[float] = []
    for gap in gaps:
        now += gap
        if limiter.admit(["trunk:a"], now) is None:
            times.append(now)
    admitted = np.array(times)
    for first, start in enumerate(times):
        # Window [start, admitted[last]] holds last - first + 1 admitted calls.
        counts = np.arange(1, len(times) - first + 1)
        assert np.all(counts <= rate * (admitted[first:] - start) + burst + 1e-9)


@settings(deadline=None)
@given(rate=st.floats(0.5, 200.0), burst=st.floats(1.0, 50.0), calls=st.integers(1, 300))
def test_calls_spaced_at_the_rate_are_all_admitted(rate: float, burst: float, calls: int) -> None:
    """Calls arriving no faster than the rate are never refused."""
    limiter = CallRateLimiter({"trunk:a": (rate, burst)})
    spacing = 1.000001 / rate
    assert all(limiter.admit(["trunk:a"], n * spacing) is None for n in range(calls))


def test_one_simulated_second_at_fixed_rate() -> None:
    """Attempts every 1/1024 s for one second at 8 CPS, burst 4, admit exactly 4 + 8."""
    limiter = CallRateLimiter({"trunk:a": (8.0, 4.0)})
    # Binary fractions keep the refill arithmetic exact, so the boundary call at 1 s counts.
    admitted = sum(limiter.admit(["trunk:a"], tick / 1024) is None for tick in range(1025))
    assert admitted == 12
    assert limiter.statistics().refused == {"trunk": 1025 - 12}


def test_a_refusal_decided_elsewhere_counts_by_kind() -> None:
    """A refusal by a cluster's shared bucket counts with the limiter's own, by kind."""
    limiter = CallRateLimiter()
    limiter.count_refusal("trunk:gw1")
    assert limiter.statistics().refused == {"trunk": 1}
