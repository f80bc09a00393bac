"""``callserver cluster`` (``make cluster``): Redis, PostgreSQL, two nodes and the edge on
loopback; calls through its edge reach both nodes; Ctrl-C stops every part."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from callserver.cluster.processes import port_bound
from tests.e2e.conftest import SCENARIOS, free_port, run_sipp, stat_value


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A directory every user may traverse (PostgreSQL runs as ``postgres`` under root)."""
    directory = Path(tempfile.mkdtemp(prefix="callserver-cluster-"))
    directory.chmod(0o755)
    yield directory / "cluster"
    shutil.rmtree(directory, ignore_errors=True)


def _ready(proc: subprocess.Popen[str], timeout: float = 60.0) -> list[str]:
    """The lines ``callserver cluster`` printed up to its ready line."""
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        if "ready;" in line:
            return lines
    raise AssertionError("callserver cluster did not get ready:\n" + "\n".join(lines))


def _ports(lines: list[str]) -> dict[str, int]:
    """Each part's port, from the ready lines (``sip:127.0.0.1:P``, ``redis://...:P/0``)."""
    ports = {}
    for line in lines:
        found = re.search(r"(?:sip:|redis://|postgresql://\w+@)127\.0\.0\.1:(\d+)", line)
        if found is not None:
            ports[line.split()[0]] = int(found.group(1))
    return ports


def test_the_local_cluster_takes_calls_on_both_nodes_and_stops_on_ctrl_c(
    sipp: str, tmp_path: Path, cluster_dir: Path
) -> None:
    """Every part starts and says where it is; 20 calls through the edge succeed and both
    nodes answer some; SIGINT stops everything and the command exits 0."""
    edge_port = free_port()
    command = [sys.executable, "-m", "callserver", "cluster", "--dir", str(cluster_dir)]
    command += ["--edge-port", str(edge_port)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=root
    )
    try:
        lines = _ready(proc)
        ports = _ports(lines)
        assert sorted(ports) == ["PostgreSQL", "Redis", "edge", "node-a", "node-b"], lines
        assert ports["edge"] == edge_port
        scenario = str(SCENARIOS / "uac-caller-hangs-up-after-answer.xml")
        result = run_sipp(
            sipp,
            tmp_path,
            edge_port,
            *("-sf", scenario, "-key", "caller", "38761000000", "-m", "20", "-r", "20"),
            *("-d", "200"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:]
        assert stat_value(result, "SuccessfulCall(C)") == 20
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert "callserver cluster: stopped" in out
    assert not any(port_bound(port, udp=False) for port in ports.values())
    answered = {
        node: (cluster_dir / node / "node.log").read_text().count('"call.answered"')
        for node in ("node-a", "node-b")
    }
    assert sum(answered.values()) == 20 and min(answered.values()) > 0, answered
    assert (cluster_dir / "pg" / "data" / "PG_VERSION").exists()
