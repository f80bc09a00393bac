"""A node's part in the cluster's limits, opened and closed as one (``app.py`` wires it).

With ``cluster.redis`` set, :func:`open_shared_limits` takes this run of the node as a
holder (``cluster.lease``; the same holder names its changes to the shared registrations),
moves the trunks' call rates from the admission's local limiter to the
shared buckets (``cluster.rates``; a reload updates them), makes the shared channel counters
(``cluster.channels``) observe the admission's channel limits, and starts the lease, whose
every renewal is followed by the channels' census. The intake awaits
``SharedLimits.channels.admit`` for each new call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import structlog

from callserver.cluster.channels import SharedChannels
from callserver.cluster.lease import Holder, Lease
from callserver.cluster.link import RedisLink
from callserver.cluster.rates import SharedRates
from callserver.config.cluster import ClusterSettings
from callserver.policy.cps import CallRateLimiter
from callserver.policy.limits import ChannelLimits

__all__ = ["Admissions", "SharedLimits", "open_shared_limits"]

log = structlog.get_logger("callserver.cluster")


class Admissions(Protocol):
    """What the shared limits read of the node's admission (``calls.admission.Admission``)."""

    @property
    def channels(self) -> ChannelLimits:
        """The node's own channel limits."""

    @property
    def rates(self) -> CallRateLimiter:
        """The node's local call-rate buckets (its refusal counters too)."""

    @property
    def reloaded(self) -> list[Callable[[], object]]:
        """Told after each reload."""

    def trunk_rates(self) -> dict[str, tuple[float, float]]:
        """The trunks' ``(rate, burst)`` by ``trunk:<id>``."""

    def pool_profiles(self) -> list[str]:
        """The pools the admin API shows."""

    def share_trunk_rates(self) -> None:
        """Leave the trunks' rates to the shared buckets."""


@dataclass(frozen=True, slots=True)
class SharedLimits:
    """This node's holder, lease, shared channels and shared trunk rates."""

    holder: Holder
    lease: Lease
    channels: SharedChannels
    rates: SharedRates

    async def close(self) -> None:
        """Send the last releases, then delete the lease (after the calls have ended)."""
        await self.channels.close()
        await self.lease.close()


async def open_shared_limits(
    settings: ClusterSettings, link: RedisLink, admission: Admissions, holder: Holder
) -> SharedLimits:
    """Share ``admission``'s limits through ``link`` as ``holder`` (this run of the node)."""
    rates = SharedRates(admission.rates)
    rates.update(admission.trunk_rates())
    admission.share_trunk_rates()
    admission.reloaded.append(lambda: rates.update(admission.trunk_rates()))
    channels = SharedChannels(link, holder, admission.channels, rates, admission.pool_profiles)
    lease = Lease(link, holder, settings.lease)
    lease.beats.append(channels.census)
    channels.attach()
    await lease.open()
    log.info("cluster.limits_shared", holder=str(holder), lease=settings.lease, url=link.url)
    return SharedLimits(holder=holder, lease=lease, channels=channels, rates=rates)
