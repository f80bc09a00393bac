"""The agent softphone end to end with a Python WebRTC client (aiortc) as the browser: it
says hello over /api/softphone, negotiates its audio, logs agent 201 in; a SIPp caller on the
trunk calls the queue and rings it; it answers and the two hear each other's tones; it holds
(the caller stops hearing it) and hangs up (the caller gets BYE); the CDR names the agent."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import ServerProcess, exported_cdrs
from tests.e2e.rooms import louder, received_samples
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.softphone_calls import (
    ACME,
    AGENT,
    GLOBEX,
    OPERATOR,
    QUEUE_NUMBER,
    admin_port,
    queue_caller,
    softphone_server,
)
from tests.e2e.softphone_client import SoftphoneClient
from tests.e2e.subscribers import PHONES, REALM, write_group
from tests.e2e.transfers import (
    ANSWERS,
    TARGET_FILL,
    finished_all,
    reap,
    register_ext,
    sipp_phone,
    wait_event,
)

CALLER_TONE, AGENT_TONE = 440.0, 1000.0


async def test_an_agent_answers_a_queue_call_from_the_softphone(sipp: str, tmp_path: Path) -> None:
    """Login, ringing with the queue's display, answer, both tones heard each way, hold
    silences the agent for the caller and resume brings it back, the agent's hang-up sends
    BYE to the caller."""
    server = softphone_server(tmp_path)
    caller_rtp = tone_party(CALLER_TONE)
    client = SoftphoneClient(admin_port(server), AGENT_TONE)
    procs: list[subprocess.Popen[str]] = []
    try:
        ready = await client.connect(ACME, "201")
        assert ready["type"] == "ready" and ready["agent"]["number"] == AGENT, ready
        await client.wait_for(lambda m: m["type"] == "registration" and m["registered"])
        answer = await client.start_audio()
        candidates = [line for line in answer.splitlines() if line.startswith("a=candidate:")]
        assert candidates and all(line.split()[4] == "127.0.0.1" for line in candidates)
        assert "PCMU/8000" in answer and "opus" not in answer  # G.711 preferred
        await client.send({"type": "login"})
        login = await client.wait_for(lambda m: m["type"] == "agent")
        assert login["outcome"] == "logged_in", login

        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp))
        incoming = await client.wait_for(lambda m: m["type"] == "incoming", within=20)
        assert incoming["display"] == "Support: +38761000001", incoming
        await client.send({"type": "accept"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "talking")
        answered = await asyncio.to_thread(wait_event, server, "call.answered")
        caller_rtp.send_to(int(str(answered["rtp_port"])))

        heard_from, caller_from = len(client.heard), len(caller_rtp.received)
        await asyncio.sleep(2.0)
        agent_side = client.heard_since(heard_from)[4000:]  # after the first half second
        caller_side = received_samples(caller_rtp, caller_from)[4000:]
        assert len(agent_side) >= 8000 and len(caller_side) >= 8000
        assert louder(agent_side, CALLER_TONE, AGENT_TONE), "the agent does not hear the caller"
        assert louder(caller_side, AGENT_TONE, CALLER_TONE), "the caller does not hear the agent"

        await client.send({"type": "hold"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "held")
        await asyncio.sleep(0.5)
        held_from = len(caller_rtp.received)
        await asyncio.sleep(1.0)
        on_hold = received_samples(caller_rtp, held_from)
        assert not louder(on_hold, AGENT_TONE, CALLER_TONE), "the caller still hears the agent"
        await client.send({"type": "resume"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "talking")
        await asyncio.sleep(0.5)
        resumed_from = len(caller_rtp.received)
        await asyncio.sleep(1.0)
        resumed = received_samples(caller_rtp, resumed_from)
        assert louder(resumed, AGENT_TONE, CALLER_TONE), "the caller does not hear the agent again"

        await client.send({"type": "hangup"})
        ended = await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "ended")
        assert ended["detail"] == "hung up by the agent"
        out, _ = await asyncio.to_thread(procs[0].communicate, timeout=20)
        assert procs[0].returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])
    finally:
        await client.close()
        reap(procs)
        server.stop()
        caller_rtp.close()
    caller = next(r for r in exported_cdrs(tmp_path / "var") if r["called_raw"] == QUEUE_NUMBER)
    assert caller["answered_by"] == AGENT and caller["queue"] == "support"


async def test_the_agent_transfers_its_caller_to_another_phone(sipp: str, tmp_path: Path) -> None:
    """The agent answers a queue call on the softphone and transfers it to phone 202 (a
    REFER), which answers: the softphone's call ends, 202 talks with the caller until the
    caller hangs up; a call to the agent's own number is transferred the same way."""
    server = softphone_server(tmp_path)
    caller_rtp, target_rtp = tone_party(CALLER_TONE), RtpParty(TARGET_FILL)
    client = SoftphoneClient(admin_port(server), AGENT_TONE)
    procs: list[subprocess.Popen[str]] = []
    try:
        port = await asyncio.to_thread(register_ext, sipp, tmp_path, server, "202")
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, target_rtp))
        await client.connect(ACME, "201")
        await client.wait_for(lambda m: m["type"] == "registration" and m["registered"])
        await client.start_audio()
        await client.send({"type": "login"})
        await client.wait_for(lambda m: m["type"] == "agent")
        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp, stay_ms=6000))
        await client.wait_for(lambda m: m["type"] == "incoming", within=20)
        await client.send({"type": "accept"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "talking")
        await asyncio.to_thread(wait_event, server, "call.bridged")  # the ACK came: bridged
        await client.send({"type": "transfer", "to": "202"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "transferring")
        ended = await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "ended")
        assert "bye_received" in ended["detail"], ended
        accepted = await asyncio.to_thread(wait_event, server, "call.transfer_accepted")
        assert (accepted["target"], accepted["transferor"]) == ("202", AGENT)
        await asyncio.to_thread(finished_all, procs, server)
    finally:
        await client.close()
        reap(procs)
        server.stop()
        caller_rtp.close()
        target_rtp.close()
    legs = exported_cdrs(tmp_path / "var")
    assert any(r.get("transferred_from") for r in legs), legs
    caller = next(r for r in legs if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a")
    assert caller["answered_by"] == AGENT


async def test_closing_the_softphone_logs_the_agent_out_and_unregisters(tmp_path: Path) -> None:
    """An agent who logged in from the page and closes it is logged out (its queues stop
    ringing a phone that is gone) and its binding is removed."""
    server = softphone_server(tmp_path)
    client = SoftphoneClient(admin_port(server), AGENT_TONE)
    try:
        await client.connect(OPERATOR, AGENT)
        await client.wait_for(lambda m: m["type"] == "registration" and m["registered"])
        await client.send({"type": "login"})
        assert (await client.wait_for(lambda m: m["type"] == "agent"))["state"] == "available"
        await client.close()
        event = await asyncio.to_thread(wait_event, server, "queues.agent_request", action="logout")
        assert event["outcome"] == "logged_out"
        await asyncio.to_thread(wait_event, server, "softphone.closed")
        again = SoftphoneClient(admin_port(server), AGENT_TONE)
        try:
            ready = await again.connect(OPERATOR, AGENT)
            assert ready["agent"]["state"] == "logged_out", ready
        finally:
            await again.close()
        await asyncio.to_thread(_logged, server, "softphone.registration", 2, detail="unregistered")
    finally:
        server.stop()
    unregistered = [
        e for e in server.events("softphone.registration") if e["detail"] == "unregistered"
    ]
    assert len(unregistered) == 2


async def test_an_agent_who_closes_the_page_in_a_call_hangs_up_and_is_logged_out(
    sipp: str, tmp_path: Path
) -> None:
    """The page closes in the middle of a queue call: the caller gets BYE and the agent,
    whose call the queue sees end, is logged out."""
    server = softphone_server(tmp_path)
    caller_rtp = tone_party(CALLER_TONE)
    client = SoftphoneClient(admin_port(server), AGENT_TONE)
    procs: list[subprocess.Popen[str]] = []
    try:
        await client.connect(ACME, "201")
        await client.wait_for(lambda m: m["type"] == "registration" and m["registered"])
        await client.start_audio()
        await client.send({"type": "login"})
        await client.wait_for(lambda m: m["type"] == "agent")
        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp))
        await client.wait_for(lambda m: m["type"] == "incoming", within=20)
        await client.send({"type": "accept"})
        await client.wait_for(lambda m: m["type"] == "call" and m["state"] == "talking")
        await client.close()
        out, _ = await asyncio.to_thread(procs[0].communicate, timeout=20)
        assert procs[0].returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])
        await asyncio.to_thread(
            _logged, server, "queues.agent_request", 1, action="logout", outcome="logged_out"
        )
    finally:
        await client.close()
        reap(procs)
        server.stop()
        caller_rtp.close()


