"""A callback request end to end: a SIPp caller on the trunk waits in acme's queue, presses
the callback key (RFC 4733 from its ``RtpParty``), hears the confirmation and the server's BYE;
phone 201 logs in by ``*45`` (SIPp with its digest) and registers (SIPp as the phone); the
request rings it showing "Callback: +38761000001", it answers, and the server calls
+38761000001 through the route of +38761 to a SIPp uas standing for the caller's network, then
bridges the two (each ``RtpParty``'s audio reaches the other). A number busy at the first call
is called again after the queue's callback_retry.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
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
    ANSWERS,
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
    wrap_up: 1s
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


def _rtp_port(server: ServerProcess, target: str, nth: int = 1) -> int:
    """The RTP port of the ``nth`` leg the server placed to ``target`` (waits 30 s)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        legs = [e for e in server.events("call.forwarding") if e.get("target") == target]
        if len(legs) >= nth:
            return int(str(legs[nth - 1]["rtp_port"]))
        time.sleep(0.05)
    raise AssertionError(f"no leg {nth} to {target}\n" + "\n".join(server.raw[-60:]))


def _requesting(
    sipp: str, tmp_path: Path, network: list[str]
) -> tuple[ServerProcess, subprocess.Popen[str], int]:
    """The caller's network (SIPp ``network`` arguments on a free port, the route of +38761),
    the server, 201 logged in by *45, and the caller's request made (it pressed 1 and heard
    the server's BYE): the server, the network's SIPp and its port."""
    write_group(tmp_path)
    plans = plan_dir(tmp_path, QUEUE_NUMBER, PLAN)
    peer, peer_port = start_uas(sipp, tmp_path, *network)
    route = {"host": HOST, "port": peer_port, "prefixes": ["+38761"]}
    trunks = {**CALLING, "customers": {"acme": {"agents": 2}}, "routes": {"mobile": route}}
    server = start_server(tmp_path, trunks=trunks, dialplans=plans)
    caller = RtpParty(0x55)
    try:
        _dial(sipp, tmp_path, server, "201", "*45")  # logged in; its phone not registered yet
        waiting = _caller(sipp, tmp_path, server)
        caller.send_to(int(str(wait_event(server, "call.answered", trunk="test")["rtp_port"])))
        time.sleep(1.0)  # in the greeting: the key stops it
        caller.press("1")
        wait_event(server, "queue.callback_requested", number=CALLER)
        finished_all([waiting], server)  # the confirmation, then the server's BYE
    except BaseException:
        reap([peer])
        server.stop()
        raise
    finally:
        caller.close()
    return server, peer, peer_port


def test_a_callback_request_rings_the_agent_and_calls_the_caller_back(
    sipp: str, tmp_path: Path
) -> None:
    """The caller presses 1 while waiting and is hung up on after the confirmation; 201 logs
    in and registers, is rung for the request, answers; the server calls the caller back
    through the route and bridges them both ways; the CDRs and the queue event log say so."""
    agent, network = RtpParty(TRANSFEROR_FILL), RtpParty(TARGET_FILL)
    answers = ["-sf", str(SCENARIOS / NETWORK), "-key", "rtp_port", str(network.port)]
    server, peer, _ = _requesting(sipp, tmp_path, answers)
    procs = [peer]
    try:
        port = register_ext(sipp, tmp_path, server, "201")
        procs.append(sipp_phone(sipp, tmp_path, AGENT, port, agent))
        agent.send_to(_rtp_port(server, "+38733100201"))
        network.send_to(_rtp_port(server, CALLER))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        for party in (agent, network):
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


def test_a_busy_number_is_called_again_after_the_retry_wait(sipp: str, tmp_path: Path) -> None:
    """The first call back finds the number busy (486): the agent's leg is hung up and the
    request waits callback_retry (10 s); the second call, by the agent rung again, is answered
    and bridged. Two outbound CDRs, the busy one first; the log has the failure's reason."""
    agent, network = RtpParty(TRANSFEROR_FILL), RtpParty(TARGET_FILL)
    busy = ["-sf", str(SCENARIOS / "uas-busy-486.xml")]
    server, peer, peer_port = _requesting(sipp, tmp_path, busy)
    procs = [peer]
    try:
        port = register_ext(sipp, tmp_path, server, "201")
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, agent))
        finished_all(procs, server)  # the number busy, the agent's leg hung up
        answers = ["-sf", str(SCENARIOS / NETWORK), "-key", "rtp_port", str(network.port)]
        procs = [start_uas(sipp, tmp_path, *answers, port=peer_port)[0]]
        procs.append(sipp_phone(sipp, tmp_path, AGENT, port, agent))
        agent.send_to(_rtp_port(server, "+38733100201", nth=2))
        network.send_to(_rtp_port(server, CALLER, nth=2))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        for party in (agent, network):
            party.close()
    assert heard(network.received, TRANSFEROR_FILL) > 100, "the caller did not hear the agent"
    records = exported_cdrs(tmp_path / "var")
    back = sorted(
        (r for r in records if r.get("called_e164") == CALLER.lstrip("+")),
        key=lambda r: str(r["start_stamp"]),
    )
    assert [r["sip_code"] for r in back] == [486, 200] and back[1]["disposition"] == "ANSWERED"
    assert [r["answered_by"] for r in back] == ["+38733100201"] * 2
    events = [e for e in queue_events(tmp_path) if str(e["kind"]).startswith("callback_")]
    assert [(e["kind"], e["reason"]) for e in events] == [
        ("callback_requested", None),
        ("callback_dialled", None),
        ("callback_failed", "busy"),
        ("callback_dialled", None),
        ("callback_answered", None),
    ]
    failed, again = (_at(e) for e in events[2:4])
    assert (again - failed).total_seconds() >= 10.0  # callback_retry


def _at(event: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))
