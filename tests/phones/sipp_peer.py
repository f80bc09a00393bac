"""SIPp as the peer of a phone under test: one call of a scenario, on a free port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import HOST, free_port, media_port

SCENARIOS = Path(__file__).parent / "scenarios"


@dataclass
class SippServer:
    """A SIPp process running one call of a scenario from 127.0.0.1:``port``."""

    proc: subprocess.Popen[str]
    port: int

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """Wait for SIPp to end its call; its exit code and output."""
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out[-2000:]


@contextlib.contextmanager
def sipp_server(
    sipp: str,
    tmp_path: Path,
    scenario: str,
    *args: str,
    transport: str = "u1",
    port: int | None = None,
    target: str | None = None,
) -> Iterator[SippServer]:
    """SIPp running tests/phones/scenarios/``scenario`` for one call (15 s at most) on
    ``port`` (a free one by default) and ``transport`` (u1 or t1), calling ``target``
    (host:port) when given; killed after the block if still running."""
    port = port or free_port()
    proc = subprocess.Popen(
        [
            sipp,
            *([target] if target else []),
            *("-i", HOST, "-p", str(port), "-mp", str(media_port()), "-t", transport),
            *("-sf", str(SCENARIOS / scenario), "-m", "1", "-nostdin"),
            *("-timeout", "15s", "-timeout_error", *args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        cwd=tmp_path,
    )
    try:
        _wait_bound(
            proc, port, socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        )
        yield SippServer(proc=proc, port=port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _wait_bound(proc: subprocess.Popen[str], port: int, kind: int, timeout: float = 15.0) -> None:
    """Return once SIPp holds ``port`` (binding it ourselves fails), so a phone's first request
    is not sent before SIPp listens (pyVoIP does not retransmit its REGISTER)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                return
        time.sleep(0.02)
    raise AssertionError(f"SIPp is not listening on {port}:\n{proc.communicate()[0][-2000:]}")
