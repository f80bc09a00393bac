"""/api/queues and /api/agents over a real port: queues with their callers, agents by state
and today's figures; agents logged in, paused and out through the control socket's desk."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from callserver.queues.events import Offer
from callserver.queues.records import QueueLogRecord
from tests.admin.centre import Centre, centre_admin
from tests.admin.tokens import ACME, GLOBEX
from tests.queues.support import QUEUE, START, agent

SALES = ("acme", "sales")


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    """The centre of ``tests.admin.centre`` behind its admin server."""
    async for made in centre_admin(tmp_path):
        yield made


def _join(centre: Centre, call_id: str, ago: float, number: str) -> None:
    """A caller joins sales ``ago`` seconds before the driver's now."""
    now, at = centre.driver.moment()
    centre.driver.centre.join(QUEUE, call_id, now - ago, at, number=number)
    centre.driver.changed()


async def test_login_pause_and_logout_go_through_the_desk_as_the_control_socket(
    centre: Centre,
) -> None:
    """The API logs agent 1 in and pauses it, the control socket's handler logs agent 2 in:
    the same outcomes, the same queue log lines and agent_request log lines."""
    with structlog.testing.capture_logs() as logs:
        status, one = await centre.request("POST", f"/api/agents/{agent(1)}/login")
        handler = centre.desk.handlers()["agents.login"]
        two = handler({"agent": agent(2)})
        paused, after = await centre.request(
            "POST", f"/api/agents/{agent(1)}/pause", body={"reason": "lunch"}
        )
    assert (status, one["outcome"], two["outcome"]) == (200, "logged_in", "logged_in")
    assert (one["id"], one["state"], one["queues"]) == (agent(1), "available", ["sales"])
    assert (paused, after["state"], after["pause_reason"]) == (200, "paused", "lunch")
    requests = [(e["agent"], e["action"]) for e in logs if e["event"] == "queues.agent_request"]
    assert requests == [(agent(1), "login"), (agent(2), "login"), (agent(1), "pause")]
    assert centre.logged() == [
        ("login", agent(1), None),
        ("login", agent(2), None),
        ("pause", agent(1), "lunch"),
    ]
    assert centre.driver.centre.agents.get(agent(1)).state.value == "paused"


async def test_a_paused_agent_is_not_offered_a_caller_and_unpaused_it_is(centre: Centre) -> None:
    """Agent 1 alone logged in, paused through the API: a caller is offered to nobody; once
    unpaused the centre rings it."""
    await centre.request("POST", f"/api/agents/{agent(1)}/login")
    await centre.request("POST", f"/api/agents/{agent(1)}/pause")
    _join(centre, "c1@trunk", 0.0, "+38761000001")
    now, at = centre.driver.moment()
    assert centre.driver.centre.offers(now, at) == []
    offered: list[Offer] = []
    centre.driver.on_offers(offered.extend)  # as the queue calls ring the phones
    status, view = await centre.request("POST", f"/api/agents/{agent(1)}/unpause")
    assert (status, view["outcome"], view["pause_reason"]) == (200, "available", None)
    assert view["state"] == "ringing"  # offered the caller at once
    assert [(o.caller, o.agents) for o in offered] == [("c1@trunk", (agent(1),))]


async def test_refusals_are_409_404_and_400_saying_what_to_do(centre: Centre) -> None:
    """The third login of two licences is 409, another customer's agent and a number that is
    no subscriber 404, a bad reason or queues list 400; nothing changes."""
    for n in (1, 2):
        assert (await centre.request("POST", f"/api/agents/{agent(n)}/login"))[0] == 200
    status, data = await centre.request("POST", f"/api/agents/{agent(3)}/login")
    assert status == 409
    assert "no licence" in data["error"] and "trunks.yaml" in data["error"]
    status, _ = await centre.request("POST", f"/api/agents/{agent(1, 'beta')}/login", ACME)
    assert status == 404
    status, data = await centre.request("POST", "/api/agents/+38799999999/login")
    assert status == 404 and "Centrex subscriber" in data["error"]
    status, data = await centre.request(
        "POST", f"/api/agents/{agent(1)}/pause", body={"reason": "a b"}
    )
    assert status == 400 and data["error"].startswith("reason:")
    status, data = await centre.request(
        "POST", f"/api/agents/{agent(1)}/login", body={"queues": ["support"]}
    )
    assert status == 400 and "sales" in data["error"]
    status, data = await centre.request("POST", f"/api/agents/{agent(1)}/logout", body={"x": 1})
    assert status == 400 and data["error"] == "x: logout takes no fields"
    assert centre.driver.centre.agents.get(agent(1)).state.value == "available"


