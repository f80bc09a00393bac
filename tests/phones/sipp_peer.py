"""SIPp as the peer of a phone under test: a scenario run as a server on a free port."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import HOST, free_port

SCENARIOS = Path(__file__).parent / "scenarios"


@dataclass
class SippServer:
    """A SIPp process waiting for one call of ``scenario`` on 127.0.0.1:``port``."""

    proc: subprocess.Popen[str]
    port: int

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """Wait for SIPp to end its call; its exit code and output."""
        out, _ = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out[-2000:]


@contextlib.contextmanager
def sipp_server(
    sipp: str, tmp_path: Path, scenario: str, *args: str, transport: str = "u1"
) -> Iterator[SippServer]:
    """SIPp running tests/phones/scenarios/``scenario`` for one call (15 s at most) on a free
    port and ``transport`` (u1 or t1); killed after the block if still running."""
    port = free_port()
    proc = subprocess.Popen(
        [
            sipp,
            *("-i", HOST, "-p", str(port), "-mp", str(free_port(both=False)), "-t", transport),
            *("-sf", str(SCENARIOS / scenario), "-m", "1", "-nostdin"),
            *("-timeout", "15s", "-timeout_error", *args),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    try:
        yield SippServer(proc=proc, port=port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
