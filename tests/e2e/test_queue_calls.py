"""The ``queue`` step end to end: SIPp callers on a trunk dial acme's queue number, acme's
phones 201 and 202 are the agents (logged in as a restart finds them: ``agents.sqlite``),
SIPp plays the agents' registered phones.

An agent answers and the caller is bridged to it, its CDR naming the queue, its wait and the
agent; no agent logged in takes the ``no_agents`` branch; agents whose phones are not
registered leave the caller waiting until the queue's maximum wait, the ``timeout`` branch.
"""

from __future__ import annotations

import json
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callserver.cdr.stamps import parse_stamp
from callserver.commands.stats import queue_report
from callserver.queues.agents import Agent, AgentState
from callserver.queues.store import SqliteAgentStore
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
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.transfers import finished_all, reap, register_ext, sipp_phone, wait_event

QUEUE_NUMBER = "38733100250"  # in acme's block, no subscriber's
PLAN = """language: en
steps:
  support:
    queue: support
    agents: ["201", "202"]
    strategy: {strategy}
    vip: ["+38761999999"]
    ring_timeout: {ring_timeout}
    wrap_up: 2s
    max_wait: {max_wait}
    announce_every: 3s
    display: "Support: "
    alert_info: "<urn:alert:service:normal>"
    call_info: "<https://crm.example/?n=${{caller}}>;purpose=info"
    leave_key: "9"
    timeout: too_long
    no_agents: closed
    left: too_long
  too_long:
    play: goodbye
    next: end
  closed:
    play: closed
  end:
    hangup:
"""
STAYS = "uac-queue-caller-stays-then-bye.xml"  # a caller who hangs up after a while
SHOWS = "uas-queue-agent-checks-display-then-expects-bye.xml"  # an agent's phone
TRUNKS = {**CALLING, "customers": {"acme": {"agents": 2}}}


def logged_in(tmp_path: Path, *extensions: str) -> None:
    """acme's phones ``extensions`` logged in and available, as a restart finds them."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    agents = [
        Agent(
            number=f"+38733100{ext}",
            customer="acme",
            extension=ext,
            state=AgentState.AVAILABLE,
            since=0.0,
            at=at,
        )
        for ext in extensions
    ]
    data = tmp_path / "var"
    data.mkdir(exist_ok=True)
    store = SqliteAgentStore.open(data)
    try:
        store.apply(agents, 0.0, at)
    finally:
        store.close()


def queue_server(
    tmp_path: Path,
    *agents: str,
    max_wait: str = "60s",
    strategy: str = "longest_idle",
    ring_timeout: str = "10s",
) -> ServerProcess:
    """The server with acme's phones, ``agents`` logged in and the queue plan."""
    write_group(tmp_path)
    logged_in(tmp_path, *agents)
    plan = PLAN.format(max_wait=max_wait, strategy=strategy, ring_timeout=ring_timeout)
    plans = plan_dir(tmp_path, QUEUE_NUMBER, plan)
    return start_server(tmp_path, trunks=TRUNKS, dialplans=plans)


def phone_run(sipp: str, tmp_path: Path, scenario: str, port: int) -> subprocess.Popen[str]:
    """SIPp playing the phone registered at ``port`` for one call of ``scenario``."""
    return start_uas(sipp, tmp_path, "-sf", str(SCENARIOS / scenario), port=port)[0]


def queue_caller(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    rtp: RtpParty,
    stay_ms: int,
    number: str = "+38761000000",
) -> subprocess.Popen[str]:
    """SIPp on the trunk, calling the queue as ``number``; it hangs up ``stay_ms`` after the
    server's answer."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / STAYS), "-key", "caller", number),
            *("-key", "rtp_port", str(rtp.port), "-d", str(stay_ms), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "60s", "-timeout_error", "-s", QUEUE_NUMBER),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def _expecting_bye(sipp: str, tmp_path: Path, server: ServerProcess) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the queue number and staying until the server's BYE."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", QUEUE_NUMBER),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def queue_events(tmp_path: Path) -> list[dict[str, object]]:
    """The queue event log's lines, in order."""
    lines = []
    for path in sorted((tmp_path / "var" / "queue-events").glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def _caller_cdr(tmp_path: Path) -> dict[str, object]:
    records = exported_cdrs(tmp_path / "var")
    return next(r for r in records if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a")


def test_an_agent_answers_and_the_caller_is_bridged_to_it(sipp: str, tmp_path: Path) -> None:
    """202's phone shows the caller after the display prefix, with Alert-Info and Call-Info,
    and answers: the caller is bridged to it; the CDR names the queue, the wait and the agent,
    and the queue event log has the join, ring and answer."""
    server = queue_server(tmp_path, "202")
    caller_rtp, agent_rtp = tone_party(440.0), tone_party(700.0)
    procs: list[subprocess.Popen[str]] = []
    try:
        port = register_ext(sipp, tmp_path, server, "202")
        procs.append(sipp_phone(sipp, tmp_path, SHOWS, port, agent_rtp))
        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp, 6000, "+38761000001"))
        wait_event(server, "call.bridged")
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        caller_rtp.close()
        agent_rtp.close()
    record = _caller_cdr(tmp_path)
    assert record["queue"] == "support" and record["answered_by"] == "+38733100202"
    assert isinstance(record["queue_wait"], int) and 0 <= record["queue_wait"] < 10000
    kinds = [event["kind"] for event in queue_events(tmp_path)]
    assert kinds[:3] == ["join", "ring", "answer"]
    _talk_from_the_cdrs(tmp_path, record, "+38733100202")


