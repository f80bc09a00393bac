"""``/api/customers``: each customer's package as config/trunks.yaml sets it, and its use now.

A customer (trunks.yaml ``customers``) bought channels (None: no limit) and call-centre agent
licences (``agents``, docs/operations.md "Call-centre agent licences"); it has trunks,
numbers (its Centrex groups' blocks, or trunks.yaml's own) and Centrex groups. The list gives
each with the channels held and the agents logged in now; one customer adds its barring
classes, its call recording and how long recordings are kept, and its groups' blocks and
pools. A customer token sees its own customer alone; another's is 404.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.params import check_known
from callserver.admin.pools import Pool, channel_pools

if TYPE_CHECKING:
    from callserver.calls.admission import Admission
    from callserver.config.centrex import Centrex
    from callserver.config.trunks import TrunksFile

__all__ = ["CustomersApi", "CustomersView", "ServerCustomers"]


class CustomersView(Protocol):
    """What ``/api/customers`` reads of the server."""

    def trunks_file(self) -> TrunksFile:
        """config/trunks.yaml in force, the customers' group numbers included."""

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force."""

    def pools(self) -> list[Pool]:
        """Every channel pool as it is now."""

    def agents_logged_in(self, customer: str) -> int:
        """How many of ``customer``'s call-centre agents are logged in now."""


@dataclass(frozen=True, slots=True)
class ServerCustomers:
    """A ``CustomersView`` of a running server's admission and call centre."""

    admission: Callable[[], Admission]
    logged_in: Callable[[str], int]

    def trunks_file(self) -> TrunksFile:
        """config/trunks.yaml in force."""
        return self.admission().table.config

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force."""
        return self.admission().centrex

    def pools(self) -> list[Pool]:
        """Every channel pool as it is now."""
        return channel_pools(self.admission())

    def agents_logged_in(self, customer: str) -> int:
        """How many of ``customer``'s agents are logged in now."""
        return self.logged_in(customer)


class CustomersApi:
    """The handlers of ``/api/customers`` and ``/api/customers/{name}``."""

    def __init__(self, view: CustomersView) -> None:
        self._view = view

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET one."""
        router.add_get("/api/customers", self.list_customers)
        router.add_get("/api/customers/{name}", self.get_customer)

    async def list_customers(self, request: web.Request) -> web.Response:
        """The customers the token may see, by name."""
        check_known(request, ())
        token = request_token()
        in_use = self._in_use()
        names = sorted(self._view.trunks_file().customers)
        return web.json_response(
            {
                "customers": [
                    self._summary(name, in_use) for name in names if sees_customer(token, name)
                ]
            }
        )

    async def get_customer(self, request: web.Request) -> web.Response:
        """One customer's package and use, else 404."""
        check_known(request, ())
        name = request.match_info["name"]
        config = self._view.trunks_file().customers.get(name)
        if config is None or not sees_customer(request_token(), name):
            raise web.HTTPNotFound(text=f"no customer {name!r} in config/trunks.yaml")
        in_use = self._in_use()
        view = self._summary(name, in_use)
        view.update(
            barring=list(config.barring),
            recording={
                "calls": config.recording.calls,
                "mode": config.recording.mode,
                "announcement": list(config.recording.announcement),
            },
            recording_retention_days=config.recording_retention_days,
            centrex_groups=self._groups(name, in_use),
        )
        return web.json_response(view)

    def _in_use(self) -> dict[str, int]:
        return {pool.profile: pool.in_use for pool in self._view.pools()}

    def _summary(self, name: str, in_use: dict[str, int]) -> dict[str, Any]:
        trunks = self._view.trunks_file()
        config = trunks.customers[name]
        groups = self._view.centrex().groups.values()
        return {
            "name": name,
            "channels": config.channels,
            "channels_in_use": in_use.get(f"customer:{name}", 0),
            "agents": config.agents,
            "agents_logged_in": self._view.agents_logged_in(name),
            "trunks": sorted(t for t, trunk in trunks.trunks.items() if trunk.customer == name),
            "numbers": list(config.numbers),
            "groups": sorted(group.id for group in groups if group.customer == name),
        }

    def _groups(self, name: str, in_use: dict[str, int]) -> list[dict[str, Any]]:
        centrex = self._view.centrex()
        subscribers: dict[str, int] = {}
        for subscriber in centrex.by_number.values():
            subscribers[subscriber.group] = subscribers.get(subscriber.group, 0) + 1
        return [
            {
                "id": group.id,
                "numbers": [_block(b.first, b.last) for b in group.blocks],
                "channels": group.channels,
                "channels_in_use": in_use.get(f"group:{group.id}", 0),
                "barring": list(group.barring),
                "subscribers": subscribers.get(group.id, 0),
            }
            for group in sorted(centrex.groups.values(), key=lambda g: g.id)
            if group.customer == name
        ]


def _block(first: str, last: str) -> str:
    """A number block as written: ``+38733100200-+38733100299``, or one number."""
    return first if first == last else f"{first}-{last}"
