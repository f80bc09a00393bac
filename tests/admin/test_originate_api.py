"""POST /api/originate over a real port: the request checked and scoped, the call handed to
the server's originator with a Call-ID answered at once (202)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import structlog

from callserver.admin.originate_api import OriginateApi
from callserver.calls.originated import ConnectRequest, OriginatedRequest, OriginatedResult
from callserver.dialplan.plan import PlanSet
from tests.admin.centre import plan_queue
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.queues.support import centrex

PHONES = centrex(5)
OWN = {"acme": "+38733100", "globex": "+38744"}
_QUEUE = plan_queue("acme", "sales", "+38733100201").plans["38733101250"]
PLANS = PlanSet(
    {
        name: replace(_QUEUE, number=name)
        for name in ("38733101250", "38733100500", "38744100500", "default")
    }
)


@dataclass
class FakeOriginator:
    """Keeps what it was asked to place; each call ends ``answered`` at once."""

    placed: list[OriginatedRequest | ConnectRequest] = field(default_factory=list)

    async def place(self, request: OriginatedRequest) -> OriginatedResult:
        self.placed.append(request)
        return OriginatedResult(result="answered", sip_code=200)

    async def connect(self, request: ConnectRequest) -> OriginatedResult:
        self.placed.append(request)
        return OriginatedResult(result="busy", sip_code=486)


@dataclass
class Api:
    client: Client
    originator: FakeOriginator
    draining: list[bool]

    async def post(self, body: object, token: str = OPERATOR) -> tuple[int, Any]:
        return await self.client.json("POST", "/api/originate", token, body)


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    """The originate resource for acme (its numbers +387 33 100 ..., phones 201-205) and
    globex (its numbers +387 44 ...), plans for 38733101250 (no customer's), acme's
    38733100500, globex's 38744100500 and ``default``, on a free port."""
    originator, draining = FakeOriginator(), [False]
    resource = OriginateApi(
        originator,
        customers=lambda: ("acme", "globex"),
        owns=lambda customer, number: number.startswith(OWN[customer]),
        centrex=lambda: PHONES,
        plans=lambda: PLANS,
        ring_timeout=lambda: 30.0,
        draining=lambda: draining[0],
    )
    async with serving(resource) as client:
        yield Api(client, originator, draining)


async def test_a_plan_call_is_placed_as_the_customers_with_the_answered_id(api: Api) -> None:
    """202 at once with a Call-ID; the originator is asked for acme's call from its number
    to the normalised number, running plan 38733101250, with that Call-ID; its end is
    logged."""
    with structlog.testing.capture_logs() as logs:
        status, data = await api.post(
            {
                "customer": "acme",
                "from": "+387 33 100 200",
                "to": "061 200 300",
                "plan": "38733101250",
            }
        )
        await asyncio.sleep(0.05)
    assert status == 202
    (placed,) = api.originator.placed
    assert isinstance(placed, OriginatedRequest)
    assert (placed.customer, placed.caller_id, placed.number) == (
        "acme",
        "+38733100200",
        "+38761200300",
    )
    assert (placed.plan, placed.ring_timeout, placed.campaign) == ("38733101250", 30.0, None)
    assert data == {
        "call_id": placed.call_id,
        "customer": "acme",
        "from": "+38733100200",
        "to": "+38761200300",
        "plan": "38733101250",
    }
    ended = [e for e in logs if e["event"] == "admin.originate_ended"]
    assert [(e["call_id"], e["result"]) for e in ended] == [(placed.call_id, "answered")]


async def test_connect_to_an_extension_rings_the_phone_and_from_an_extension(api: Api) -> None:
    """A customer token's call needs no customer: ``from`` 201 presents that phone's number,
    ``connect_to`` 202 is acme's phone (inside); an outside number is not inside."""
    status, _ = await api.post(
        {"from": "201", "to": "+38761200300", "connect_to": "202", "ring_timeout": 20}, ACME
    )
    assert status == 202
    status, _ = await api.post(
        {"from": "201", "to": "+38761200300", "connect_to": "+38762000000"}, ACME
    )
    assert status == 202
    inside, outside = api.originator.placed
    assert isinstance(inside, ConnectRequest) and isinstance(outside, ConnectRequest)
    assert (inside.caller_id, inside.target, inside.inside, inside.ring_timeout) == (
        "+38733100201",
        "+38733100202",
        True,
        20.0,
    )
    assert (outside.target, outside.inside) == ("+38762000000", False)


async def test_another_customer_is_404_and_bad_fields_are_400(api: Api) -> None:
    """globex's token cannot call as acme (404, as a customer that does not exist); a number
    acme does not own, no plan or both, an unknown plan or field are 400 naming it; a
    stopping server is 503. Nothing is placed."""
    call = {"customer": "acme", "from": "+38733100200", "to": "+38761200300", "plan": "38733101250"}
    assert (await api.post(call, GLOBEX))[0] == 404
    assert (await api.post({**call, "customer": "initech"}))[0] == 404
    cases = {
        "from": {**call, "from": "+38762000000"},
        "plan, connect_to": {k: v for k, v in call.items() if k != "plan"},
        "plan": {**call, "plan": "38799999999"},
        "ring_timeout": {**call, "ring_timeout": 0},
        "to": {**call, "to": "12"},
        "colour": {**call, "colour": "red"},
    }
    for name, body in cases.items():
        status, data = await api.post(body)
        assert (status, data["error"].split(":")[0]) == (400, name), data
    api.draining[0] = True
    assert (await api.post(call))[0] == 503
    assert api.originator.placed == []


async def test_a_customer_token_runs_only_the_plans_of_its_own_numbers(api: Api) -> None:
    """acme's token runs the plan of its number 38733100500 (as +387 33 100 500 too);
    globex's plan is 404, as a plan of globex's that does not exist; the operator's plans
    (``default``, 38733101250 of no customer) are 403. The operator's token runs any plan.
    Only the allowed calls are placed."""
    call = {"from": "+38733100200", "to": "+38761200300"}
    assert (await api.post({**call, "plan": "38733100500"}, ACME))[0] == 202
    assert (await api.post({**call, "plan": "+387 33 100 500"}, ACME))[0] == 202
    taken = await api.post({**call, "plan": "38744100500"}, ACME)
    missing = await api.post({**call, "plan": "38744999999"}, ACME)
    assert (taken[0], missing[0]) == (404, 404)
    assert taken[1]["error"].replace("38744100500", "N") == missing[1]["error"].replace(
        "38744999999", "N"
    )
    for plan in ("default", "38733101250"):
        status, data = await api.post({**call, "plan": plan}, ACME)
        assert (status, "operator token" in data["error"]) == (403, True), data
    for plan in ("38744100500", "default", "38733101250"):
        assert (await api.post({**call, "customer": "acme", "plan": plan}))[0] == 202
    assert [p.plan for p in api.originator.placed if isinstance(p, OriginatedRequest)] == [
        "38733100500",
        "38733100500",
        "38744100500",
        "default",
        "38733101250",
    ]


async def test_closing_the_server_ends_the_calls_still_going() -> None:
    """A call still ringing when the admin server closes is cancelled (its leg gets CANCEL
    or BYE on the way out), not left running."""
    ended: list[str] = []

    class Ringing(FakeOriginator):
        async def place(self, request: OriginatedRequest) -> OriginatedResult:
            try:
                await asyncio.Event().wait()
            finally:
                ended.append(str(request.call_id))
            raise AssertionError("unreachable")

    resource = OriginateApi(
        Ringing(),
        customers=lambda: ("acme",),
        owns=lambda customer, number: True,
        centrex=lambda: PHONES,
        plans=lambda: plan_queue("acme", "sales", "+38733100201"),
        ring_timeout=lambda: 30.0,
        draining=lambda: False,
    )

    call = {"customer": "acme", "from": "+38733100200", "to": "+38761200300"}
    async with serving(resource) as client:
        status, placed = await client.json(
            "POST", "/api/originate", body={**call, "plan": "38733101250"}
        )
        await asyncio.sleep(0)  # the call's task starts
        assert (status, ended) == (202, [])
    assert ended == [placed["call_id"]]
