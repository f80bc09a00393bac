"""The resources of the server's provisioned state: limits, customers, trunks and routes,
subscribers and registrations, each built from a narrow view of the running server."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from callserver.admin.customers_api import CustomersApi, ServerCustomers
from callserver.admin.limits_api import LimitsApi, ServerLimits
from callserver.admin.registrations_api import RegistrationsApi, ServerRegistrations
from callserver.admin.subscribers_api import ServerSubscribers, SubscribersApi
from callserver.admin.trunks_api import ServerTrunks, TrunksApi

if TYPE_CHECKING:
    from aiohttp import web

    from callserver.calls.admission import Admission
    from callserver.calls.manager import CallManager
    from callserver.calls.reporting import CdrReporter
    from callserver.config.centrex import Centrex
    from callserver.phone_services import PhoneServices

__all__ = ["StateServer", "state_resources"]


class StateServer(Protocol):
    """What these resources read of a ``callserver.app.Server``."""

    @property
    def admission(self) -> Admission: ...
    @property
    def calls(self) -> CallManager: ...
    @property
    def reporter(self) -> CdrReporter: ...
    @property
    def phones(self) -> PhoneServices: ...
    @property
    def centrex(self) -> Centrex: ...


class _Resource(Protocol):
    def add_routes(self, router: web.UrlDispatcher) -> None: ...


def state_resources(server: StateServer, loop_time: Callable[[], float]) -> list[_Resource]:
    """The limits, customers, trunks, subscribers and registrations resources of ``server``
    (``loop_time``: the loop's clock, which the registrar's expiries are on)."""
    admission = lambda: server.admission  # noqa: E731 (read at each request: a reload)
    return [
        LimitsApi(ServerLimits(admission, lambda: server.calls.calls, server.reporter)),
        CustomersApi(
            ServerCustomers(admission, lambda c: server.phones.centre.centre.agents.logged_in(c))
        ),
        TrunksApi(
            ServerTrunks(admission, lambda host: server.calls.forwarder.resolver.cached(host))
        ),
        SubscribersApi(ServerSubscribers(lambda: server.centrex, lambda: server.phones.services)),
        RegistrationsApi(
            ServerRegistrations(lambda: server.calls.registration, lambda: server.centrex),
            loop_time,
        ),
    ]
