"""Two real nodes on one Redis (``cluster.redis``), end to end with SIPp: a phone registered
through node a gets the call that arrives on node b, and a forwarding dialled on node a
decides where node b sends a call.

Each node is a `callserver run` of its own (its own port, data dir and RTP) with acme's group
(phones 201 and 202, tests.e2e.subscribers). Where a phone registers and where a call enters
are ports the tests take as arguments, so the same steps run through the edge (its address as
registrar and proxy) once there is one.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from tests.cluster.peers import Redis
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.diversions import expecting
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLER, CALLING, PHONES, finished, phone, write_group

A, B = "+38733100201", "+38733100202"


def _node(tmp_path: Path, name: str, redis: Redis) -> ServerProcess:
    """Node ``name`` of the cluster on ``redis``, its files in ``tmp_path/name``."""
    directory = tmp_path / name
    directory.mkdir()
    write_group(directory)
    env = {"CALLSERVER_CLUSTER__REDIS": redis.url, "CALLSERVER_CLUSTER__NODE": name}
    return start_server(directory, trunks=CALLING, env=env, ring_timeout=20)


@contextlib.contextmanager
def _cluster(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Redis and nodes a and b on it, stopped after the block."""
    with (
        Redis(tmp_path / "redis") as redis,
        stopped_on_exit(_node(tmp_path, "a", redis)) as a,
        stopped_on_exit(_node(tmp_path, "b", redis)) as b,
    ):
        yield a, b


def _register(sipp: str, tmp_path: Path, registrar: int, ext: str) -> int:
    """Phone ``ext`` registers through the registrar at port ``registrar`` (a node, or the
    edge) from a free port, which it returns."""
    port, user = free_port(both=False), B[1:] if ext == "202" else A[1:]
    result = run_sipp(
        sipp,
        tmp_path,
        registrar,
        *("-sf", str(SCENARIOS / "uac-register-digest.xml"), "-m", "1"),
        *("-key", "user", user, "-au", user, "-ap", PHONES[ext]),
        timeout=20,
        local_port=port,
    )
    assert result.returncode == 0, result.output[-2000:]
    return port


def _call(sipp: str, tmp_path: Path, entry: ServerProcess, rung: subprocess.Popen[str]) -> None:
    """A caller through the trunk calls 201's number at ``entry`` and hangs up 1.5 s after
    the answer; the phone that should ring, ``rung``, ends its call too."""
    result = run_sipp(sipp, tmp_path, entry.port, "-sn", "uac", "-d", "1500", *CALLER, timeout=40)
    if result.returncode != 0 and rung.poll() is None:
        rung.kill()
    if result.returncode != 0:
        heard = rung.communicate()[0][-2000:]
        raise AssertionError(result.output[-1500:] + heard + "\n".join(entry.raw[-30:]))
    finished(rung, entry)


def _dial(sipp: str, tmp_path: Path, proxy: int, code: str) -> None:
    """Phone 201 dials the service ``code`` through ``proxy`` and hears it confirmed."""
    dialled = code.replace("#", "%23")
    party = RtpParty(0xFF)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            proxy,
            *("-sf", str(SCENARIOS / "uac-phone-dials-code-hears-confirmation.xml")),
            *("-set", "rtp_port", str(party.port), "-s", dialled, "-m", "1"),
            *("-key", "caller", A[1:], "-au", A[1:], "-ap", PHONES["201"]),
            *("-auth_uri", f"{dialled}@{HOST}:{proxy}"),
            timeout=60,
        )
    finally:
        party.close()
    assert result.returncode == 0, result.output[-2000:]


def _at(line: dict[str, object]) -> datetime:
    return datetime.fromisoformat(str(line["timestamp"]))


def test_a_phone_registered_through_node_a_gets_the_call_that_arrives_on_node_b(
    sipp: str, tmp_path: Path
) -> None:
    """201 registers with node a; a caller's INVITE to 201's number arrives on node b, which
    rings the phone at its registered contact: answered, hung up, its legs' CDRs on node b."""
    with _cluster(tmp_path) as (a, b):
        port = _register(sipp, tmp_path, a.port, "201")
        with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
            _call(sipp, tmp_path, b, rung)
        assert b.wait_for("call.ringing_contacts")["contacts"] == 1
    assert a.events("call.ringing_contacts") == []
    legs = {record["leg"]: record for record in exported_cdrs(b.data_dir)}
    assert sorted(legs) == ["a", "b"], legs
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED"
    assert legs["b"]["called_raw"] == A and legs["b"]["linked_id"] == legs["a"]["call_id"]
    assert exported_cdrs(a.data_dir) == []


def test_a_forwarding_dialled_on_node_a_decides_where_node_b_sends_the_call(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *21*202# on node a; node b has it in force within the pub/sub delay: the
    caller's INVITE to 201 on node b goes to 202 (registered through node a), with Diversion
    naming 201."""
    with _cluster(tmp_path) as (a, b):
        port = _register(sipp, tmp_path, a.port, "202")
        _dial(sipp, tmp_path, a.port, "*21*202#")
        changed = a.wait_for("services.changed")
        arrived = b.wait_for("cluster.services_changed")
        assert (arrived["number"], arrived["service"], arrived["value"], arrived["node"]) == (
            A,
            "forward_always",
            "202",
            "a",
        )
        assert (_at(arrived) - _at(changed)).total_seconds() < 1.0
        with phone(sipp, tmp_path, expecting(tmp_path, "unconditional"), port) as rung:
            _call(sipp, tmp_path, b, rung)
    legs = {record["leg"]: record for record in exported_cdrs(b.data_dir)}
    assert (legs["b"]["called_raw"], legs["b"]["diverted_from"]) == (B, A), legs
    assert legs["b"]["diversion_reason"] == "unconditional"
