"""Call-rate (CPS) limits: token buckets per trunk and per source address.

Theory of operation
-------------------
A :class:`TokenBucket` holds up to ``burst`` tokens and refills continuously at ``rate`` tokens
a second; a new call takes one. Time is the caller's ``now`` (monotonic seconds): the bucket
refills lazily by the time passed since it was last looked at, and a clock that steps back
refills nothing.

A :class:`CallRateLimiter` keeps one bucket per key: ``trunk:<id>`` and any other key with a
configured ``(rate, burst)``, and ``source:<address>`` buckets made on demand at the default
rate. :meth:`CallRateLimiter.admit` names every key a new call counts against and is all or
nothing: a call refused by its source's bucket takes no token from its trunk's, so a flood from
one source empties only that source's bucket and never starves other sources or trunks. A key
with no bucket (a trunk without a CPS limit, any source when there is no default rate) is
unlimited.

Source buckets are bounded in number (``max_keys``), so a flood from spoofed addresses cannot
grow memory without bound: making a new one when the table is full evicts the least recently
used. That one has normally been idle long enough to be full again, and a full bucket is exactly
what a new one would be, so nothing is lost. If even the least recently used one is not full,
the table is being flooded from more than ``max_keys`` addresses at once; evicting it then only
hands its source a fresh bucket, which any new address gets anyway (counted as
``evicted_active``).

:meth:`CallRateLimiter.update_rates` is a reload: buckets keep their tokens, clamped to the new
burst.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "SOURCE_PREFIX",
    "CallRateLimiter",
    "RateRefusal",
    "RateStatistics",
    "TokenBucket",
]

SOURCE_PREFIX = "source:"
"""Keys with this prefix get an on-demand bucket at the default rate."""


class _Keep(Enum):
    KEEP = "keep"


_KEEP = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class RateRefusal:
    """The call was refused by ``key``'s bucket; all buckets have a token in ``retry_after`` s."""

    key: str
    retry_after: float


@dataclass(frozen=True, slots=True)
class RateStatistics:
    """Counters of a :class:`CallRateLimiter` since it was made.

    ``refused`` counts refusals by the kind of the refusing key (``trunk``, ``source``: the text
    before the first colon). ``source_buckets`` is how many on-demand buckets are held now.
    """

    admitted: int
    refused: Mapping[str, int]
    source_buckets: int
    evicted: int
    evicted_active: int


def _check_rate(rate: float, burst: float) -> None:
    if not 0 < rate < math.inf:
        raise ValueError(f"call rate {rate} is not a positive number of calls a second")
    # A bucket that cannot hold one whole token would never admit a call.
    if not 1 <= burst < math.inf:
        raise ValueError(f"burst {burst} is less than one call")


class TokenBucket:
    """A token bucket of ``rate`` tokens a second holding at most ``burst``; it starts full.

    Raises:
        ValueError: if ``rate`` is not positive and finite, or ``burst`` is less than 1.
    """

    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

    def __init__(self, rate: float, burst: float) -> None:
        _check_rate(rate, burst)
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = self._burst
        self._stamp: float | None = None  # the ``now`` the tokens were counted at

    @property
    def rate(self) -> float:
        """Tokens added a second."""
        return self._rate

    @property
    def burst(self) -> float:
        """The most tokens the bucket holds."""
        return self._burst

    def tokens(self, now: float) -> float:
        """The tokens in the bucket at ``now``."""
        self._refill(now)
        return self._tokens

    def take(self, now: float, tokens: float = 1.0) -> bool:
        """Take ``tokens`` if the bucket holds that many at ``now``; otherwise take nothing.

        Returns:
            True if they were taken.
        """
        self._refill(now)
        if self._tokens < tokens:
            return False
        self._tokens -= tokens
        return True

    def retry_after(self, now: float, tokens: float = 1.0) -> float:
        """Seconds from ``now`` until the bucket holds ``tokens``: 0 if it does now.

        Infinite if ``tokens`` is more than the bucket can hold.
        """
        self._refill(now)
        missing = tokens - self._tokens
        if missing <= 0:
            return 0.0
        if tokens > self._burst:
            return math.inf
        return missing / self._rate

    def is_full(self, now: float) -> bool:
        """Whether the bucket holds ``burst`` tokens at ``now`` (then it is as good as new)."""
        return self.tokens(now) >= self._burst

    def reconfigure(self, rate: float, burst: float) -> None:
        """Change rate and burst, keeping the tokens held (clamped to the new burst).

        The time since the bucket was last looked at refills at the new rate.

        Raises:
            ValueError: as the constructor.
        """
        _check_rate(rate, burst)
        self._rate = float(rate)
        self._burst = float(burst)
        self._tokens = min(self._tokens, self._burst)

    def _refill(self, now: float) -> None:
        stamp = self._stamp
        if stamp is None or now > stamp:
            if stamp is not None:
                self._tokens = min(self._burst, self._tokens + (now - stamp) * self._rate)
            self._stamp = now


