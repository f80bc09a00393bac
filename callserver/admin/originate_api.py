"""``POST /api/originate``: a customer's own call out, placed by the server, answered into a
dialplan or bridged to another number; 202 with the call's id at once.

The call is placed as campaigns and queue callbacks place theirs
(``calls.originated``, ``calls.customer_calls.call_as_customer``): routed by the number's
prefix, barred by the customer's classes, rated, holding one channel of the customer's pool,
with its own CDR (leg ``b``, outbound, the customer's) whose ``call_id`` is the id answered
here (the Call-ID of the INVITE). Once the number answers it runs the dialplan of ``plan``
(a number with a plan in force), or is bridged to ``connect_to`` (an extension or number of
the customer's phones, rung showing the called number; any other number is the customer's
call out too). ``from`` is the number presented: one of the customer's numbers, or an
extension of its Centrex (that phone's number). The call's end is logged as
``admin.originate_ended`` with its result (answered, busy, no_answer, barred, failed). When
the server stops, the calls still going are ended with the admin server (``close``).

A customer token originates for its own customer only: another customer is 404, as one that
does not exist. Its ``plan`` is one of its own numbers' (a plan's name is the number's E.164
digits without ``+``): another customer's number is 404 (whether its plan exists or not), the
operator's plans (``default``, numbers no customer has) are 403.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Protocol

import structlog
from aiohttp import web

from callserver.admin.auth import request_token, require_operator, sees_customer
from callserver.admin.bodies import json_object
from callserver.calls.originated import ConnectRequest, OriginatedRequest, OriginatedResult
from callserver.config.centrex_groups import Centrex
from callserver.dialplan.plan import PlanSet
from callserver.dialplan.values import number_key
from callserver.policy.numbering import e164
from callserver.sip.ids import new_call_id

__all__ = ["OriginateApi", "Originator"]

log = structlog.get_logger("callserver.admin")

_EXAMPLE = (
    '{"customer": "acme", "from": "+38733100200", "to": "+38761200300", "plan": "38733100500"}'
)
_FIELDS = frozenset({"customer", "from", "to", "plan", "connect_to", "ring_timeout"})


class Originator(Protocol):
    """How the server places a customer's call (``calls.originated.OriginatedCalls``)."""

    async def place(self, request: OriginatedRequest) -> OriginatedResult:
        """Call and run a plan once answered; return when the call is over."""

    async def connect(self, request: ConnectRequest) -> OriginatedResult:
        """Call and bridge to a target once answered; return when the call is over."""


