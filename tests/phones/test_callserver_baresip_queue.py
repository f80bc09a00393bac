"""baresip as a call-centre agent: phone 202 registers, logs in with *45, and a trunk caller
(SIPp) waiting in acme's support queue is put through to it.

The queue plan is the queue e2e tests' (tests/e2e/test_queue_calls.py) on acme's queue number;
only 202 logs in, so only its phone rings. The caller's media is an RTP party sending
``CALLER`` Hz, baresip's microphone sends ``AGENT`` Hz; who hears whom is read from each
one's spectrum.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    plan_dir,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rooms import magnitude, received_samples
from tests.e2e.rtp_party import tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_queue_calls import PLAN, QUEUE_NUMBER, queue_caller, queue_events
from tests.e2e.transfers import finished_all, reap, wait_event
from tests.phones.audio import dominant_frequency, rms
from tests.phones.baresip import Baresip
from tests.phones.centrex import group_phone, microphone

CALLER, AGENT = 440.0, 700.0
AGENT_NUMBER = "+38733100202"


def _server(tmp_path: Path) -> ServerProcess:
    """acme's phones 201 and 202 (MD5 challenges, as baresip 1.0 needs), 2 agent licences,
    and the queue plan (agents 201 and 202, ringing each for 20 s)."""
    write_group(tmp_path)
    trunks = {
        **CALLING,
        "digest": {"algorithms": ["MD5"]},
        "customers": {"acme": {"agents": 2}},
    }
    plan = PLAN.format(max_wait="60s", strategy="ring_all", ring_timeout="20s")
    return start_server(tmp_path, trunks=trunks, dialplans=plan_dir(tmp_path, QUEUE_NUMBER, plan))


def _microphone(tmp_path: Path) -> Path:
    """The agent's microphone: 30 s of ``AGENT`` Hz (baresip hangs up when it ends)."""
    return microphone(tmp_path, AGENT, 30.0)


def _logs_in(phone: Baresip, server: ServerProcess) -> None:
    """``phone`` dials *45: the server answers, says 'you are logged in' and hangs up."""
    phone.dial(f"sip:*45@{HOST}:{server.port}")
    phone.wait_for("established", timeout=10)
    phone.wait_for("closed", timeout=20)
    request = server.wait_for("queues.agent_request")
    assert (request["agent"], request["outcome"]) == (AGENT_NUMBER, "logged_in"), request


def _answered_port(server: ServerProcess, before: int) -> int:
    """The RTP port of the first call the server answers after the ``before`` it had."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answered = server.events("call.answered")
        if len(answered) > before:
            return int(str(answered[before]["rtp_port"]))
        time.sleep(0.05)
    raise AssertionError("the queue caller was not answered\n" + "\n".join(server.raw[-40:]))


def test_baresip_logs_in_as_an_agent_and_answers_a_waiting_caller(
    sipp: str, tmp_path: Path
) -> None:
    """202's baresip logs in with *45; a SIPp caller joins the queue, baresip rings and
    auto-answers, each end hears the other's tone through the bridge, and the caller's CDR
    names 202 in answered_by; the queue log has its login, the ring, the answer."""
    caller_rtp = tone_party(CALLER)
    procs = []
    try:
        with (
            stopped_on_exit(_server(tmp_path)) as server,
            Baresip(tmp_path / "p202", _microphone(tmp_path), group_phone(server, "202")) as agent,
        ):
            agent.wait_for("registered", timeout=5)
            _logs_in(agent, server)
            before = len(server.events("call.answered"))  # the *45 call's
            procs.append(queue_caller(sipp, tmp_path, server, caller_rtp, 8000, "+38761000001"))
            caller_rtp.send_to(_answered_port(server, before))
            agent.wait_for("established", timeout=15)
            wait_event(server, "call.bridged")
            start = len(caller_rtp.received)
            time.sleep(3.0)  # 150 packets of the bridged call
            window = (start, len(caller_rtp.received))
            finished_all(procs, server)
            agent.wait_for("closed", timeout=10)
    finally:
        reap(procs)
        caller_rtp.close()
    heard_by_agent = agent.received_audio()
    assert len(heard_by_agent) >= 8000, "the agent received less than a second of audio"
    assert dominant_frequency(heard_by_agent) == pytest.approx(CALLER, abs=10.0)
    assert rms(heard_by_agent) > 2000
    heard_by_caller = received_samples(caller_rtp, *window)
    assert len(heard_by_caller) > 8000, len(heard_by_caller)
    levels = {tone: magnitude(heard_by_caller, tone) for tone in (CALLER, AGENT)}
    assert levels[AGENT] > 1e4 and levels[CALLER] < levels[AGENT] / 30, levels
    record = next(
        r
        for r in exported_cdrs(server.data_dir)
        if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a"
    )
    assert (record["queue"], record["answered_by"]) == ("support", AGENT_NUMBER), record
    lines = [(e["kind"], e["agent"]) for e in queue_events(tmp_path) if e["kind"] != "join"]
    assert lines[:4] == [
        ("login", AGENT_NUMBER),
        ("ring", AGENT_NUMBER),
        ("answer", AGENT_NUMBER),
        ("call_start", AGENT_NUMBER),
    ], lines
