"""``/api/registrations``: the registrar's bindings, and unregistering a phone.

Each binding (RFC 3261 §10.3) is shown with its address-of-record (a Centrex phone's E.164
number), contact, the customer of the phone, the seconds left before it expires (on the
server's loop clock, as the registrar counts them), the User-Agent of the REGISTER that last
wrote it, where that REGISTER came from, and its state (``active``; ``flow_closed`` when its
TCP connection closed; ``unreachable`` when it stopped answering OPTIONS). A customer token
sees its own customer's phones alone; an address of no Centrex phone is the operator's.

``DELETE /api/registrations/{aor}`` (operator only) removes every binding of the address, as
the phone's own ``Expires: 0`` would: calls to it no longer reach it until it registers again,
and the registrar's store forgets the bindings.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, require_operator, sees_customer
from callserver.admin.metric_sources import customer_of_aor
from callserver.admin.params import check_known

if TYPE_CHECKING:
    from callserver.calls.registration import Registration
    from callserver.config.centrex import Centrex
    from callserver.registrar.binding import Binding

__all__ = ["RegistrationsApi", "RegistrationsView", "ServerRegistrations", "binding_view"]


class RegistrationsView(Protocol):
    """What ``/api/registrations`` reads and does of the server's registrar."""

    def bindings(self) -> list[Binding]:
        """Every binding held now."""

    def unregister(self, aor: str, now: float) -> int:
        """Remove the bindings of ``aor`` at ``now``; how many there were."""

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force (whose phone an address is)."""


@dataclass(frozen=True, slots=True)
class ServerRegistrations:
    """A ``RegistrationsView`` of a running server (no registrar until it has started)."""

    registration: Callable[[], Registration | None]
    centrex_in_force: Callable[[], Centrex]

    def bindings(self) -> list[Binding]:
        """Every binding held now (none before the registrar is open)."""
        registration = self.registration()
        return [] if registration is None else registration.registrar.bindings()

    def unregister(self, aor: str, now: float) -> int:
        """Remove the bindings of ``aor``."""
        registration = self.registration()
        return 0 if registration is None else registration.unregister(aor, now)

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force."""
        return self.centrex_in_force()


def binding_view(binding: Binding, customer: str | None, now: float) -> dict[str, Any]:
    """The JSON of one binding at ``now`` (the registrar's clock)."""
    flow = binding.flow
    host = f"[{flow.host}]" if ":" in flow.host else flow.host
    return {
        "aor": binding.aor,
        "contact": binding.contact,
        "customer": customer,
        "expires_in": max(0, round(binding.expires - now)),
        "user_agent": binding.user_agent,
        "source": f"{host}:{flow.port}",
        "transport": flow.transport,
        "state": binding.state.value,
        "q": binding.q,
        "node": binding.node,
    }


class RegistrationsApi:
    """The handlers of ``/api/registrations`` and ``/api/registrations/{aor}``."""

    def __init__(self, view: RegistrationsView, monotonic: Callable[[], float] = time.monotonic):
        """``monotonic`` is the clock the bindings' expiry is on (the loop's)."""
        self._view = view
        self._monotonic = monotonic

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the bindings; DELETE those of one address."""
        router.add_get("/api/registrations", self.list_registrations)
        router.add_delete("/api/registrations/{aor}", self.unregister)

    async def list_registrations(self, request: web.Request) -> web.Response:
        """The bindings the token may see (``?aor=``: of one address), by address."""
        check_known(request, ("aor",))
        wanted = request.query.get("aor")
        token = request_token()
        centrex, now = self._view.centrex(), self._monotonic()
        shown = []
        for binding in self._view.bindings():
            customer = customer_of_aor(binding.aor, centrex)
            if sees_customer(token, customer) and wanted in (None, binding.aor):
                shown.append(binding_view(binding, customer, now))
        return web.json_response({"registrations": shown})

    async def unregister(self, request: web.Request) -> web.Response:
        """Remove every binding of the address: 200 with those removed, 404 without any."""
        require_operator("unregistering a phone")
        check_known(request, ())
        aor = request.match_info["aor"]
        centrex, now = self._view.centrex(), self._monotonic()
        customer = customer_of_aor(aor, centrex)
        gone = [binding_view(b, customer, now) for b in self._view.bindings() if b.aor == aor]
        if not gone or not self._view.unregister(aor, now):
            raise web.HTTPNotFound(
                text=f"no registration of {aor}: write the address as GET /api/registrations "
                "lists it (a phone's E.164 number, +38733100201)"
            )
        return web.json_response({"unregistered": gone})