def _talk_from_the_cdrs(tmp_path: Path, record: dict[str, object], agent: str) -> None:
    """The statistics of the call's hour take its talk from the agent's leg in the CDRs,
    which the queue log's call_start and call_end agree with within the check's second."""
    since = parse_stamp(str(record["start_stamp"])) - timedelta(hours=1)
    stats, problems = queue_report(tmp_path / "var", since=since, until=since + timedelta(hours=3))
    assert problems == []
    assert stats.talk_check is not None
    assert (stats.talk_check.from_cdrs, stats.talk_check.log_only) == (1, 0), stats.talk_check
    assert stats.talk_check.differing == () and stats.talk_check.cdr_only == ()
    (figures,) = [a for a in stats.agents if a.agent == agent]
    assert figures.calls == 1 and figures.talk_time > 0


def test_no_agent_logged_in_takes_the_no_agents_branch(sipp: str, tmp_path: Path) -> None:
    """Nobody logged in: the caller hears the closed notice and the server hangs up."""
    server = queue_server(tmp_path)
    try:
        proc = _expecting_bye(sipp, tmp_path, server)
        finished_all([proc], server)
    finally:
        server.stop()
    record = _caller_cdr(tmp_path)
    assert record["end_detail"] == "queue support: no_agents"
    assert record["queue"] == "support" and record["queue_wait"] == 0


def test_agents_that_never_ring_leave_the_caller_to_its_maximum_wait(
    sipp: str, tmp_path: Path
) -> None:
    """Logged in, but no phone registered: every ring fails, and after max_wait the caller
    takes the timeout branch (goodbye, hang-up) with a wait of about 3 s."""
    server = queue_server(tmp_path, "201", "202", max_wait="3s")
    try:
        proc = _expecting_bye(sipp, tmp_path, server)
        finished_all([proc], server)
    finally:
        server.stop()
    record = _caller_cdr(tmp_path)
    assert record["end_detail"] == "queue support: timeout"
    assert isinstance(record["queue_wait"], int) and 2900 <= record["queue_wait"] <= 4000


def test_the_leave_key_takes_the_left_branch(sipp: str, tmp_path: Path) -> None:
    """An agent logged in but its phone away: the caller presses 9 while waiting, leaves the
    queue (a leave line with its wait) and hears goodbye before the hang-up."""
    server = queue_server(tmp_path, "202")
    caller_rtp = tone_party(440.0)
    try:
        proc = _expecting_bye(sipp, tmp_path, server)
        caller_rtp.send_to(int(str(wait_event(server, "call.answered")["rtp_port"])))
        time.sleep(1.0)
        caller_rtp.press("9")
        finished_all([proc], server)
    finally:
        server.stop()
        caller_rtp.close()
    record = _caller_cdr(tmp_path)
    assert record["end_detail"] == "queue support: left"
    assert record["steps"] == ["support", "too_long", "end"]
    (left,) = [event for event in queue_events(tmp_path) if event["kind"] == "leave"]
    assert isinstance(left["wait"], float) and 0.5 <= left["wait"] <= 5.0


def test_ring_all_the_first_answer_wins_and_the_other_phone_is_cancelled(
    sipp: str, tmp_path: Path
) -> None:
    """ring_all: both agents' phones ring; 201 answers after 1 s and 202's ring is cancelled
    with "Call completed elsewhere" (its SIPp checks the CANCEL's Reason)."""
    server = queue_server(tmp_path, "201", "202", strategy="ring_all")
    caller_rtp = tone_party(440.0)
    procs: list[subprocess.Popen[str]] = []
    try:
        first, second = (register_ext(sipp, tmp_path, server, ext) for ext in ("201", "202"))
        procs.append(phone_run(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", first))
        procs.append(
            phone_run(sipp, tmp_path, "uas-rings-expects-cancel-completed-elsewhere.xml", second)
        )
        procs.append(queue_caller(sipp, tmp_path, server, caller_rtp, 3000, "+38761000001"))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
        caller_rtp.close()
    assert _caller_cdr(tmp_path)["answered_by"] == "+38733100201"
    events = queue_events(tmp_path)
    rung = sorted(str(e["agent"]) for e in events if e["kind"] == "ring")
    answers = [e["agent"] for e in events if e["kind"] == "answer"]
    assert rung == ["+38733100201", "+38733100202"] and answers == ["+38733100201"]


def test_an_unanswered_ring_is_cancelled_at_the_agents_ring_timeout(
    sipp: str, tmp_path: Path
) -> None:
    """202's phone rings and nobody picks up: after 2 s the server CANCELs it (no Reason),
    a ring_noanswer line says timeout, and the caller reaches its maximum wait."""
    server = queue_server(tmp_path, "202", ring_timeout="2s", max_wait="4s")
    procs: list[subprocess.Popen[str]] = []
    try:
        port = register_ext(sipp, tmp_path, server, "202")
        procs.append(phone_run(sipp, tmp_path, "uas-rings-until-cancelled.xml", port))
        procs.append(_expecting_bye(sipp, tmp_path, server))
        finished_all(procs, server)
    finally:
        reap(procs)
        server.stop()
    unanswered = [e for e in queue_events(tmp_path) if e["kind"] == "ring_noanswer"]
    assert [(e["agent"], e["reason"]) for e in unanswered] == [("+38733100202", "timeout")]
    assert _caller_cdr(tmp_path)["end_detail"] == "queue support: timeout"