async def test_the_agents_are_the_known_ones_and_the_queues_members_scoped(
    centre: Centre,
) -> None:
    """The operator sees acme's three members and beta's plan member; acme its own; a
    number without the + is the same agent."""
    await centre.request("POST", "/api/agents/38733100202/login")
    status, data = await centre.request("GET", "/api/agents")
    listed = {a["id"]: (a["customer"], a["state"], a["queues"]) for a in data["agents"]}
    assert status == 200
    assert listed == {
        agent(1): ("acme", "logged_out", ["sales"]),
        agent(2): ("acme", "available", ["sales"]),
        agent(3): ("acme", "logged_out", ["sales"]),
        agent(1, "beta"): ("beta", "logged_out", ["info"]),
    }
    _, mine = await centre.request("GET", "/api/agents", ACME)
    assert [a["id"] for a in mine["agents"]] == [agent(1), agent(2), agent(3)]
    assert (await centre.request("GET", "/api/agents", GLOBEX))[1] == {"agents": []}


async def test_the_queues_show_callers_agents_and_todays_figures(centre: Centre) -> None:
    """Two callers wait (one 30 s), one agent is available and one paused; today's figures
    come from the log's lines of today in Sarajevo, yesterday's left out."""
    tally = centre.driver.tally
    early = START - timedelta(hours=9)  # 2026-12-07 00:00 UTC: 01:00 in Sarajevo, today
    for kind, when, wait in (
        ("answer", early - timedelta(hours=2), 5.0),  # 23:00 on 2026-12-06 in Sarajevo
        ("answer", early, 10.0),
        ("answer", early + timedelta(minutes=1), 40.0),
        ("abandon", early + timedelta(minutes=2), 3.0),
    ):
        fields = {"agent": agent(1)} if kind == "answer" else {}
        tally.add(
            QueueLogRecord(
                at=when,
                kind=kind,
                customer="acme",
                uuid=f"u-{when}",
                queue="sales",
                call_id=f"c-{when}",
                wait=wait,
                **fields,  # type: ignore[arg-type]
            )
        )
    await centre.request("POST", f"/api/agents/{agent(1)}/login")
    await centre.request("POST", f"/api/agents/{agent(2)}/login")
    await centre.request("POST", f"/api/agents/{agent(2)}/pause", body={"reason": "7"})
    await centre.request("POST", f"/api/agents/{agent(1)}/pause")  # no caller rings it
    _join(centre, "c1@trunk", 30.0, "+38761000001")
    _join(centre, "c2@trunk", 5.0, "+38761000002")
    status, data = await centre.request("GET", "/api/queues")
    assert status == 200
    sales, info = data["queues"]
    assert (sales["name"], sales["customer"], sales["waiting"]) == ("sales", "acme", 2)
    assert sales["longest_wait"] == pytest.approx(30.0, abs=0.5)
    assert sales["agents"] == {
        "logged_out": 1,
        "available": 0,
        "ringing": 0,
        "in_call": 0,
        "wrap_up": 0,
        "paused": 2,
    }
    assert (sales["answered_today"], sales["abandoned_today"]) == (2, 1)
    assert sales["service_level_today"] == pytest.approx(100 / 3, abs=0.001)
    assert (info["name"], info["customer"], info["waiting"]) == ("info", "beta", 0)
    assert info["service_level_today"] is None
    status, one = await centre.request("GET", "/api/queues/sales", ACME)
    assert status == 200
    assert [(c["position"], c["caller"]) for c in one["callers"]] == [
        (1, "+38761000001"),
        (2, "+38761000002"),
    ]
    assert [(a["id"], a["pause_reason"]) for a in one["agents_list"]] == [
        (agent(1), None),
        (agent(2), "7"),
        (agent(3), None),
    ]


async def test_queues_are_scoped_and_a_bad_query_is_400(centre: Centre) -> None:
    """acme lists sales only and gets 404 for beta's info; globex nothing; an unknown query
    parameter is 400 naming it."""
    _, data = await centre.request("GET", "/api/queues", ACME)
    assert [q["name"] for q in data["queues"]] == ["sales"]
    assert (await centre.request("GET", "/api/queues/info", ACME))[0] == 404
    assert (await centre.request("GET", "/api/queues", GLOBEX))[1] == {"queues": []}
    assert (await centre.request("GET", "/api/queues/info?customer=beta"))[0] == 200
    status, data = await centre.request("GET", "/api/queues?limit=3")
    assert (status, data["error"]) == (
        400,
        "query parameter limit: unknown here; this request takes no parameter",
    )


async def test_a_body_that_is_not_utf8_is_400_not_a_failure(centre: Centre) -> None:
    """Bytes that are no UTF-8 text are a bad body (400 saying what to send), not a 500."""
    client = centre.client
    async with client.session.post(
        f"{client.url}/api/agents/{agent(1)}/pause",
        data=b'{"reason": "\xff"}',
        headers={"Authorization": f"Bearer {ACME}", "Content-Type": "application/json"},
    ) as response:
        status, data = response.status, await response.json()
    assert status == 400 and "not UTF-8" in data["error"], data
    assert centre.driver.centre.agents.get(agent(1)).state.value != "paused"
