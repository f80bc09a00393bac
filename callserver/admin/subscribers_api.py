"""``/api/subscribers``: the Centrex phones (config/centrex.yaml) and their services.

Each subscriber is shown with its group, customer, number and extension, and its services as
in force (the operator's from centrex.yaml with what its phone set by service codes), what the
phone set, and what the phone may not change (``locks``). ``PATCH .../services`` changes the
settings a phone changes with its codes (``calls.service_codes.SETTABLE``), checked by the same
function as the codes (``check_changes``: a forwarding target must be a number, an extension
of its group other than its own, or ``VM``) and kept in the same store
(``calls.services_store``), so the phone's ``*#21#`` reads back what was set here. A locked
service is 403, as the phone hears "not allowed"; a bad value is 400 saying what it takes.

Which subscriber a path names: an extension is unique only in its Centrex group (centrex.yaml
keys phones by (group, extension)), and two customers' groups may both have a 201. So
``{extension}`` is one of

* ``GROUP:EXT`` (``callcentre-demo-office:201``): always one subscriber; it is each
  subscriber's ``id``;
* its E.164 number (``+38733100201``): unique across the file;
* a bare extension (``201``) when exactly one subscriber the token sees has it; when several
  do, 400 names their ids.

A customer token sees its own customer's subscribers alone; another's is 404.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.bodies import json_object
from callserver.admin.params import check_known, customer_scope, query_text
from callserver.calls.service_codes import check_changes
from callserver.calls.services_store import locked

if TYPE_CHECKING:
    from callserver.config.admin import AdminToken
    from callserver.config.centrex import Centrex, Subscriber
    from callserver.policy.services import ServiceSettings

__all__ = [
    "PhoneSettings",
    "ServerSubscribers",
    "SubscribersApi",
    "SubscribersView",
    "subscriber_id",
]

log = structlog.get_logger("callserver.services")


class PhoneSettings(Protocol):
    """The services store of the phones (``calls.services_store.ServicesStore``)."""

    def settings_of(self, number: str) -> ServiceSettings:
        """The services in force for the subscriber of ``number``."""

    def overrides_of(self, number: str) -> Mapping[str, str | bool | int | None]:
        """What the phone of ``number`` changed."""

    def change(self, number: str, values: Mapping[str, str | bool | int | None]) -> bool:
        """Set ``values``; False when ``number`` is no subscriber or one is locked."""


class SubscribersView(Protocol):
    """What ``/api/subscribers`` reads of the server."""

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force."""

    def services(self) -> PhoneSettings | None:
        """The phones' services store; None until the server has opened it."""


def subscriber_id(subscriber: Subscriber) -> str:
    """``GROUP:EXT``: the one name of a subscriber a path may always use."""
    return f"{subscriber.group}:{subscriber.extension}"


