"""``/api/trunks`` and ``/api/routes``: who may call in, and where calls go out.

A trunk (config/trunks.yaml ``trunks``) is shown with its customer, the source addresses it
is known by (``match``), its channels held and bought, its call rate and how it is identified
(``auth``: ``address``, ``digest``, or ``digest_and_address`` for credentials that must also
come from its addresses); never its password. A customer token sees its own customer's trunks;
another's, and a trunk of no customer, is 404 to it.

The routes (``routes``: gateways and carriers) are the operator's: an operator token only. A
route's host name is located per call (RFC 3263, docs/operations.md "Host names, DNS and
failover"): which address answered is not kept between calls, so a route has no up or down
state to show; ``dns`` lists the answers the resolver holds for its name now, with the
seconds each is still kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, require_operator, sees_customer
from callserver.admin.params import check_known

if TYPE_CHECKING:
    from callserver.calls.admission import Admission
    from callserver.config.trunks import SourceMatch, TrunkConfig, TrunksFile
    from callserver.transport.resolver import CachedAnswer

__all__ = ["ServerTrunks", "TrunksApi", "TrunksView", "match_text", "trunk_view"]


class TrunksView(Protocol):
    """What ``/api/trunks`` and ``/api/routes`` read of the server."""

    def trunks_file(self) -> TrunksFile:
        """config/trunks.yaml in force."""

    def in_use(self, profile: str) -> int:
        """Channels held now in the pool ``profile`` (``trunk:<name>``)."""

    def dns(self, host: str) -> list[CachedAnswer]:
        """The DNS answers held for ``host`` now (none for an IP address)."""


@dataclass(frozen=True, slots=True)
class ServerTrunks:
    """A ``TrunksView`` of a running server's admission and resolver."""

    admission: Callable[[], Admission]
    cached: Callable[[str], list[CachedAnswer]]

    def trunks_file(self) -> TrunksFile:
        """config/trunks.yaml in force."""
        return self.admission().table.config

    def in_use(self, profile: str) -> int:
        """Channels held now in ``profile``."""
        return self.admission().channels.in_use(profile)

    def dns(self, host: str) -> list[CachedAnswer]:
        """The DNS answers held for ``host`` now."""
        return self.cached(host)


def match_text(match: SourceMatch) -> str:
    """A ``match`` entry as trunks.yaml writes it: ``192.0.2.10``, ``198.51.100.0/24:5060``,
    ``[2001:db8::]/32:5060``."""
    network = match.network
    whole = network.prefixlen == network.max_prefixlen
    text = str(network.network_address) if whole else str(network)
    if match.port is None:
        return text
    if network.version == 6:
        address, _, prefix = text.partition("/")
        text = f"[{address}]" + (f"/{prefix}" if prefix else "")
    return f"{text}:{match.port}"


def _auth(trunk: TrunkConfig) -> str:
    if trunk.digest is None:
        return "address"
    return "digest_and_address" if trunk.match else "digest"


def trunk_view(name: str, trunk: TrunkConfig, in_use: int) -> dict[str, Any]:
    """The JSON of one trunk with ``in_use`` channels held (no credential in it)."""
    return {
        "name": name,
        "customer": trunk.customer,
        "match": [match_text(m) for m in trunk.match],
        "channels": trunk.channels,
        "channels_in_use": in_use,
        "cps": trunk.cps,
        "cps_burst": trunk.cps_burst,
        "auth": _auth(trunk),
        "barring": list(trunk.barring),
        "number": trunk.number,
    }


class TrunksApi:
    """The handlers of ``/api/trunks``, ``/api/trunks/{name}`` and ``/api/routes``."""

    def __init__(self, view: TrunksView) -> None:
        self._view = view

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the trunks, one trunk, the routes."""
        router.add_get("/api/trunks", self.list_trunks)
        router.add_get("/api/trunks/{name}", self.get_trunk)
        router.add_get("/api/routes", self.list_routes)

    async def list_trunks(self, request: web.Request) -> web.Response:
        """The trunks the token may see, by name."""
        check_known(request, ())
        token = request_token()
        trunks = self._view.trunks_file().trunks
        return web.json_response(
            {
                "trunks": [
                    trunk_view(name, trunk, self._view.in_use(f"trunk:{name}"))
                    for name, trunk in sorted(trunks.items())
                    if sees_customer(token, trunk.customer)
                ]
            }
        )

    async def get_trunk(self, request: web.Request) -> web.Response:
        """One trunk the token may see, else 404."""
        check_known(request, ())
        name = request.match_info["name"]
        trunk = self._view.trunks_file().trunks.get(name)
        if trunk is None or not sees_customer(request_token(), trunk.customer):
            raise web.HTTPNotFound(text=f"no trunk {name!r} in config/trunks.yaml")
        return web.json_response(trunk_view(name, trunk, self._view.in_use(f"trunk:{name}")))

    async def list_routes(self, request: web.Request) -> web.Response:
        """The outbound routes in file order (operator only)."""
        require_operator("the outbound routes")
        check_known(request, ())
        config = self._view.trunks_file()
        routes = []
        for name, route in config.routes.items():
            routes.append(
                {
                    "name": name,
                    "host": route.host,
                    "port": route.port,
                    "transport": route.transport,
                    "prefixes": list(route.prefixes),
                    "auth": "digest" if route.digest is not None else None,
                    "default": config.default_route == name,
                    "emergency": config.emergency.route == name,
                    "dns": [answer.view() for answer in self._view.dns(route.host)],
                }
            )
        return web.json_response(
            {"routes": routes, "emergency_numbers": list(config.emergency.numbers)}
        )
