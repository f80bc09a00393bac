"""The trunks' call rates shared by the nodes: one token bucket per trunk in Redis.

Theory of operation
-------------------
A trunk with a ``cps`` has one bucket for the whole cluster, the hash ``cs:cps:trunk:<id>``
(``tokens``, ``stamp``): :data:`BUCKET_LUA` refills it by the time passed on Redis's own clock
(``TIME``: one clock for every node, none of theirs) and takes a token, or answers how long
until one is there. It runs inside the channels' acquire script (``cluster.channels``), so one
round trip checks a new call's trunk rate and its channels, in that order, as the single node
does: a call refused for its rate takes no channel, a call refused for its channels has taken
its token. A bucket left alone expires once it would be full again (a missing one is full).

Why there and not where the single node checks the rate (``Admission.screen``, before the
blacklist and before a digest trunk's password is checked): ``screen`` is synchronous, and a
digest trunk is known only after its password; making it wait for Redis would split the
screening of every INVITE around an await. The per-source buckets (a flood from one address)
stay local in ``Admission.rates``, before any work; the edge's pike limits floods per source
as well. So in a cluster a blacklisted call takes no token of its trunk's (on a single node
it does): the only difference in what is counted.

While Redis is unreachable each node checks :attr:`SharedRates.local`, a bucket per trunk at
the trunk's full rate: N nodes may then admit up to N times the rate (docs/scaling.md says
so). Refusals, shared or local, count in the admission's own ``cps_refusals``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from callserver.policy.cps import CallRateLimiter, RateRefusal

__all__ = ["BUCKET_LUA", "CPS_PREFIX", "Bucket", "SharedRates"]

CPS_PREFIX = "cs:cps:"
"""The bucket of ``trunk:<id>`` is ``cs:cps:trunk:<id>``."""

BUCKET_LUA = """
-- take_token(key, rate, burst): 0 when a token was taken, else the seconds until one is there
local function take_token(key, rate, burst)
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
  local held = redis.call('HMGET', key, 'tokens', 'stamp')
  local tokens = tonumber(held[1]) or burst
  local stamp = tonumber(held[2]) or now
  if now > stamp then  -- a clock that stepped back refills nothing
    tokens = tokens + (now - stamp) * rate
    stamp = now
  end
  if tokens > burst then tokens = burst end
  if tokens < 1 then
    return (1 - tokens) / rate
  end
  redis.call('HSET', key, 'tokens', string.format('%.6f', tokens - 1),
             'stamp', string.format('%.6f', stamp))
  redis.call('PEXPIRE', key, math.ceil(burst / rate * 1000) + 1000)
  return 0
end
"""


@dataclass(frozen=True, slots=True)
class Bucket:
    """The shared bucket of one trunk: ``name`` (``trunk:<id>``), its Redis ``key``."""

    name: str
    key: str
    rate: float
    burst: float


class SharedRates:
    """The trunks' buckets: their rates, and the local ones used while Redis is unreachable.

    Args:
        counter: the admission's limiter, whose refusal counts the metrics read.
    """

    def __init__(self, counter: CallRateLimiter) -> None:
        self.counter = counter
        self.local = CallRateLimiter()  # the trunks' buckets at their full rate, Redis down
        self._rates: dict[str, tuple[float, float]] = {}

    def update(self, rates: Mapping[str, tuple[float, float]]) -> None:
        """The trunks' ``(rate, burst)`` by ``trunk:<id>`` (at start and after each reload)."""
        self.local.update_rates(rates)
        self._rates = dict(rates)

    def bucket(self, trunk: str | None) -> Bucket | None:
        """The shared bucket of ``trunk``; None for no trunk or one without a call rate."""
        if trunk is None:
            return None
        name = f"trunk:{trunk}"
        pair = self._rates.get(name)
        if pair is None:
            return None
        return Bucket(name=name, key=CPS_PREFIX + name, rate=pair[0], burst=pair[1])

    def refused(self, bucket: Bucket, wait: float) -> RateRefusal:
        """The refusal of a call the shared bucket had no token for (counted)."""
        self.counter.count_refusal(bucket.name)
        return RateRefusal(key=bucket.name, retry_after=wait)

    def admit_locally(self, trunk: str | None, now: float) -> RateRefusal | None:
        """Redis unreachable: take a token of ``trunk``'s local bucket at ``now``, or refuse."""
        if trunk is None:
            return None
        refusal = self.local.admit([f"trunk:{trunk}"], now)
        if refusal is not None:
            self.counter.count_refusal(refusal.key)
        return refusal