class SubscribersApi:
    """The handlers of ``/api/subscribers``, one subscriber and its services."""

    def __init__(self, view: SubscribersView) -> None:
        self._view = view

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET one; PATCH its services."""
        router.add_get("/api/subscribers", self.list_subscribers)
        router.add_get("/api/subscribers/{extension}", self.get_subscriber)
        router.add_patch("/api/subscribers/{extension}/services", self.change_services)

    async def list_subscribers(self, request: web.Request) -> web.Response:
        """The subscribers the token sees (``?group=``, ``?customer=``: of one; a customer
        token naming another customer is 404), by number."""
        check_known(request, ("group", "customer"))
        group, customer = query_text(request, "group"), customer_scope(request)
        centrex, store = self._view.centrex(), self._store()
        seen = [
            s
            for s in self._visible(centrex, request_token())
            if group in (None, s.group) and customer in (None, _customer(centrex, s))
        ]
        return web.json_response(
            {"subscribers": [_view(centrex, store, s) for s in sorted(seen, key=_number)]}
        )

    async def get_subscriber(self, request: web.Request) -> web.Response:
        """One subscriber the token sees, else 404."""
        check_known(request, ())
        centrex = self._view.centrex()
        subscriber = self._find(centrex, request.match_info["extension"])
        return web.json_response(_view(centrex, self._store(), subscriber))

    async def change_services(self, request: web.Request) -> web.Response:
        """Set the services of the body (setting: value, ``null`` turns a forwarding off) as
        the phone's codes would; the subscriber as it is then."""
        check_known(request, ())
        centrex = self._view.centrex()
        subscriber = self._find(centrex, request.match_info["extension"])
        asked = await _body(request)
        try:
            values = check_changes(centrex, subscriber, asked)
        except ValueError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        refused = locked(subscriber, values)
        if refused:
            raise web.HTTPForbidden(
                text=f"{', '.join(refused)} of {subscriber.number} is locked "
                "(centrex.yaml services.locks): the operator sets it in centrex.yaml"
            )
        store = self._store()
        if not store.change(subscriber.number, values):
            raise web.HTTPNotFound(text=f"{subscriber.number} is no longer a subscriber")
        log.info(
            "services.changed",
            number=subscriber.number,
            values=dict(values),
            by=request_token().name,
        )
        return web.json_response(_view(centrex, store, subscriber))

    def _store(self) -> PhoneSettings:
        store = self._view.services()
        if store is None:
            raise web.HTTPServiceUnavailable(text="the server is starting: ask again shortly")
        return store

    def _visible(self, centrex: Centrex, token: AdminToken) -> Iterable[Subscriber]:
        return (
            s for s in centrex.by_number.values() if sees_customer(token, _customer(centrex, s))
        )

    def _find(self, centrex: Centrex, written: str) -> Subscriber:
        """The subscriber ``written`` names (module docstring), else 404 (400 when several)."""
        token = request_token()
        group, colon, extension = written.rpartition(":")
        if written.startswith("+"):
            found = [s for s in [centrex.subscriber(written)] if s is not None]
        elif colon:
            found = [s for s in [centrex.extension(group, extension)] if s is not None]
        else:
            found = [s for s in centrex.by_number.values() if s.extension == written]
        found = [s for s in found if sees_customer(token, _customer(centrex, s))]
        if not found:
            raise web.HTTPNotFound(
                text=f"no subscriber {written}: write GROUP:EXT, the E.164 number, or an "
                "extension (GET /api/subscribers lists them)"
            )
        if len(found) > 1:
            ids = ", ".join(sorted(subscriber_id(s) for s in found))
            raise web.HTTPBadRequest(
                text=f"extension {written} is in several groups: name one as GROUP:EXT ({ids})"
            )
        return found[0]


def _customer(centrex: Centrex, subscriber: Subscriber) -> str:
    return centrex.groups[subscriber.group].customer


def _number(subscriber: Subscriber) -> str:
    return subscriber.number


def _view(centrex: Centrex, store: PhoneSettings, subscriber: Subscriber) -> dict[str, Any]:
    number = subscriber.number
    return {
        "id": subscriber_id(subscriber),
        "extension": subscriber.extension,
        "group": subscriber.group,
        "customer": _customer(centrex, subscriber),
        "number": number,
        "name": subscriber.name,
        "language": subscriber.language,
        "pickup_group": subscriber.pickup_group,
        "role": subscriber.role,
        "services": asdict(store.settings_of(number)),
        "services_set_by_phone": dict(store.overrides_of(number)),
        "locks": sorted(subscriber.locks),
    }


async def _body(request: web.Request) -> dict[str, object]:
    """The request's JSON object of settings; 400 for anything else."""
    example = '{"forward_busy": "+38761100100", "dnd": false}'
    body = await json_object(request, f"of the settings to change, {example}")
    if not body:
        raise web.HTTPBadRequest(text=f"send a JSON object of the settings to change: {example}")
    return body


@dataclass(frozen=True, slots=True)
class ServerSubscribers:
    """A ``SubscribersView`` of the files and the store a running server holds."""

    centrex_in_force: Callable[[], Centrex]
    store: Callable[[], PhoneSettings | None]

    def centrex(self) -> Centrex:
        """config/centrex.yaml in force."""
        return self.centrex_in_force()

    def services(self) -> PhoneSettings | None:
        """The phones' services store, once opened."""
        return self.store()
