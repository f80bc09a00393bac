"""A campaign's answered call runs the steps that connect the called person to someone: a
``queue`` step rings a logged-in agent and bridges it, a ``forward`` step places the
customer's call out and bridges it, a ``conference`` step puts the called person in a room.

The called person is a SIPp uas on a route for +38761 that answers, talks 8 s and hangs up;
acme's phone 202 is the agent (logged in as a restart finds it, registered by SIPp); the
forward's target is a SIPp uas on a route for +38762. The window is open all week (no
holidays), so no date matters.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    start_server,
    start_uas,
)
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_queue_calls import PLAN, QUEUE_NUMBER, SHOWS, logged_in, queue_events
from tests.e2e.transfers import finished_all, reap, register_ext, sipp_phone, wait_event

CALLED = "+38761000001"  # the queue's agent display checks this caller
TALKS = "uas-bridged-answers-talks-8s-then-hangs-up.xml"  # the called person
TARGET = "+38762000002"
CAMPAIGN = """name: steps
numbers: steps.csv
customer: acme
caller_id: "+387 33 100 200"
plan: "+{plan}"
window: {{timezone: Europe/Sarajevo, holidays: no, open: {{mon-sun: "00:00-24:00"}}}}
ring_timeout: 10
"""
FORWARD = f"""steps:
  start:
    forward: "{TARGET}"
    ring_timeout: 10s
"""
CONFERENCE = """steps:
  start:
    conference: lobby
    time_limit: 3s
    next: bye
  bye:
    hangup:
"""


def _campaign(tmp_path: Path, server: ServerProcess, plan: str) -> None:
    """Start a campaign calling ``CALLED`` once, with ``plan``'s dialplan."""
    (tmp_path / "steps.csv").write_text(f"number\n{CALLED}\n")
    (tmp_path / "steps.yaml").write_text(CAMPAIGN.format(plan=plan))
    command = [sys.executable, "-m", "callserver", "campaign", "start"]
    config = ["--config", str(tmp_path / "callserver.yaml")]
    proc = subprocess.run(
        [*command, str(tmp_path / "steps.yaml"), *config],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr


def _result(server: ServerProcess) -> dict[str, str]:
    """The campaign's one result row, once written (waits 60 s)."""
    path = server.data_dir / "campaigns" / "steps" / "results.csv"
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, "\n".join(server.raw[-60:])
        time.sleep(0.2)
    with path.open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    return row


def _called(sipp: str, tmp_path: Path, rtp: RtpParty) -> tuple[subprocess.Popen[str], int]:
    """The called person: SIPp answering, talking 8 s, hanging up; its port."""
    keys = ("-sf", str(SCENARIOS / TALKS), "-key", "rtp_port", str(rtp.port))
    return start_uas(sipp, tmp_path, *keys)


def _route(port: int, prefix: str) -> dict[str, object]:
    return {"host": HOST, "port": port, "prefixes": [prefix]}


def test_a_campaign_call_waits_in_the_queue_and_is_bridged_to_an_agent(
    sipp: str, tmp_path: Path
) -> None:
    """The called person joins acme's support queue, 202 is rung with the queue's display and
    answers, the two are bridged until the called person hangs up; the result is answered and
    the campaign's CDR names the queue and the agent."""
    write_group(tmp_path)
    logged_in(tmp_path, "202")
    plan = PLAN.format(max_wait="30s", strategy="longest_idle", ring_timeout="10s")
    plans = plan_dir(tmp_path, QUEUE_NUMBER, plan)
    called_rtp = tone_party(440.0)
    called, port = _called(sipp, tmp_path, called_rtp)
    trunks = {
        **CALLING,
        "customers": {"acme": {"agents": 2}},
        "routes": {"mobile": _route(port, "+38761")},
    }
    server = start_server(tmp_path, trunks=trunks, dialplans=plans)
    agent_rtp = tone_party(700.0)
    procs = [called]
    try:
        agent_port = register_ext(sipp, tmp_path, server, "202")
        procs.append(sipp_phone(sipp, tmp_path, SHOWS, agent_port, agent_rtp))
        _campaign(tmp_path, server, QUEUE_NUMBER)
        wait_event(server, "call.bridged")
        finished_all(procs, server)
        row = _result(server)
    finally:
        reap(procs)
        server.stop()
        agent_rtp.close()
        called_rtp.close()
    assert row["result"] == "answered" and row["attempts"] == "1", row
    records = exported_cdrs(server.data_dir)
    (campaign,) = [r for r in records if r.get("campaign") == "steps"]
    assert campaign["queue"] == "support" and campaign["answered_by"] == "+38733100202"
    agent = [r for r in records if r["called_e164"] == "38733100202"]
    assert [r["disposition"] for r in agent] == ["ANSWERED"], agent
    assert agent[0]["linked_id"] == campaign["call_id"]
    kinds = [event["kind"] for event in queue_events(tmp_path)]
    assert kinds[:3] == ["join", "ring", "answer"]


def test_a_campaign_call_is_forwarded_as_the_customers_call_out(sipp: str, tmp_path: Path) -> None:
    """The plan forwards the called person to a number on another route: that leg is placed
    as acme's call out, answered and bridged until the called person hangs up."""
    plans = plan_dir(tmp_path, "38733100500", FORWARD)
    called_rtp = tone_party(440.0)
    called, port = _called(sipp, tmp_path, called_rtp)
    target_rtp = tone_party(700.0)
    target, target_port = start_uas(
        sipp,
        tmp_path,
        *("-sf", str(SCENARIOS / "uas-bridged-answers-then-expects-bye.xml")),
        *("-key", "rtp_port", str(target_rtp.port)),
    )
    routes = {"mobile": _route(port, "+38761"), "other": _route(target_port, "+38762")}
    trunks = {**CALLING, "customers": {"acme": {}}, "routes": routes}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans)
    procs = [called, target]
    try:
        _campaign(tmp_path, server, "38733100500")
        wait_event(server, "call.bridged")
        finished_all(procs, server)
        row = _result(server)
    finally:
        reap(procs)
        server.stop()
        target_rtp.close()
        called_rtp.close()
    assert row["result"] == "answered", row
    records = exported_cdrs(server.data_dir)
    (campaign,) = [r for r in records if r.get("campaign") == "steps"]
    forwarded = [r for r in records if r["called_e164"] == TARGET.lstrip("+")]
    assert [r["disposition"] for r in forwarded] == ["ANSWERED"], forwarded
    assert forwarded[0]["customer"] == "acme" and forwarded[0]["linked_id"] == campaign["call_id"]


def test_a_campaign_call_joins_a_conference_room(sipp: str, tmp_path: Path) -> None:
    """The plan puts the called person in the room lobby for 3 s, then hangs up: the call is
    answered, its CDR names the room, and the server's BYE ends the SIPp call."""
    plans = plan_dir(tmp_path, "38733100500", CONFERENCE)
    rtp = tone_party(440.0)
    called, port = start_uas(
        sipp,
        tmp_path,
        *("-sf", str(SCENARIOS / "uas-bridged-answers-then-expects-bye.xml")),
        *("-key", "rtp_port", str(rtp.port)),
    )
    trunks = {**CALLING, "customers": {"acme": {}}, "routes": {"mobile": _route(port, "+38761")}}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans)
    try:
        _campaign(tmp_path, server, "38733100500")
        wait_event(server, "conference.joined")
        finished_all([called], server)
        row = _result(server)
    finally:
        reap([called])
        server.stop()
        rtp.close()
    assert row["result"] == "answered", row
    (campaign,) = [r for r in exported_cdrs(server.data_dir) if r.get("campaign") == "steps"]
    assert campaign["conference"] == "lobby" and campaign["end_reason"] == "normal", campaign
