"""Waiting in a queue end to end: SIPp callers on a trunk, acme's phones 201 and 202 as agents
(logged in as a restart finds them), SIPp as their phones, an ``RtpParty`` as each caller's
media end.

Two agents busy, a third caller waits hearing the welcome, music on hold and "you are number
one" (the prompts' audio found in what it received); when an agent's call ends the third caller
is put through to it once its wrap-up is over. A VIP caller waits ahead of one who came
earlier; a caller who hangs up while waiting is logged as abandoned with its wait.
"""

from __future__ import annotations

import subprocess
import time
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import (
    PROMPTS,
    ServerProcess,
)
from tests.e2e.prompt_audio import aligned_snr_db, wav_samples
from tests.e2e.rooms import received_samples
from tests.e2e.rtp_party import tone_party
from tests.e2e.test_queue_calls import queue_caller, queue_events, queue_server
from tests.e2e.transfers import ANSWERS, finished_all, reap, register_ext, sipp_phone

WRAP_UP = 2.0  # the plan's


def _count(server: ServerProcess, name: str, count: int) -> list[dict[str, object]]:
    """Waits (20 s) until ``count`` ``name`` events are logged; all of them."""
    deadline = time.monotonic() + 20
    while len(server.events(name)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    found = server.events(name)
    assert len(found) >= count, "\n".join(server.raw[-60:])
    return found


def _stamp(event: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(event["at"]).replace("Z", "+00:00"))


def test_a_third_caller_waits_with_music_and_its_position_then_gets_the_freed_agent(
    sipp: str, tmp_path: Path
) -> None:
    """201 and 202 busy: the third caller hears the welcome, the music and "you are number
    one"; the agent whose call ends first takes it after its wrap-up; its CDR names it."""
    server = queue_server(tmp_path, "201", "202")
    rtps = {ext: tone_party(f) for ext, f in (("201", 600.0), ("202", 700.0))}
    callers = [tone_party(f) for f in (300.0, 350.0, 400.0)]
    procs: list[subprocess.Popen[str]] = []
    try:
        ports = {ext: register_ext(sipp, tmp_path, server, ext) for ext in rtps}
        phones = {ext: sipp_phone(sipp, tmp_path, ANSWERS, ports[ext], rtps[ext]) for ext in rtps}
        procs += phones.values()
        procs.append(queue_caller(sipp, tmp_path, server, callers[0], 15000, "+38761000001"))
        _count(server, "call.bridged", 1)
        procs.append(queue_caller(sipp, tmp_path, server, callers[1], 22000, "+38761000002"))
        _count(server, "call.bridged", 2)
        procs.append(queue_caller(sipp, tmp_path, server, callers[2], 26000, "+38761000003"))
        answered = _count(server, "call.answered", 3)[2]
        callers[2].send_to(int(str(answered["rtp_port"])))
        deadline = time.monotonic() + 25
        while all(p.poll() is None for p in phones.values()) and time.monotonic() < deadline:
            time.sleep(0.05)  # the first caller's agent hangs up when its caller does
        busy = next(ext for ext, p in phones.items() if p.poll() is not None)
        heard_while_waiting = received_samples(callers[2], 0)  # from its answer on
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, ports[busy], rtps[busy]))
        _count(server, "call.bridged", 3)
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        for party in (*rtps.values(), *callers):
            party.close()
    music = wav_samples(PROMPTS / "moh" / "chords.wav")[: 8000 * 2]
    heard = {
        prompt: aligned_snr_db(wav_samples(PROMPTS / "en" / f"{prompt}.wav"), heard_while_waiting)
        for prompt in ("queue_welcome", "queue_position", "n1")
    }
    heard["music"] = aligned_snr_db(music, heard_while_waiting)
    assert min(heard.values()) > 20, heard
    events = queue_events(tmp_path)
    third = next(
        e["call_id"] for e in events if e["kind"] == "join" and e["caller"] == "+38761000003"
    )
    joined = next(e for e in events if e["kind"] == "join" and e["call_id"] == third)
    assert joined["position"] == 1
    agent = f"+38733100{busy}"
    wrap_end = next(e for e in events if e["kind"] == "wrapup_end" and e["agent"] == agent)
    answer = next(e for e in events if e["kind"] == "answer" and e["call_id"] == third)
    ended = next(e for e in events if e["kind"] == "wrapup_start" and e["agent"] == agent)
    assert answer["agent"] == agent
    assert (_stamp(answer) - _stamp(ended)).total_seconds() >= WRAP_UP
    assert _stamp(answer) >= _stamp(wrap_end)


def test_a_vip_waits_ahead_and_a_caller_who_hangs_up_is_logged_abandoned(
    sipp: str, tmp_path: Path
) -> None:
    """201 alone and busy: a caller waits at 1, a VIP who calls later waits at 1 ahead of it
    (it moves to 2); the first hangs up and its abandon line has its wait."""
    server = queue_server(tmp_path, "201")
    rtp = tone_party(600.0)
    callers = [tone_party(f) for f in (300.0, 350.0, 400.0)]
    procs: list[subprocess.Popen[str]] = []
    try:
        port = register_ext(sipp, tmp_path, server, "201")
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, rtp))
        procs.append(queue_caller(sipp, tmp_path, server, callers[0], 8000, "+38761000001"))
        _count(server, "call.bridged", 1)
        procs.append(queue_caller(sipp, tmp_path, server, callers[1], 4000, "+38761000002"))
        _count(server, "call.answered", 2)
        procs.append(queue_caller(sipp, tmp_path, server, callers[2], 6000, "+38761999999"))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        for party in (rtp, *callers):
            party.close()
    events = queue_events(tmp_path)
    joins = {e["caller"]: e for e in events if e["kind"] == "join"}
    assert joins["+38761000002"]["position"] == 1 and joins["+38761999999"]["position"] == 1
    abandoned = {e["call_id"]: e for e in events if e["kind"] == "abandon"}
    first = abandoned[joins["+38761000002"]["call_id"]]
    assert isinstance(first["wait"], float) and 3.5 <= first["wait"] <= 6.0
    assert first["position"] == 2  # the VIP waits ahead of it
    vip = abandoned[joins["+38761999999"]["call_id"]]
    assert vip["position"] == 1  # ahead of the caller who came before it
