"""Calls through a real Kamailio edge in front of two real nodes (``tests.cluster.edge_setup``).

SIPp calls the edge; the edge spreads the calls over the nodes and keeps each call's
in-dialog requests on the node that took it (record-route); a node killed with calls up
stops getting new calls within the reply timeout (its first unanswered INVITE marks it
inactive and goes to the other node) and no new call fails.
"""

from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.cluster.edge_setup import EdgeCluster, edge_cluster
from tests.e2e.conftest import HOST, SCENARIOS, free_port, popen_sipp, run_sipp, stat_value

HANGS_UP = str(SCENARIOS / "uac-caller-hangs-up-after-answer.xml")
CALLER = ("-key", "caller", "38761000000")


def _calls(sipp: str, tmp_path: Path, edge: EdgeCluster, calls: int, rate: int, hold: int):  # type: ignore[no-untyped-def]
    """SIPp places ``calls`` calls at ``rate`` a second through the edge, each hung up by
    the caller ``hold`` ms after the answer; its result."""
    return run_sipp(
        sipp,
        tmp_path,
        edge.port,
        *("-sf", HANGS_UP, *CALLER, "-m", str(calls), "-r", str(rate), "-d", str(hold)),
        *("-trace_rtt", "-rtt_freq", "1"),
        timeout=40,
    )


def _slowest_answer(tmp_path: Path) -> float:
    """The longest INVITE-to-200 time (s) in the -trace_rtt files SIPp wrote in ``tmp_path``."""
    times = [
        float(line.split(";")[-2]) / 1000
        for path in tmp_path.glob("*_rtt.csv")
        for line in path.read_text().splitlines()[1:]
        if line.count(";") >= 2
    ]
    assert times, "SIPp wrote no response times"
    return max(times)


def test_calls_through_the_edge_spread_over_both_nodes_and_all_complete(
    sipp: str, tmp_path: Path
) -> None:
    """100 calls at 20 a second through the edge: none fails, both nodes take calls, and each
    call's ACK and BYE reach the node that holds it (its CDR ends with the caller's BYE)."""
    with edge_cluster(tmp_path, pike_requests=5000) as edge:
        result = _calls(sipp, tmp_path, edge, 100, 20, 300)
        assert result.returncode == 0, result.output[-2000:] + edge.tail()
        assert stat_value(result, "SuccessfulCall(C)") == 100
        for node in edge.nodes.values():
            node.stop()
        cdrs = edge.cdrs()
    taken = {name: len(records) for name, records in cdrs.items()}
    assert sum(taken.values()) == 100 and min(taken.values()) >= 25, taken
    reasons = {(r["end_reason"], r["hangup_by"], r["trunk"]) for rs in cdrs.values() for r in rs}
    assert reasons == {("normal", "caller", "test")}, reasons
    print(f"calls taken by node: {taken}")


def test_a_killed_node_gets_no_new_call_after_the_reply_timeout_and_none_fails(
    sipp: str, tmp_path: Path
) -> None:
    """kill -9 of node a with calls up: the edge marks it inactive at its first unanswered
    INVITE (the 1 s reply timeout), the calls sent to it meanwhile go on to node b after that
    timeout, and every call placed after the kill completes on node b."""
    with edge_cluster(tmp_path / "c", pike_requests=5000, reply_timeout=1.0) as edge:
        held = _held_calls(sipp, tmp_path / "held", edge)
        after = tmp_path / "after"
        after.mkdir()
        try:
            _wait_for_calls_on_both(edge)
            with ThreadPoolExecutor(1) as pool:
                edge.nodes["a"].proc.kill()
                placing = pool.submit(_calls, sipp, after, edge, 40, 10, 200)
                avoided = edge.wait_for_log(r"sent no reply: marked inactive", 5.0)
                result = placing.result()
        finally:
            held.kill()
            held.communicate()
        assert result.returncode == 0, result.output[-2000:] + edge.tail()
        assert stat_value(result, "SuccessfulCall(C)") == 40
        slowest = _slowest_answer(after)
        edge.nodes["b"].stop()
        cdrs = edge.cdrs()
    assert avoided < 3.0 and slowest < 4.0, (avoided, slowest)
    hung_up = [r for r in cdrs["b"] if (r["end_reason"], r["hangup_by"]) == ("normal", "caller")]
    assert len(hung_up) >= 40, len(hung_up)
    print(f"node a marked inactive {avoided:.2f} s after the kill; the slowest answer of a")
    print(f"call placed after it took {slowest:.2f} s (sent to node a first, then to node b)")


def _held_calls(sipp: str, tmp_path: Path, edge: EdgeCluster) -> subprocess.Popen[str]:
    """20 calls at 20 a second through the edge, each held for 20 s, in the background."""
    tmp_path.mkdir()
    command = [
        sipp,
        f"{HOST}:{edge.port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(free_port(both=False))),
        *("-sf", HANGS_UP, *CALLER, "-m", "20", "-r", "20", "-d", "20000"),
        *("-nostdin", "-timeout", "40s"),
    ]
    return popen_sipp(command, tmp_path)


def _wait_for_calls_on_both(edge: EdgeCluster, timeout: float = 10.0) -> None:
    """Until each node has answered a call (its call.answered log line)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(node.events("call.answered") for node in edge.nodes.values()):
            return
        time.sleep(0.05)
    raise AssertionError("the held calls did not reach both nodes:\n" + edge.tail())


def test_a_503_without_reason_goes_on_to_the_other_node(sipp: str, tmp_path: Path) -> None:
    """Node a lets one call a minute in from the trunk: its 503s (over the call rate: Retry-After,
    no Reason) go on to node b, and every call completes."""
    slow = {"trunks": {"test": {"match": ["127.0.0.1"], "cps": 1 / 60, "cps_burst": 1}}}
    with edge_cluster(tmp_path / "rate", {"a": {"trunks": slow}}, pike_requests=5000) as edge:
        result = _calls(sipp, tmp_path, edge, 20, 20, 200)
        assert result.returncode == 0, result.output[-2000:] + edge.tail()
        for node in edge.nodes.values():
            node.stop()
        cdrs = edge.cdrs()
    ended = sorted(r["end_reason"] for rs in cdrs.values() for r in rs)
    assert ended.count("cps_limit") >= 1 and ended.count("normal") == 20, ended
    assert {r["end_reason"] for r in cdrs["b"]} == {"normal"}
    assert len(edge.log_lines("failed over")) == ended.count("cps_limit")


def test_a_503_with_reason_goes_back_to_the_caller_as_it_is(sipp: str, tmp_path: Path) -> None:
    """No channel on either node: each call's 503 with Reason Q.850 cause 34 and Retry-After
    reaches the caller as a 503 (not remapped to 500), refused once, never sent on."""
    full = {"trunks": {"test": {"match": ["127.0.0.1"], "channels": 0}}}
    both = {"a": {"trunks": full}, "b": {"trunks": full}}
    with edge_cluster(tmp_path / "full", both, pike_requests=5000) as edge:
        scenario = str(SCENARIOS / "uac-expect-503-channel-limit.xml")
        result = run_sipp(sipp, tmp_path, edge.port, "-sf", scenario, "-m", "10", "-r", "20")
        assert result.returncode == 0, result.output[-2000:] + edge.tail()
        for node in edge.nodes.values():
            node.stop()
        cdrs = edge.cdrs()
    ended = [r["end_reason"] for rs in cdrs.values() for r in rs]
    assert ended == ["channel_limit"] * 10, ended
    assert edge.log_lines("failed over") == []
