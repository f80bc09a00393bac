"""``/api/limits``: the channel pools, the calls in progress and the refusals since start.

Every pool ``admin.pools`` reads (the same reading as the channel metrics): trunks,
customers, Centrex groups and called numbers with a limit, each with the channels held and
bought and its call rate (in a cluster, the channels held on every node as last seen, and this
node's own). A customer token sees only its own customer's pools, calls and
refusals; the operator's own pools (a trunk of no customer, a number of none) and the refusals
of calls that never reached a customer (an unknown source, a failed password) are the
operator's alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.metric_sources import REJECTIONS
from callserver.admin.params import check_known, choice
from callserver.admin.pools import POOL_KINDS, Pool, channel_pools

if TYPE_CHECKING:
    from callserver.calls.admission import Admission
    from callserver.calls.call import Call
    from callserver.calls.reporting import CdrReporter

__all__ = ["LimitsApi", "LimitsView", "ServerLimits", "pool_view", "rejections"]

_KINDS = frozenset({*POOL_KINDS, "number"})


class LimitsView(Protocol):
    """What ``/api/limits`` reads of the server."""

    def pools(self) -> list[Pool]:
        """Every channel pool as it is now (``admin.pools.channel_pools``)."""

    def calls(self) -> Iterable[Call]:
        """The calls in progress."""

    def ended(self, customer: str | None) -> Mapping[tuple[str, str], int]:
        """Call legs ended since start by (leg, reason): ``customer``'s, or all (None)."""


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """A ``LimitsView`` of a running server's admission, calls and CDR reporter."""

    admission: Callable[[], Admission]
    calls_in_progress: Callable[[], Iterable[Call]]
    reporter: CdrReporter

    def pools(self) -> list[Pool]:
        """Every channel pool as it is now."""
        return channel_pools(self.admission())

    def calls(self) -> Iterable[Call]:
        """The calls in progress."""
        return self.calls_in_progress()

    def ended(self, customer: str | None) -> Mapping[tuple[str, str], int]:
        """Legs ended since start, by (leg, reason): ``customer``'s, or all (None)."""
        if customer is None:
            return self.reporter.ended_by_reason
        return self.reporter.ended_by_customer.get(customer, {})


def pool_view(pool: Pool) -> dict[str, Any]:
    """The JSON of one pool; in a cluster ``channels_in_use`` is the cluster's (as last seen)
    and ``channels_in_use_here`` this node's share."""
    view: dict[str, Any] = {
        "kind": pool.kind,
        "name": pool.name,
        "customer": pool.customer,
        "channels_in_use": pool.in_use,
        "channels": pool.channels,
        "cps": pool.cps,
    }
    if pool.here is not None:
        view["channels_in_use_here"] = pool.here
    return view


def rejections(ended: Mapping[tuple[str, str], int]) -> dict[str, int]:
    """Inbound calls refused since start, by reason (every reason, 0 included)."""
    counts = dict.fromkeys(sorted(REJECTIONS), 0)
    for (leg, reason), count in ended.items():
        if leg == "a" and reason in REJECTIONS:
            counts[reason] += count
    return counts


class LimitsApi:
    """The handler of ``/api/limits``."""

    def __init__(self, view: LimitsView) -> None:
        self._view = view

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the pools and counts."""
        router.add_get("/api/limits", self.get_limits)

    async def get_limits(self, request: web.Request) -> web.Response:
        """The pools the token may see (``?kind=`` one kind), its calls in progress and its
        refusals since start."""
        check_known(request, ("kind",))
        kind = choice(request, "kind", _KINDS)
        token = request_token()
        operator = token.role == "operator"
        pools = [
            pool_view(pool)
            for pool in self._view.pools()
            if sees_customer(token, pool.customer) and kind in (None, pool.kind)
        ]
        calls = sum(
            1
            for call in self._view.calls()
            if sees_customer(token, call.facts.customer if call.facts is not None else None)
        )
        ended = self._view.ended(None if operator else token.customer)
        return web.json_response(
            {"pools": pools, "calls_in_progress": calls, "rejections": rejections(ended)}
        )
