"""The ``queue`` step end to end: SIPp callers on a trunk dial acme's queue number, acme's
phones 201 and 202 are the agents (logged in as a restart finds them: ``agents.sqlite``),
SIPp plays the agents' registered phones.

An agent answers and the caller is bridged to it, its CDR naming the queue, its wait and the
agent; no agent logged in takes the ``no_agents`` branch; agents whose phones are not
registered leave the caller waiting until the queue's maximum wait, the ``timeout`` branch.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

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
)
from tests.e2e.rtp_party import tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.transfers import ANSWERS, finished_all, reap, register_ext, sipp_phone, wait_event

QUEUE_NUMBER = "38733100250"  # in acme's block, no subscriber's
PLAN = """language: en
steps:
  support:
    queue: support
    agents: ["201", "202"]
    strategy: longest_idle
    vip: ["+38761999999"]
    ring_timeout: 10s
    wrap_up: 2s
    max_wait: {max_wait}
    announce_every: 3s
    display: "Support: "
    alert_info: "<urn:alert:service:normal>"
    timeout: too_long
    no_agents: closed
  too_long:
    play: goodbye
    next: end
  closed:
    play: closed
  end:
    hangup:
"""
TRUNKS = {**CALLING, "customers": {"acme": {"agents": 2}}}


def _logged_in(tmp_path: Path, *extensions: str) -> None:
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


def _server(tmp_path: Path, *agents: str, max_wait: str = "60s") -> ServerProcess:
    write_group(tmp_path)
    _logged_in(tmp_path, *agents)
    plans = plan_dir(tmp_path, QUEUE_NUMBER, PLAN.format(max_wait=max_wait))
    return start_server(tmp_path, trunks=TRUNKS, dialplans=plans)


def _caller(
    sipp: str, tmp_path: Path, server: ServerProcess, scenario: str, *extra: str
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the queue number with ``scenario``."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / scenario), *extra, "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", QUEUE_NUMBER),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def _caller_cdr(tmp_path: Path) -> dict[str, object]:
    records = exported_cdrs(tmp_path / "var")
    return next(r for r in records if r["called_raw"] == QUEUE_NUMBER and r["leg"] == "a")


def test_an_agent_answers_and_the_caller_is_bridged_to_it(sipp: str, tmp_path: Path) -> None:
    """202 answers the queue call: the caller is bridged to it; the CDR names the queue, the
    wait and the agent, and the queue event log has the join, ring and answer."""
    server = _server(tmp_path, "202")
    caller_rtp, agent_rtp = tone_party(440.0), tone_party(700.0)
    procs: list[subprocess.Popen[str]] = []
    try:
        port = register_ext(sipp, tmp_path, server, "202")
        procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, agent_rtp))
        stays = ("-key", "rtp_port", str(caller_rtp.port), "-d", "6000")
        procs.append(_caller(sipp, tmp_path, server, "uac-conference-stays-then-bye.xml", *stays))
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
    kinds = [
        line
        for path in (tmp_path / "var" / "queue-events").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    assert any('"join"' in line for line in kinds) and any('"answer"' in line for line in kinds)


def test_no_agent_logged_in_takes_the_no_agents_branch(sipp: str, tmp_path: Path) -> None:
    """Nobody logged in: the caller hears the closed notice and the server hangs up."""
    server = _server(tmp_path)
    try:
        proc = _caller(sipp, tmp_path, server, "uac-expect-server-bye.xml")
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
    server = _server(tmp_path, "201", "202", max_wait="3s")
    try:
        proc = _caller(sipp, tmp_path, server, "uac-expect-server-bye.xml")
        finished_all([proc], server)
    finally:
        server.stop()
    record = _caller_cdr(tmp_path)
    assert record["end_detail"] == "queue support: timeout"
    assert isinstance(record["queue_wait"], int) and 2900 <= record["queue_wait"] <= 4000