def _logged(server: ServerProcess, name: str, count: int, **match: str) -> None:
    """Waits (10 s at most) until the server logged ``count`` ``name`` events matching."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = [e for e in server.events(name) if all(e.get(k) == v for k, v in match.items())]
        if len(found) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} {name} {match}\n" + "\n".join(server.raw[-30:]))


async def test_a_phone_without_the_ha1_the_server_asks_for_is_not_registered(
    tmp_path: Path,
) -> None:
    """Phone 201 with only a SHA-256 HA1 against a server asking MD5: the page is told why
    its phone is not registered, in words an operator can act on."""
    write_group(tmp_path)
    centrex = yaml.safe_load((tmp_path / "centrex.yaml").read_text())
    phone = centrex["groups"]["acme-office"]["subscribers"]["+387 33 100 201"]
    phone["ha1_sha256"] = password_ha1("38733100201", REALM, PHONES["201"], "SHA-256")
    del phone["ha1_md5"]
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump(centrex))
    server = softphone_server(tmp_path, group=False)
    client = SoftphoneClient(admin_port(server), AGENT_TONE)
    try:
        await client.connect(ACME, "201")
        refused = await client.wait_for(lambda m: m["type"] == "registration")
        assert not refused["registered"]
        assert refused["detail"] == (
            "the server answered 401 Unauthorized to REGISTER: centrex.yaml holds no HA1 of "
            "38733100201 for the digest algorithms the server asks (callserver passwd prints "
            "them)"
        )
    finally:
        await client.close()
        server.stop()


async def test_a_customer_token_acts_only_as_its_own_customers_agents(tmp_path: Path) -> None:
    """globex's token cannot open acme's agent (4403, as a number that is no agent); a wrong
    token is 4401; a second softphone of one agent is 4409; requests that cannot be done are
    answered with an error saying why."""
    server = softphone_server(tmp_path)
    clients = [SoftphoneClient(admin_port(server), AGENT_TONE) for _ in range(4)]
    try:
        refused = await clients[0].connect(GLOBEX, AGENT)
        assert refused["type"] == "error" and "not an agent" in refused["error"]
        closed = await clients[0].wait_for(lambda m: m["type"] == "closed")
        assert closed["code"] == 4403
        wrong = await clients[1].connect("not-a-token", AGENT)
        assert wrong["type"] == "error" and "admin.tokens" in wrong["error"]
        ready = await clients[2].connect(ACME, AGENT)
        assert ready["type"] == "ready"
        twice = await clients[3].connect(ACME, "201")
        assert twice["type"] == "error" and "already" in twice["error"]
        await clients[2].send({"type": "pause", "reason": "lunch"})
        paused = await clients[2].wait_for(lambda m: m["type"] == "agent")
        assert (paused["outcome"], paused["reason"]) == ("logged_out", None)  # never logged in
        await clients[2].send({"type": "accept"})
        refused = await clients[2].wait_for(lambda m: m["type"] == "error")
        assert refused["error"] == "cannot accept: no call is ringing"
        await clients[2].send({"type": "dial"})
        unknown = await clients[2].wait_for(lambda m: m["type"] == "error")
        assert unknown["error"].startswith("unknown message type 'dial'")
    finally:
        for client in clients:
            await client.close()
        server.stop()
