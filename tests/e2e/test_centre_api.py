"""The call centre's admin API on a real `callserver run` with SIPp parties.

An agent logged in and paused through the API is not offered a queued SIPp caller; unpaused
through the API, its registered phone (SIPp) rings, answers and is bridged to the caller.
A call originated through the API as acme's rings a SIPp carrier and, once answered, runs a
plan or is bridged to acme's phone (SIPp too); its CDR is acme's outbound call with the
Call-ID the API answered.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.e2e.admin_client import ADMIN, api
from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    free_port,
    plan_dir,
    start_server,
    start_uas,
)
from tests.e2e.rtp_party import tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_queue_calls import (
    PLAN,
    QUEUE_NUMBER,
    phone_run,
    queue_caller,
    queue_events,
)
from tests.e2e.transfers import finished_all, reap, register_ext, sipp_phone, wait_event

AGENT = "+38733100202"
RINGS = "uas-rings-answers-expects-bye.xml"  # rings 1 s, answers, expects the server's BYE


def _waiting(server: ServerProcess) -> dict[str, Any]:
    """GET /api/queues/support (acme's token) once a caller waits in it (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        status, queue = api(server, "GET", "/api/queues/support", ACME)
        assert status == 200, queue
        if queue["waiting"] == 1:
            return queue
        time.sleep(0.05)
    raise AssertionError("nobody waits in support:\n" + "\n".join(server.raw[-40:]))


def test_a_paused_agent_gets_no_caller_and_unpaused_it_answers_one(
    sipp: str, tmp_path: Path
) -> None:
    """202 logged in and paused through the API: SIPp's caller waits and no ring is logged;
    unpaused through the API, 202's phone rings and the caller is bridged to it."""
    write_group(tmp_path)
    plans = plan_dir(
        tmp_path,
        QUEUE_NUMBER,
        PLAN.format(max_wait="30s", strategy="longest_idle", ring_timeout="10s"),
    )
    trunks = {**CALLING, "customers": {"acme": {"agents": 2}, "globex": {}}}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans, admin=ADMIN)
    caller_rtp = tone_party(440.0)
    procs: list[subprocess.Popen[str]] = []
    try:
        procs.append(phone_run(sipp, tmp_path, RINGS, register_ext(sipp, tmp_path, server, "202")))
        status, agent = api(server, "POST", f"/api/agents/{AGENT}/login", ACME)
        assert (status, agent["state"], agent["queues"]) == (200, "available", ["support"])
        assert api(server, "POST", f"/api/agents/{AGENT}/login", GLOBEX)[0] == 404
        status, agent = api(server, "POST", f"/api/agents/{AGENT}/pause", ACME, {"reason": "7"})
        assert (status, agent["state"], agent["pause_reason"]) == (200, "paused", "7")
        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp, 5000, "+38761000001"))
        queue = _waiting(server)
        assert queue["agents"]["paused"] == 1
        assert [c["caller"] for c in queue["callers"]] == ["+38761000001"]
        time.sleep(1.0)  # long enough for an offer to ring, had the agent been free
        assert "ring" not in [event["kind"] for event in queue_events(tmp_path)]
        status, agent = api(server, "POST", f"/api/agents/{AGENT}/unpause", ACME)
        assert (status, agent["outcome"]) == (200, "available")  # and rung at once
        wait_event(server, "call.bridged")
        finished_all(procs, server)
        status, queues = api(server, "GET", "/api/queues", OPERATOR)
        (support,) = queues["queues"]
        assert (support["answered_today"], support["waiting"]) == (1, 0)
    finally:
        reap(procs)
        server.stop()
        caller_rtp.close()
    kinds = [(e["kind"], e["agent"]) for e in queue_events(tmp_path) if e["kind"] != "ring"]
    assert kinds[:5] == [
        ("login", AGENT),
        ("pause", AGENT),
        ("join", None),
        ("unpause", AGENT),
        ("answer", AGENT),
    ]
    (caller,) = [r for r in exported_cdrs(tmp_path / "var") if r["called_raw"] == QUEUE_NUMBER]
    assert (caller["queue"], caller["answered_by"]) == ("support", AGENT)


