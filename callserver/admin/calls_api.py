"""``/api/calls``: the calls in progress (list, one, hang up), scoped by the token's customer.

A customer token sees only its customer's calls; another customer's call is 404, as one
that does not exist. The views read the calls as they are now (``now`` on the loop's clock,
stamped with the wall clock's offset); the hang-up is the server's own
(``CallManager.hang_up_by_admin``): BYE to an answered call, 487 to one not yet answered.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from callserver.admin.answers import iso_utc
from callserver.admin.auth import request_token, sees_customer
from callserver.admin.params import check_known
from callserver.calls.call import Call
from callserver.config.admin import AdminToken

__all__ = ["CallsApi", "CallsView", "call_view"]


class CallsView(Protocol):
    """What the API reads of the server's calls (``CallManager`` has it)."""

    @property
    def calls(self) -> Iterable[Call]:
        """The calls in progress."""

    def hang_up_by_admin(self, call: Call) -> bool:
        """Hang ``call`` up; False when it is already ending."""


def call_view(call: Call, now: float, wall_offset: float) -> dict[str, Any]:
    """The JSON of one call at loop time ``now``; ``wall_offset`` turns loop time into epoch
    seconds (the start time)."""
    facts = call.facts
    started = datetime.fromtimestamp(wall_offset + call.offered_at, UTC)
    answered_at = call.answered_at
    return {
        "id": call.call_id,
        "direction": facts.direction if facts is not None else "inbound",
        "caller": facts.caller if facts is not None else None,
        "called": facts.called if facts is not None else None,
        "trunk": facts.trunk if facts is not None else None,
        "customer": facts.customer if facts is not None else None,
        "state": call.phase.value,
        "start": iso_utc(started),
        "answered": answered_at is not None,
        "duration": round(max(0.0, now - call.offered_at), 3),
        "talk_time": None if answered_at is None else round(max(0.0, now - answered_at), 3),
    }


class CallsApi:
    """The handlers of ``/api/calls`` and ``/api/calls/{id}``."""

    def __init__(
        self,
        calls: CallsView,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """``monotonic`` is the clock the calls' times are on (the loop's)."""
        self._calls = calls
        self._monotonic = monotonic
        self._wall = wall

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET and DELETE one call (a Call-ID may hold a '/')."""
        router.add_get("/api/calls", self.list_calls)
        router.add_get("/api/calls/{id:.+}", self.get_call)
        router.add_delete("/api/calls/{id:.+}", self.hang_up)

    async def list_calls(self, request: web.Request) -> web.Response:
        """The calls in progress the token may see, oldest first."""
        check_known(request, ())
        token = request_token()
        now, offset = self._clocks()
        seen = [call for call in self._calls.calls if _visible(token, call)]
        seen.sort(key=lambda call: call.offered_at)
        return web.json_response({"calls": [call_view(call, now, offset) for call in seen]})

    async def get_call(self, request: web.Request) -> web.Response:
        """One call the token may see, else 404."""
        check_known(request, ())
        call = self._find(request)
        now, offset = self._clocks()
        return web.json_response(call_view(call, now, offset))

    async def hang_up(self, request: web.Request) -> web.Response:
        """Hang the call up: 202 with the call as it was, 409 when it is already ending."""
        call = self._find(request)
        now, offset = self._clocks()
        view = call_view(call, now, offset)
        if not self._calls.hang_up_by_admin(call):
            raise web.HTTPConflict(text=f"call {call.call_id} is already ending")
        return web.json_response({"hung_up": view}, status=202)

    def _find(self, request: web.Request) -> Call:
        token = request_token()
        wanted = request.match_info["id"]
        for call in self._calls.calls:
            if call.call_id == wanted and _visible(token, call):
                return call
        raise web.HTTPNotFound(text=f"no call in progress with id {wanted}")

    def _clocks(self) -> tuple[float, float]:
        """Monotonic now, and the wall clock's offset from it (read together)."""
        now = self._monotonic()
        return now, self._wall() - now


def _visible(token: AdminToken, call: Call) -> bool:
    return sees_customer(token, call.facts.customer if call.facts is not None else None)
