"""A callback request end to end: a SIPp caller on the trunk waits in acme's queue, presses
the callback key (RFC 4733 from its ``RtpParty``), hears the confirmation and the server's BYE;
phone 201 logs in by ``*45`` (SIPp with its digest) and registers (SIPp as the phone); the
request rings it showing "Callback: +38761000001", it answers, and the server calls
+38761000001 through the route of +38761 to a SIPp uas standing for the caller's network, then
bridges the two (each ``RtpParty``'s audio reaches the other).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    popen_sipp,
    start_server,
    start_uas,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_agents import _dial
from tests.e2e.test_queue_calls import QUEUE_NUMBER, queue_events
from tests.e2e.transfers import (
    TARGET_FILL,
    TRANSFEROR_FILL,
    finished_all,
    heard,
    reap,
    register_ext,
    sipp_phone,
    wait_event,
)

CALLER = "+38761000001"
PLAN = """language: en
steps:
  support:
    queue: support
    agents: ["201"]
    ring_timeout: 10s
    announce_every: 0s
    callback_key: "1"
    callback_attempts: 2
    callback_retry: 10s
"""
AGENT = "uas-queue-agent-checks-callback-talks-then-hangs-up.xml"  # talks 8 s, then BYE
NETWORK = "uas-bridged-answers-then-expects-bye.xml"  # the caller's phone, called back


def _caller(sipp: str, tmp_path: Path, server: ServerProcess) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the queue as +38761000001, staying until the server's BYE."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-queue-caller-expects-bye.xml"), "-key", "caller", CALLER),
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
            *("-s", QUEUE_NUMBER, f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def _rtp_port(server: ServerProcess, target: str) -> int:
    return int(str(wait_event(server, "call.forwarding", target=target)["rtp_port"]))


def test_a_callback_request_rings_the_agent_and_calls_the_caller_back(
    sipp: str, tmp_path: Path
) -> None:
    """The caller presses 1 while waiting and is hung up on after the confirmation; 201 logs
    in and registers, is rung for the request, answers; the server calls the caller back
    through the route and bridges them both ways; the CDRs and the queue event log say so."""
    caller, agent, network = RtpParty(0x55), RtpParty(TRANSFEROR_FILL), RtpParty(TARGET_FILL)
    procs: list[subprocess.Popen[str]] = []
    write_group(tmp_path)
    plans = plan_dir(tmp_path, QUEUE_NUMBER, PLAN)
    peer, peer_port = start_uas(
        sipp, tmp_path, "-sf", str(SCENARIOS / NETWORK), "-key", "rtp_port", str(network.port)
    )
    procs.append(peer)
    route = {"host": HOST, "port": peer_port, "prefixes": ["+38761"]}
    trunks = {**CALLING, "customers": {"acme": {"agents": 2}}, "routes": {"mobile": route}}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans)
    try:
        _dial(sipp, tmp_path, server, "201", "*45")  # logged in; its phone not registered yet
        procs.append(_caller(sipp, tmp_path, server))
        caller.send_to(int(str(wait_event(server, "call.answered", trunk="test")["rtp_port"])))
        time.sleep(1.0)  # in the greeting: the key stops it
        caller.press("1")
        wait_event(server, "queue.callback_requested", number=CALLER)
        finished_all([procs.pop()], server)  # the confirmation, then the server's BYE
        port = register_ext(sipp, tmp_path, server, "201")
        procs.append(sipp_phone(sipp, tmp_path, AGENT, port, agent))
        agent.send_to(_rtp_port(server, "+38733100201"))
        network.send_to(_rtp_port(server, CALLER))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        for party in (caller, agent, network):
            party.close()
    assert heard(agent.received, TARGET_FILL) > 100, "the agent did not hear the caller"
    assert heard(network.received, TRANSFEROR_FILL) > 100, "the caller did not hear the agent"
    records = exported_cdrs(tmp_path / "var")
    waited = next(r for r in records if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a")
    assert waited["end_detail"] == "queue support: callback" and waited["queue"] == "support"
    back = next(r for r in records if r.get("called_e164") == CALLER.lstrip("+"))
    assert (back["leg"], back["direction"], back["disposition"]) == ("b", "outbound", "ANSWERED")
    assert (back["queue"], back["answered_by"], back["customer"]) == (
        "support",
        "+38733100201",
        "acme",
    )
    assert back["tariff"] and back["payer"] == "caller"  # rated as acme's call out
    kinds = [e["kind"] for e in queue_events(tmp_path) if e.get("queue") == "support"]
    callback = [k for k in kinds if k.startswith("callback_")]
    assert callback == ["callback_requested", "callback_dialled", "callback_answered"]
    assert kinds.index("join") < kinds.index("callback_requested")
    assert "call_end" in kinds[kinds.index("callback_answered") :]