HELLO = """steps:
  hello:
    play: goodbye
    next: end
  end:
    hangup:
"""


def test_an_originated_call_rings_the_carrier_and_is_the_customers(
    sipp: str, tmp_path: Path
) -> None:
    """acme's token originates from extension 201 to +387 61 200 300 with plan 38733100260:
    SIPp on the carrier's route answers, hears the plan and gets its BYE; the CDR of that
    Call-ID is acme's answered outbound call, presenting 201's number. globex may not."""
    write_group(tmp_path)
    carrier = free_port(both=False)
    route = {"host": HOST, "port": carrier, "prefixes": ["+387"]}
    trunks = {**CALLING, "customers": {"acme": {}, "globex": {}}, "routes": {"carrier": route}}
    plans = plan_dir(tmp_path, "38733100260", HELLO)
    server = start_server(tmp_path, trunks=trunks, dialplans=plans, admin=ADMIN)
    uas, _ = start_uas(
        sipp, tmp_path, "-sf", str(Path(__file__).parent / "scenarios" / RINGS), port=carrier
    )
    call = {"from": "201", "to": "+387 61 200 300", "plan": "38733100260"}
    try:
        assert api(server, "POST", "/api/originate", GLOBEX, {**call, "customer": "acme"})[0] == 404
        status, placed = api(server, "POST", "/api/originate", ACME, call)
        assert status == 202, placed
        assert (placed["customer"], placed["from"], placed["to"]) == (
            "acme",
            "+38733100201",
            "+38761200300",
        )
        finished_all([uas], server)
        wait_event(server, "admin.originate_ended")
    finally:
        reap([uas])
        server.stop()
    (record,) = [r for r in exported_cdrs(tmp_path / "var") if r["call_id"] == placed["call_id"]]
    assert (record["customer"], record["direction"], record["leg"]) == ("acme", "outbound", "b")
    assert (record["called_e164"], record["disposition"]) == ("38761200300", "ANSWERED")
    assert str(record["caller_e164"]).lstrip("+") == "38733100201"


def test_an_originated_call_answered_is_bridged_to_the_extension(sipp: str, tmp_path: Path) -> None:
    """acme originates to +387 61 200 300 with connect_to 202: the SIPp carrier answers, 202's
    registered phone (SIPp) rings showing the called number, answers, talks 4 s and hangs up;
    the server's BYE ends the carrier's side. The carrier leg's CDR is acme's."""
    write_group(tmp_path)
    carrier = free_port(both=False)
    route = {"host": HOST, "port": carrier, "prefixes": ["+387"]}
    trunks = {**CALLING, "customers": {"acme": {}, "globex": {}}, "routes": {"carrier": route}}
    server = start_server(tmp_path, trunks=trunks, admin=ADMIN)
    rtp = tone_party(700.0)
    procs: list[subprocess.Popen[str]] = []
    try:
        phone = register_ext(sipp, tmp_path, server, "202")
        scenarios = Path(__file__).parent / "scenarios"
        talks = "uas-bridged-answers-talks-then-hangs-up.xml"
        procs.append(sipp_phone(sipp, tmp_path, talks, phone, rtp))
        procs.append(start_uas(sipp, tmp_path, "-sf", str(scenarios / RINGS), port=carrier)[0])
        call = {"from": "+38733100200", "to": "+38761200300", "connect_to": "202"}
        status, placed = api(server, "POST", "/api/originate", ACME, call)
        assert (status, placed["connect_to"]) == (202, "+38733100202"), placed
        finished_all(procs, server)
        ended = wait_event(server, "admin.originate_ended")
        assert ended["result"] == "answered"
    finally:
        reap(procs)
        server.stop()
        rtp.close()
    records = exported_cdrs(tmp_path / "var")
    (out,) = [r for r in records if r["call_id"] == placed["call_id"]]
    assert (out["customer"], out["direction"], out["called_e164"]) == (
        "acme",
        "outbound",
        "38761200300",
    )
    assert out["disposition"] == "ANSWERED"
    assert any(str(r["called_e164"]).lstrip("+") == "38733100202" for r in records), records