class CallRateLimiter:
    """Token buckets per key; see the module docstring.

    Args:
        rates: ``(rate, burst)`` of each key with its own bucket, e.g. ``"trunk:gw1"``.
        default_rate: calls a second of each ``source:`` key without its own bucket (burst
            the same, at least 1); None leaves sources unlimited.
        max_keys: the most on-demand source buckets held at once.

    Raises:
        ValueError: for a rate that is not positive, a burst below 1 or ``max_keys`` below 1.
    """

    def __init__(
        self,
        rates: Mapping[str, tuple[float, float]] | None = None,
        *,
        default_rate: float | None = None,
        max_keys: int = 10_000,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"max_keys is {max_keys}, less than 1")
        self.max_keys = max_keys
        self._configured: dict[str, TokenBucket] = {}
        self._sources: OrderedDict[str, TokenBucket] = OrderedDict()  # least recent first
        self._default: tuple[float, float] | None = None
        self._admitted = self._evicted = self._evicted_active = 0
        self._refused: dict[str, int] = {}
        self.update_rates(rates or {}, default_rate=default_rate)

    def admit(self, keys: Sequence[str], now: float) -> RateRefusal | None:
        """Take one token from the bucket of every key in ``keys``, or none at all.

        Args:
            keys: what the call counts against, e.g. ``["source:192.0.2.7", "trunk:gw1"]``;
                a key named twice counts once.
            now: monotonic seconds.

        Returns:
            None if the call is admitted; otherwise a :class:`RateRefusal` naming the first
            key whose bucket is empty, with the wait until every bucket has a token.
        """
        buckets = [
            (key, bucket)
            for key in dict.fromkeys(keys)
            if (bucket := self._bucket(key, now)) is not None
        ]
        waits = [(bucket.retry_after(now), key) for key, bucket in buckets]
        refused = [(wait, key) for wait, key in waits if wait > 0]
        if refused:
            key = refused[0][1]
            kind = key.partition(":")[0]
            self._refused[kind] = self._refused.get(kind, 0) + 1
            return RateRefusal(key=key, retry_after=max(wait for wait, _ in refused))
        for _, bucket in buckets:
            bucket.take(now)
        self._admitted += 1
        return None

    def update_rates(
        self,
        rates: Mapping[str, tuple[float, float]],
        *,
        default_rate: float | _Keep | None = _KEEP,
    ) -> None:
        """Replace the configured ``(rate, burst)`` per key (a reload); tokens are kept.

        A bucket that stays keeps its tokens, clamped to its new burst; a key left out of
        ``rates`` loses its bucket (a ``source:`` key then falls back to the default rate).

        Args:
            rates: ``(rate, burst)`` per key.
            default_rate: the new default rate of sources, None for unlimited; leave it out
                to keep the current one.

        Raises:
            ValueError: for a bad rate or burst (then nothing changes).
        """
        for rate, burst in rates.values():
            _check_rate(rate, burst)
        default = self._default if default_rate is _KEEP else _default_pair(default_rate)
        configured: dict[str, TokenBucket] = {}
        for key, (rate, burst) in rates.items():
            bucket = self._configured.get(key) or self._sources.pop(key, None)
            if bucket is None:
                bucket = TokenBucket(rate, burst)
            else:
                bucket.reconfigure(rate, burst)
            configured[key] = bucket
        self._configured = configured
        self._default = default
        if default is None:
            self._sources.clear()
        else:
            for bucket in self._sources.values():
                bucket.reconfigure(*default)

    def count_refusal(self, key: str) -> None:
        """Count a refusal decided elsewhere (a cluster's shared bucket) as this limiter's."""
        kind = key.partition(":")[0]
        self._refused[kind] = self._refused.get(kind, 0) + 1

    def tokens(self, key: str, now: float) -> float | None:
        """The tokens in ``key``'s bucket at ``now``; None if no bucket is held for ``key``.

        No bucket means unlimited, or a source not seen (or evicted) since: it would get a
        full one.
        """
        bucket = self._configured.get(key) or self._sources.get(key)
        return None if bucket is None else bucket.tokens(now)

    def statistics(self) -> RateStatistics:
        """A snapshot of the counters and how many source buckets are held now."""
        return RateStatistics(
            admitted=self._admitted,
            refused=dict(self._refused),
            source_buckets=len(self._sources),
            evicted=self._evicted,
            evicted_active=self._evicted_active,
        )

    def _bucket(self, key: str, now: float) -> TokenBucket | None:
        bucket = self._configured.get(key)
        if bucket is not None:
            return bucket
        if self._default is None or not key.startswith(SOURCE_PREFIX):
            return None
        bucket = self._sources.get(key)
        if bucket is not None:
            self._sources.move_to_end(key)
            return bucket
        if len(self._sources) >= self.max_keys:
            _, oldest = self._sources.popitem(last=False)
            self._evicted += 1
            if not oldest.is_full(now):
                self._evicted_active += 1
        bucket = self._sources[key] = TokenBucket(*self._default)
        return bucket


def _default_pair(rate: float | None) -> tuple[float, float] | None:
    if rate is None:
        return None
    burst = max(1.0, rate)
    _check_rate(rate, burst)
    return (rate, burst)
