"""Channel limits across two real nodes (``callserver run``, same cluster.redis, each on its
own port) with SIPp: the 4th call of a 3-channel customer refused though its calls are on
different nodes, a killed node's channels free within its lease, and Redis restarted under
load without a call cut."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import redis as syncredis

from tests.cluster.channel_nodes import answers, running_redis
from tests.cluster.peers import Redis
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    popen_bound,
    run_scenario,
    run_sipp,
    start_server,
    stopped_on_exit,
)

ACME = {
    "customers": {"acme": {"channels": 3}},
    "trunks": {"test": {"match": [HOST], "customer": "acme"}},
}
EXPECT_503 = "uac-expect-503-channel-limit.xml"


def _node(
    tmp_path: Path, name: str, redis: Redis, trunks: dict[str, Any], lease: float
) -> ServerProcess:
    """Node ``name`` of the cluster on ``redis``, in a directory of its own."""
    env = {
        "CALLSERVER_CLUSTER__REDIS": redis.url,
        "CALLSERVER_CLUSTER__NODE": name,
        "CALLSERVER_CLUSTER__LEASE": str(lease),
    }
    directory = tmp_path / name
    directory.mkdir()
    server = start_server(directory, trunks=trunks, env=env)
    server.wait_for("cluster.limits_shared")
    return server


@contextmanager
def _cluster(
    tmp_path: Path, redis: Redis, trunks: dict[str, Any], lease: float = 15.0
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Nodes a and b, stopped when the block ends."""
    with ExitStack() as stack:
        a = stack.enter_context(stopped_on_exit(_node(tmp_path, "a", redis, trunks, lease)))
        b = stack.enter_context(stopped_on_exit(_node(tmp_path, "b", redis, trunks, lease)))
        yield a, b


def _hold(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    ms: int,
    *,
    calls: int = 1,
    to: str = "service",
    rate: int = 50,
) -> subprocess.Popen[str]:
    """SIPp placing ``calls`` calls to ``to`` on ``server``, ``rate`` a second, each held
    ``ms``."""

    def command(port: int) -> list[str]:
        return [
            sipp,
            f"{HOST}:{server.port}",
            *("-i", HOST, "-p", str(port), "-mp", str(free_port(both=False))),
            *("-sn", "uac", "-s", to, "-m", str(calls), "-l", str(calls), "-r", str(rate)),
            *("-d", str(ms), "-nostdin", "-timeout", "60s", "-timeout_error"),
        ]

    proc, _ = popen_bound(command, tmp_path)
    return proc