class OriginateApi:
    """The handler of ``POST /api/originate``.

    Args:
        originated: how calls are placed.
        customers: the customers of trunks.yaml in force.
        owns: whether a number (E.164) is one of a customer's own.
        centrex: the Centrex in force (extensions).
        plans: the dialplans in force.
        ring_timeout: the default seconds the number rings (``calls.outbound_ring_timeout``).
        draining: whether the server is stopping (no new call).
    """

    def __init__(
        self,
        originated: Originator,
        *,
        customers: Callable[[], Collection[str]],
        owns: Callable[[str, str], bool],
        centrex: Callable[[], Centrex],
        plans: Callable[[], PlanSet],
        ring_timeout: Callable[[], float],
        draining: Callable[[], bool],
    ) -> None:
        self._originated = originated
        self._customers, self._owns, self._centrex = customers, owns, centrex
        self._plans, self._ring_timeout, self._draining = plans, ring_timeout, draining
        self._calls: set[asyncio.Task[None]] = set()  # the calls placed, until they end

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """POST /api/originate."""
        router.add_post("/api/originate", self.originate)

    async def originate(self, request: web.Request) -> web.Response:
        """Check the request, place the call in a task of its own, answer 202 with its id."""
        body = await _body(request)
        customer = self._customer(body)
        caller_id = self._from(customer, _text(body, "from"))
        number = _number(_text(body, "to"), "to")
        ring_timeout = self._ring(body)
        call_id = new_call_id()
        if self._draining():
            raise web.HTTPServiceUnavailable(text="the server is stopping: try again after it")
        if body.get("plan") is not None:
            plan = self._plan(_text(body, "plan"))
            placing = self._originated.place(
                OriginatedRequest(
                    customer=customer,
                    caller_id=caller_id,
                    number=number,
                    plan=plan,
                    ring_timeout=ring_timeout,
                    call_id=call_id,
                )
            )
            answered: dict[str, Any] = {"plan": plan}
        else:
            target, inside = self._target(customer, _text(body, "connect_to"))
            placing = self._originated.connect(
                ConnectRequest(
                    customer=customer,
                    caller_id=caller_id,
                    number=number,
                    target=target,
                    ring_timeout=ring_timeout,
                    inside=inside,
                    call_id=call_id,
                )
            )
            answered = {"connect_to": target}
        task = asyncio.get_running_loop().create_task(self._follow(call_id, placing))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)
        log.info("admin.originate", call_id=call_id, customer=customer, to=number, **answered)
        view = {"call_id": call_id, "customer": customer, "from": caller_id, "to": number}
        return web.json_response({**view, **answered}, status=202)

    async def close(self) -> None:
        """The server stops: the calls placed and still going are ended (CANCEL or BYE)."""
        calls = list(self._calls)
        for task in calls:
            task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    async def _follow(self, call_id: str, placing: Awaitable[OriginatedResult]) -> None:
        try:
            result = await placing
        except Exception:
            log.exception("admin.originate_failed", call_id=call_id)
            return
        log.info("admin.originate_ended", call_id=call_id, result=result.result)

    def _customer(self, body: dict[str, Any]) -> str:
        token = request_token()
        customer = body.get("customer", token.customer)
        if not isinstance(customer, str) or not customer:
            raise web.HTTPBadRequest(text='customer: the customer whose call it is ("acme")')
        if customer not in self._customers() or not sees_customer(token, customer):
            raise web.HTTPNotFound(text=f"no customer {customer!r} (trunks.yaml customers)")
        return customer

    def _from(self, customer: str, written: str) -> str:
        """The presented number: an extension's phone, or one of the customer's numbers."""
        if written.isdigit() and len(written) <= 6:
            centrex = self._centrex()
            found = [
                s.number
                for gid, g in centrex.groups.items()
                if g.customer == customer and (s := centrex.extension(gid, written)) is not None
            ]
            if len(found) != 1:
                why = "no phone of" if not found else "more than one group of"
                raise web.HTTPBadRequest(text=f"from: extension {written} is {why} {customer}")
            return found[0]
        number = _number(written, "from")
        if not self._owns(customer, number):
            raise web.HTTPBadRequest(
                text=f"from: {number} is not a number of {customer}: present one of its own"
            )
        return number

    def _target(self, customer: str, written: str) -> tuple[str, bool]:
        """``connect_to`` as a number, and whether it is a phone of the customer's."""
        if written.isdigit() and len(written) <= 6:
            return self._from(customer, written), True
        number = _number(written, "connect_to")
        phone = self._centrex().subscriber(number)
        group = None if phone is None else self._centrex().groups.get(phone.group)
        return number, group is not None and group.customer == customer

    def _plan(self, written: str) -> str:
        """The plan's name (E.164 digits without ``+``, or ``default``) when the token may run
        it: a customer token only its own numbers' plans (another customer's is 404, as one
        that does not exist; the operator's, ``default`` and numbers no customer has, 403)."""
        name = number_key(written)
        token = request_token()
        if token.role != "operator":
            owner = self._owner(name)
            if owner is None:
                require_operator(f"plan: the dialplan {name} (the operator's)")
            elif owner != token.customer:
                raise web.HTTPNotFound(
                    text=f"plan: no dialplan for {name} of {token.customer}: name one of its "
                    "numbers (GET /api/dialplans lists them)"
                )
        if self._plans().own_plan(name) is None:
            raise web.HTTPBadRequest(
                text=f"plan: no dialplan for {name} is in force (dialplans/<number>.yaml)"
            )
        return name

    def _owner(self, name: str) -> str | None:
        """The customer whose number the plan ``name`` is, None for the operator's."""
        if not name.isdigit():
            return None
        return next((c for c in self._customers() if self._owns(c, f"+{name}")), None)

    def _ring(self, body: dict[str, Any]) -> float:
        value = body.get("ring_timeout")
        if value is None:
            return self._ring_timeout()
        if isinstance(value, bool) or not isinstance(value, int | float) or not 1 <= value <= 600:
            raise web.HTTPBadRequest(text="ring_timeout: seconds from 1 to 600")
        return float(value)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await json_object(request, _EXAMPLE)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise web.HTTPBadRequest(text=f"{unknown[0]}: not a field ({', '.join(sorted(_FIELDS))})")
    if (body.get("plan") is None) == (body.get("connect_to") is None):
        raise web.HTTPBadRequest(
            text="plan, connect_to: name one: the plan the answered call runs (a number with "
            "a dialplan), or the extension or number it is bridged to"
        )
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise web.HTTPBadRequest(text=f"{name}: a number (E.164, +387 ...) or an extension")
    return value.strip()


def _number(written: str, name: str) -> str:
    try:
        return e164(written)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"{name}: {exc}") from None
