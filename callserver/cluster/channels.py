"""The channels of every node counted together in Redis, so a pool's limit holds across nodes.

Theory of operation
-------------------
``cs:ch:<profile>`` is a hash of holder (``<node>/<incarnation>``, ``cluster.lease``) ->
channels that holder holds in the profile; a holder counts only while its lease key lives
(``cluster.channel_scripts`` has the scripts and their arguments).

The node's own ``policy.limits.ChannelLimits`` stays its view: every channel is taken there
first, so a call the node alone cannot carry is refused without Redis. :class:`SharedChannels`
is that object's observer:

- A new call's grant (``checked``) is left to :meth:`SharedChannels.admit`, which the intake
  awaits before the call goes on: one round trip runs ACQUIRE (the trunk's call rate, then
  every pool's live count against its limit, all or nothing). Refused there, the intake gives
  the local grant back and refuses the call as a local refusal would.
- Every other grant (a forwarded leg, a queue's call to an agent, an originated call) is
  *published* unchecked, and every release of a grant counted in Redis is *withdrawn*. Both
  are summed per profile into pending deltas that one writer task sends (ADJUST, all pending
  at once) ``batch`` seconds (10 ms) after the first of them, so they reach Redis in the
  order they happened and the calls ending within those 10 ms share one round trip.

What this holder holds in Redis is exactly its *published* grants (checked and admitted, or
published). When Redis was lost, the link runs :meth:`SharedChannels.restore` before it is up
again: REWRITE sets this holder's entry in every profile it ever touched from those grants,
and the deltas pending then are dropped (the rewrite has them); deltas made after it are sent
after it (a generation number tells them apart). A lease found gone (``Lease.beat``, or
ACQUIRE's ``nolease``) makes the link resync, which runs the same rewrite.

While Redis is unreachable a new call is admitted by the local view (:meth:`admit`'s
fallback): the trunk's local bucket at its full rate (``cluster.rates``), then for each
limited pool this node's channels plus the other nodes' as last seen against the limit. The
other nodes' counts (``ChannelLimits.elsewhere``) come from each ACQUIRE's answer for its
pools and from the census after every lease renewal (CENSUS over the pools the admission
shows); the admin API and the metrics add them to this node's own. docs/scaling.md, "Channels
and call rate", says what is conservative in that and what is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial

import redis.asyncio as aioredis
import structlog

from callserver.cluster.channel_scripts import ACQUIRE, ADJUST, CENSUS, REWRITE
from callserver.cluster.lease import LEASE_PREFIX, Holder
from callserver.cluster.link import RedisLink
from callserver.cluster.rates import Bucket, SharedRates
from callserver.policy.cps import RateRefusal
from callserver.policy.limits import ChannelLimits, Grant, Refusal, profile_kind
from callserver.process.histogram import Histogram

__all__ = ["ACQUIRE_BUCKETS", "CHANNEL_PREFIX", "SharedChannelStatistics", "SharedChannels"]

log = structlog.get_logger("callserver.cluster")

CHANNEL_PREFIX = "cs:ch:"
"""The hash of profile ``p`` is ``cs:ch:p``."""

ACQUIRE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)
"""Upper bounds (seconds) of the acquire round-trip histogram; one more bucket is +Inf."""

_SHOWN_KINDS = frozenset({"trunk", "customer", "group"})  # pools shown without a limit


@dataclass(frozen=True, slots=True)
class SharedChannelStatistics:
    """Counters since start: ACQUIREs answered by Redis (``admitted``, ``refused``: channels
    or rate), new calls decided by the local view while Redis was unreachable (``local``:
    ``admitted``/``refused``), rewrites after an outage, and the round-trip histogram of the
    answered ACQUIREs (cumulative counts per bound of :data:`ACQUIRE_BUCKETS`, then +Inf)."""

    admitted: int
    refused: int
    local: Mapping[str, int]
    restores: int
    round_trips: tuple[int, ...]
    round_trip_sum: float


class SharedChannels:
    """The shared channel counters of one holder; see the module docstring.

    Args:
        link: the node's Redis link.
        holder: this run of this node.
        limits: the node's own channel limits (observed from :meth:`attach` on).
        rates: the trunks' shared call-rate buckets.
        profiles: the pools whose cluster-wide count the census keeps (the admin API's).
        clock: a monotonic clock: round trips and the local buckets' ``now``.
        batch: seconds the writer waits after a change before it sends, so the changes of
            the calls that end or start meanwhile share one round trip.
    """

    def __init__(
        self,
        link: RedisLink,
        holder: Holder,
        limits: ChannelLimits,
        rates: SharedRates,
        profiles: Callable[[], Iterable[str]],
        clock: Callable[[], float] = time.perf_counter,
        batch: float = 0.01,
    ) -> None:
        self.link = link
        self.batch = batch
        self.holder = holder
        self.limits = limits
        self.rates = rates
        self._profiles = profiles
        self._clock = clock
        client = link.client
        self._acquire = client.register_script(ACQUIRE)
        self._adjust = client.register_script(ADJUST)
        self._rewrite = client.register_script(REWRITE)
        self._census = client.register_script(CENSUS)
        self._published: dict[int, Grant] = {}  # what this holder holds in Redis
        self._deltas: dict[str, int] = {}  # published minus withdrawn, not sent yet
        self._touched: set[str] = set()  # profiles this holder may have an entry in
        self._generation = 0  # one up at each rewrite
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._closing = False
        self._admitted = self._refused = self._restores = 0
        self._local_since_restore = 0  # new calls decided locally since the last rewrite
        self._local = {"admitted": 0, "refused": 0}
        self._round_trips = Histogram(ACQUIRE_BUCKETS)

    def attach(self) -> None:
        """Observe the limits, rewrite on the link's reconnection, start the writer."""
        self.limits.observer = self
        self.link.reconnected.append(self.restore)
        self._writer = asyncio.get_running_loop().create_task(self._writing())

    # -- ChannelObserver ----------------------------------------------------------------------

    def acquired(self, grant: Grant, checked: bool) -> None:
        """Publish ``grant`` unless it is a new call's (``checked``: :meth:`admit` decides)."""
        if not checked:
            self._publish(grant)

    def released(self, grant: Grant) -> None:
        """Withdraw ``grant`` if it is counted in Redis."""
        if self._published.pop(grant.id, None) is not None:
            self._add(grant.profiles, -1)

    # -- a new call -----------------------------------------------------------------------------

    async def admit(self, grant: Grant, trunk: str | None) -> Refusal | RateRefusal | None:
        """Check a new call's ``grant`` (taken locally) and ``trunk``'s call rate against
        every node: None when admitted (its channels now count in Redis), else what refused
        it. Redis unreachable: decided by the local view (module docstring)."""
        bucket = self.rates.bucket(trunk)
        started = self._clock()
        answer = await self.link.run(partial(self._ask, grant, bucket), None)
        if answer is None or answer[0] == b"nolease":
            if answer is not None:  # our entries may be gone: put them back first
                self.link.resync()
            return self._admit_locally(grant, trunk)
        self._round_trips.observe(self._clock() - started)
        status = answer[0]
        if status == b"cps":
            assert bucket is not None
            self._refused += 1
            return self.rates.refused(bucket, float(answer[1]))
        full = self._seen(grant.profiles, answer[2:])
        if status == b"full":
            self._refused += 1
            profile = grant.profiles[int(answer[1]) - 1]
            self.limits.count_refusal(profile)
            limit = self.limits.limit(profile)
            return Refusal(profile=profile, limit=limit or 0, in_use=full[profile])
        self._admitted += 1
        self._published[grant.id] = grant
        self._touched.update(grant.profiles)
        if not self.limits.is_held(grant):  # given back meanwhile: withdraw at once
            self.released(grant)
        return None

    async def _ask(
        self, grant: Grant, bucket: Bucket | None, client: aioredis.Redis
    ) -> list[bytes | int]:
        profiles = grant.profiles
        keys = [CHANNEL_PREFIX + profile for profile in profiles]
        limits = [self.limits.limit(profile) for profile in profiles]
        args: list[str | int | float] = [str(self.holder), LEASE_PREFIX, len(profiles)]
        args += [-1 if limit is None else limit for limit in limits]
        if bucket is not None:
            keys.append(bucket.key)
            args += [bucket.rate, bucket.burst]
        answer: list[bytes | int] = await self._acquire(keys=keys, args=args, client=client)
        return answer

    def _admit_locally(self, grant: Grant, trunk: str | None) -> Refusal | RateRefusal | None:
        """Redis unreachable: the trunk's local bucket, then each limited pool's channels here
        (this grant's included) and elsewhere as last seen, against its limit."""
        if not self._local_since_restore:  # once an outage: the link logged it went down
            log.warning("cluster.channels_local_view", holder=str(self.holder))
        self._local_since_restore += 1
        limited = self.rates.admit_locally(trunk, self._clock())
        if limited is not None:
            self._local["refused"] += 1
            return limited
        limits = self.limits
        for profile in grant.profiles:
            limit = limits.limit(profile)
            if limit is not None and limits.in_use(profile) > limit:
                self._local["refused"] += 1
                limits.count_refusal(profile)
                return Refusal(profile=profile, limit=limit, in_use=limits.in_use(profile) - 1)
        self._local["admitted"] += 1
        self._publish(grant)  # counted in Redis by the rewrite, or by the writer after it
        return None

    def _seen(self, profiles: tuple[str, ...], counts: list[bytes | int]) -> dict[str, int]:
        """Keep the other nodes' counts ACQUIRE answered; each profile's total, by profile."""
        totals: dict[str, int] = {}
        elsewhere = self.limits.elsewhere
        for index, profile in enumerate(profiles):
            total, own = int(counts[2 * index]), int(counts[2 * index + 1])
            totals[profile] = total
            if profile_kind(profile) in _SHOWN_KINDS or self.limits.limit(profile) is not None:
                elsewhere[profile] = total - own
        return totals

    # -- published and withdrawn: the writer ------------------------------------------------

    def _publish(self, grant: Grant) -> None:
        self._published[grant.id] = grant
        self._add(grant.profiles, 1)

    def _add(self, profiles: tuple[str, ...], delta: int) -> None:
        deltas = self._deltas
        for profile in profiles:
            deltas[profile] = deltas.get(profile, 0) + delta
        self._touched.update(profiles)
        self._wake.set()

    async def _writing(self) -> None:
        # Stopped by ``_closing``, not by cancellation: a Redis command cancelled midway may
        # swallow it, and a half-sent batch would be lost for nothing.
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            if self._closing:
                return
            if not self.link.up:  # kept until the rewrite drops them, or the link is up
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.link.retry)
                if self._deltas:
                    self._wake.set()
                continue
            await asyncio.sleep(self.batch)  # the changes of the next few calls ride along
            try:
                await self.flush()
            except Exception:  # a bug (a script error): logged; the deltas are lost
                log.exception("cluster.channels_write_failed", holder=str(self.holder))

    async def flush(self) -> bool:
        """Send the pending deltas now (the writer does it a loop turn after each change);
        False when Redis could not be reached (they are kept, or dropped by a rewrite)."""
        batch = {profile: delta for profile, delta in self._deltas.items() if delta}
        self._deltas = {}
        if not batch:
            return True
        generation = self._generation
        sent = await self.link.run(partial(self._send, batch), False)
        if not sent and generation == self._generation:  # not rewritten since: keep them
            for profile, delta in batch.items():
                self._deltas[profile] = self._deltas.get(profile, 0) + delta
            self._wake.set()
        return sent

    async def _send(self, batch: dict[str, int], client: aioredis.Redis) -> bool:
        keys = [CHANNEL_PREFIX + profile for profile in batch]
        await self._adjust(keys=keys, args=[str(self.holder), *batch.values()], client=client)
        return True

    # -- after an outage, and the census ----------------------------------------------------

    async def restore(self, client: aioredis.Redis) -> None:
        """Rewrite this holder's entries from its published grants (a reconnected callback
        of the link: Redis is back, or restarted empty)."""
        self._generation += 1
        self._deltas = {}
        held: dict[str, int] = {}
        for grant in self._published.values():
            for profile in grant.profiles:
                held[profile] = held.get(profile, 0) + 1
        profiles = sorted(self._touched | held.keys())
        if profiles:
            keys = [CHANNEL_PREFIX + profile for profile in profiles]
            counts = [held.get(profile, 0) for profile in profiles]
            await self._rewrite(keys=keys, args=[str(self.holder), *counts], client=client)
        self._touched = set(held) | set(self._deltas)
        self._restores += 1
        log.info(
            "cluster.channels_restored",
            holder=str(self.holder),
            channels=len(self._published),
            pools=len(held),
            decided_locally=self._local_since_restore,
        )
        self._local_since_restore = 0
        await self.census(client)

    async def census(self, client: aioredis.Redis) -> None:
        """Read every shown pool's live count (a beat of the lease): the other nodes' counts
        as last seen, for the local view and the admin API."""
        profiles = list(dict.fromkeys(self._profiles()))
        if not profiles:
            return
        keys = [CHANNEL_PREFIX + profile for profile in profiles]
        counts = await self._census(keys=keys, args=[str(self.holder), LEASE_PREFIX], client=client)
        self.limits.elsewhere = {
            profile: int(counts[2 * i]) - int(counts[2 * i + 1])
            for i, profile in enumerate(profiles)
        }

    def statistics(self) -> SharedChannelStatistics:
        """The counters since start (see :class:`SharedChannelStatistics`)."""
        return SharedChannelStatistics(
            admitted=self._admitted,
            refused=self._refused,
            local=dict(self._local),
            restores=self._restores,
            round_trips=self._round_trips.cumulative(),
            round_trip_sum=self._round_trips.sum,
        )

    async def close(self) -> None:
        """Stop the writer and send what is pending (the calls have ended: their releases)."""
        self._closing = True
        self._wake.set()
        if self._writer is not None:
            await self._writer
        if self.link.up:
            await self.flush()
        self.limits.observer = None