def _answered(server: ServerProcess, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while len(server.events("call.answered")) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(server.events("call.answered")) >= count, "\n".join(server.raw[-20:])


def _finished(proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    output, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, output[-2000:]


def _held(redis: Redis, profile: str) -> dict[str, int]:
    """The channels each node holds in ``profile`` in Redis, by node name."""
    client = syncredis.Redis.from_url(redis.url)
    try:
        raw: dict[bytes, bytes] = client.hgetall(f"cs:ch:{profile}")  # type: ignore[assignment]
    finally:
        client.close()
    return {key.decode().partition("/")[0]: int(value) for key, value in raw.items()}


def test_the_fourth_call_gets_503_cause_34_though_the_calls_are_on_two_nodes(
    sipp: str, tmp_path: Path
) -> None:
    """A 3-channel customer's calls on a, b, a: the 4th, on b, gets 503 with Q.850 cause 34
    and its CDR channel_limit; once they end, b takes a call again."""
    with running_redis(tmp_path) as redis, _cluster(tmp_path, redis, ACME) as (a, b):
        holds = []
        for server, answered in ((a, 1), (b, 1), (a, 2)):
            holds.append(_hold(sipp, tmp_path, server, 6000))
            _answered(server, answered)
        assert _held(redis, "customer:acme") == {"a": 2, "b": 1}
        refused = run_scenario(sipp, tmp_path, b, EXPECT_503, "-m", "1")
        for hold in holds:
            _finished(hold)
        after = run_sipp(sipp, tmp_path, b.port, "-sn", "uac", "-m", "1")
    log = "\n".join(b.raw[-30:])
    assert refused.returncode == 0, refused.output[-2000:] + log
    assert after.returncode == 0, after.output[-2000:] + log
    rejected = [(r["status"], r["reason"], r["trunk"]) for r in b.events("call.rejected")]
    assert rejected == [(503, "channel_limit", "test")]
    records = [c for c in exported_cdrs(b.data_dir) if c["disposition"] == "REJECTED"]
    assert [(c["end_reason"], c["sip_code"], c["q850_cause"]) for c in records] == [
        ("channel_limit", 503, 34)
    ]
    for server in (a, b):
        assert server.wait_for("server.stopped")["channels_in_use"] == 0


def test_a_killed_nodes_channels_are_free_within_its_lease(sipp: str, tmp_path: Path) -> None:
    """Node a dies (kill -9) with the customer's 3 calls up: within its 3 s lease b admits
    again, up to the limit and no further."""
    with running_redis(tmp_path) as redis, _cluster(tmp_path, redis, ACME, lease=3) as (a, b):
        held_on_a = _hold(sipp, tmp_path, a, 30000, calls=3)
        try:
            _answered(a, 3)
            assert run_scenario(sipp, tmp_path, b, EXPECT_503, "-m", "1").returncode == 0
            a.proc.kill()
            killed = time.monotonic()
            attempts = _attempts(sipp, tmp_path, b, calls=50)
            _answered(b, 1, timeout=6)
            freed = time.monotonic() - killed
            _finished(attempts)
            print(f"channels of the killed node free after {freed:.2f} s (lease 3 s)")
            assert freed <= 3.0 + 0.5
            _wait_held(redis, "customer:acme", {}, within=2)  # the last releases sent
            before = len(b.events("call.answered"))
            three = _hold(sipp, tmp_path, b, 4000, calls=3)
            _answered(b, before + 3)
            assert run_scenario(sipp, tmp_path, b, EXPECT_503, "-m", "1").returncode == 0
            _finished(three)
        finally:
            held_on_a.kill()
            held_on_a.communicate()


def test_redis_restarted_under_load_cuts_no_call_and_the_limit_holds_again(
    sipp: str, tmp_path: Path
) -> None:
    """Calls flow to a (10 a second, 1 s each) and a 3-channel number holds 2 calls on a and
    1 on b while Redis stops and starts empty: every call completes, b refuses the number's
    4th by its local view meanwhile, and once Redis is back the counts are rewritten and a
    refuses the 4th."""
    trunks = {"numbers": {"38733555": {"channels": 3}}, "trunks": {"test": {"match": [HOST]}}}
    with running_redis(tmp_path) as redis, _cluster(tmp_path, redis, trunks, lease=3) as (a, b):
        holds = [_hold(sipp, tmp_path, a, 12000, calls=2, to="38733555")]
        _answered(a, 2)
        holds.append(_hold(sipp, tmp_path, b, 12000, to="38733555"))
        _answered(b, 1)
        load = _hold(sipp, tmp_path, a, 1000, calls=80, rate=10)
        time.sleep(1)
        redis.stop()
        down = run_sipp(
            sipp, tmp_path, b.port, "-sf", str(SCENARIOS / EXPECT_503), "-s", "38733555", "-m", "1"
        )
        time.sleep(1)
        redis.start()
        assert answers(redis.url)
        _wait_held(redis, "number:38733555", {"a": 2, "b": 1}, within=10)
        again = run_sipp(
            sipp, tmp_path, a.port, "-sf", str(SCENARIOS / EXPECT_503), "-s", "38733555", "-m", "1"
        )
        for proc in (*holds, load):
            _finished(proc)
    assert down.returncode == 0, down.output[-2000:]
    assert again.returncode == 0, again.output[-2000:]
    for server in (a, b):
        assert server.events("cluster.redis_down") and server.events("cluster.redis_up")
    assert a.events("cluster.channels_restored")


def _attempts(
    sipp: str, tmp_path: Path, server: ServerProcess, calls: int
) -> subprocess.Popen[str]:
    """SIPp offering ``calls`` calls, 10 a second: each answered (half a second) or refused."""

    def command(port: int) -> list[str]:
        return [
            sipp,
            f"{HOST}:{server.port}",
            *("-i", HOST, "-p", str(port), "-mp", str(free_port(both=False))),
            *("-sf", str(SCENARIOS / "uac-answered-or-503-overload.xml")),
            *("-m", str(calls), "-r", "10", "-nostdin", "-timeout", "60s", "-timeout_error"),
        ]

    proc, _ = popen_bound(command, tmp_path)
    return proc


def _wait_held(redis: Redis, profile: str, expected: dict[str, int], within: float) -> None:
    """Wait until the nodes hold ``expected`` in ``profile`` in Redis."""
    deadline = time.monotonic() + within
    while True:
        try:
            held = _held(redis, profile)
        except syncredis.ConnectionError:
            held = None
        if held == expected:
            return
        assert time.monotonic() < deadline, held
        time.sleep(0.05)
