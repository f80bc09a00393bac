"""The channel pools of a running server, read in one place for the metrics and the API.

A pool is a profile of ``policy.limits``: ``trunk:<id>``, ``customer:<id>``, ``group:<id>``
(a Centrex group) or ``number:<digits>`` (a called number with a limit of its own). Every
configured trunk, customer and group is listed whether or not it has a limit or a channel
held; any other pool only when it has a limit, so the callers' numbers never become pools.
Each pool names its customer (None for the operator's own: a trunk of no customer, a number
of none) and its call rate (a trunk's ``cps``; the other kinds have none).

In a cluster (``cluster.redis``) a pool's ``in_use`` is the cluster's: this node's channels
and the other nodes' as last seen (from the last admission in that pool or the last
heartbeat, ``cluster.channels``); ``here`` is this node's alone.

Pure: it reads the admission's limiter and files as they are when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callserver.calls.admission import Admission

__all__ = ["POOL_KINDS", "Pool", "channel_pools"]

# The pools shown whether or not they have a limit (module docstring).
POOL_KINDS = ("trunk", "customer", "group")


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """One channel pool: ``in_use`` of ``channels`` (None: no limit) held now, its
    ``customer`` (None: the operator's own), and ``cps``, its new calls a second (None: no
    limit); in a cluster ``here`` is this node's share of ``in_use``."""

    kind: str
    name: str
    customer: str | None
    in_use: int
    channels: int | None
    cps: float | None = None
    here: int | None = None  # this node's own channels (None: the same as ``in_use``)

    @property
    def profile(self) -> str:
        """The limiter's name of the pool, ``kind:name``."""
        return f"{self.kind}:{self.name}"


def channel_pools(admission: Admission) -> list[Pool]:
    """Every pool of the module docstring, as the limiter holds it now, by kind and name."""
    limiter = admission.channels
    in_use = limiter.pools_in_use()
    config = admission.table.config
    owners = _owners(admission)
    pools = []
    for profile in {*admission.pool_profiles(), *in_use}:
        kind, _, name = profile.partition(":")
        limit = limiter.limit(profile)
        if kind in POOL_KINDS or limit is not None:
            trunk = config.trunks.get(name) if kind == "trunk" else None
            pools.append(
                Pool(
                    kind=kind,
                    name=name,
                    customer=owners.get(profile),
                    in_use=in_use.get(profile, 0),
                    channels=limit,
                    cps=None if trunk is None else trunk.cps,
                    here=None if limiter.observer is None else limiter.held(profile),
                )
            )
    return sorted(pools, key=lambda pool: (pool.kind, pool.name))


def _owners(admission: Admission) -> dict[str, str]:
    """The customer of each pool that has one, by profile."""
    config = admission.table.config
    owners = {f"customer:{name}": name for name in config.customers}
    owners.update(
        (f"trunk:{name}", trunk.customer)
        for name, trunk in config.trunks.items()
        if trunk.customer is not None
    )
    owners.update(
        (f"group:{gid}", group.customer) for gid, group in admission.centrex.groups.items()
    )
    table = admission.table
    for name in config.numbers:
        key = name if name.startswith("+") else f"+{name}"
        owner = next((c for c in config.customers if key in table.customer_numbers(c)), None)
        if owner is not None:
            owners[f"number:{name.lstrip('+')}"] = owner
    return owners
