"""Admission of an inbound call: which trunk it is, then call rate, then channels.

DESIGN.md, call lifecycle step 2. In order, each refusing with its own answer:

1. The trunk, by the INVITE's source address (``trunks.TrunkTable``): an unknown source gets
   403 unless ``allow_unknown_sources``.
2. The call rate (``policy.cps``): the trunk's token bucket and the source address's; 503 with
   Retry-After. A flood from one source empties only its own bucket.
3. The channels (``policy.limits``): one channel in each of the trunk's, its customer's and
   the called number's pools, all or none; over a limit the configured answer (503 with
   ``Reason: Q.850;cause=34`` and Retry-After by default).

An admitted call holds a ``Grant`` that ``release`` gives back exactly once, whatever path
the call ends on. Reload swaps the table and the limits; counters and grants carry over, so
calls in progress are never cut and a lowered limit applies to new calls.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.policy.cps import CallRateLimiter
from callserver.policy.limits import ChannelLimits, Grant, OverLimitResponse, refusal_headers
from callserver.trunks import TrunksFile, TrunkTable

__all__ = ["Admission", "Admitted", "Rejected"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """The call may proceed; ``grant`` holds its channels until ``Admission.release``."""

    trunk: str | None
    customer: str | None
    grant: Grant


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """The call is refused with ``status`` and ``headers``; ``reason`` goes to the CDR."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    trunk: str | None = None


class Admission:
    """Trunk identification and the limits it brings; see the module docstring."""

    def __init__(self, trunks: TrunksFile) -> None:
        self.table = TrunkTable(trunks)
        self._over = _over_limit(trunks)
        self.channels = ChannelLimits(self.table.channel_limits())
        self.rates = CallRateLimiter(default_rate=trunks.cps_per_source)
        self.rates.update_rates(self._rates(trunks))

    def reload(self, trunks: TrunksFile) -> None:
        """New trunks and limits; calls in progress keep their channels."""
        self.table = TrunkTable(trunks)
        self._over = _over_limit(trunks)
        self.channels.update_limits(self.table.channel_limits())
        self.rates.update_rates(self._rates(trunks), default_rate=trunks.cps_per_source)

    @staticmethod
    def _rates(trunks: TrunksFile) -> dict[str, tuple[float, float]]:
        return {
            f"trunk:{name}": (trunk.cps, trunk.cps_burst or max(1.0, trunk.cps))
            for name, trunk in trunks.trunks.items()
            if trunk.cps is not None
        }

    def admit(self, host: str, port: int, called: str, now: float) -> Admitted | Rejected:
        """Admit or refuse a new call from ``host``:``port`` to ``called`` at ``now``."""
        config = self.table.config
        trunk = self.table.identify(host, port)
        if trunk is None and not config.allow_unknown_sources:
            return Rejected(status=403, reason="unknown_source")
        keys = [f"source:{host}"] + ([] if trunk is None else [f"trunk:{trunk}"])
        over = self._over
        limited = self.rates.admit(keys, now)
        if limited is not None:
            headers = refusal_headers(over, limited)
            return Rejected(status=503, reason="cps_limit", headers=headers, trunk=trunk)
        granted = self.channels.acquire(self.table.profiles(trunk, called))
        if not isinstance(granted, Grant):
            headers = refusal_headers(over, granted)
            return Rejected(
                status=over.status, reason="channel_limit", headers=headers, trunk=trunk
            )
        customer = None if trunk is None else config.trunks[trunk].customer
        return Admitted(trunk=trunk, customer=customer, grant=granted)

    def release(self, grant: Grant) -> None:
        """Give the call's channels back (a second release of the same grant does nothing)."""
        self.channels.release(grant)


def _over_limit(trunks: TrunksFile) -> OverLimitResponse:
    over = trunks.over_limit
    return OverLimitResponse(status=over.status, retry_after=over.retry_after)
