"""Background work of a running server beside its calls: a SIGHUP reload of 300 dialplans
while SIPp places calls, and the CDR ingest in a process of its own."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.default_plan import write_default_plan
from tests.e2e.conftest import (
    ServerProcess,
    SippResult,
    run_sipp,
    start_server,
    stat_value,
    stopped_on_exit,
)

pytestmark = pytest.mark.e2e

COMPANY_PLAN = Path(__file__).resolve().parents[2] / "dialplans" / "38733100200.yaml"
PLANS = 300
CALLS = 100


def _plans(tmp_path: Path) -> Path:
    """A dialplan directory of ``PLANS`` plans: the default plan SIPp's calls run, and
    copies of the shipped company plan."""
    directory = tmp_path / "dialplans"
    write_default_plan(directory)
    for n in range(PLANS - 1):
        shutil.copy(COMPANY_PLAN, directory / f"3873310{n:04d}.yaml")
    return directory


def _loads(server: ServerProcess, count: int) -> list[dict[str, object]]:
    """The server's first ``count`` dialplan.loaded lines, waiting up to 30 s for them."""
    deadline = time.monotonic() + 30
    while len(server.events("dialplan.loaded")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.events("dialplan.loaded")[:count]


def test_a_reload_of_300_dialplans_under_calls_keeps_answering(sipp: str, tmp_path: Path) -> None:
    """SIGHUP while SIPp places 100 calls at 20/s: every call is answered and ends normally,
    and the reload compiles all 300 plans without an error."""
    results: list[SippResult] = []
    args = ("-sn", "uac", "-m", str(CALLS), "-r", "20", "-d", "500")
    with stopped_on_exit(start_server(tmp_path, dialplans=_plans(tmp_path))) as server:
        assert server.wait_for("dialplan.loaded")["plans"] == PLANS
        caller = threading.Thread(
            target=lambda: results.append(run_sipp(sipp, tmp_path, server.port, *args))
        )
        caller.start()
        try:
            server.wait_for("call.answered", timeout=30)
            server.proc.send_signal(signal.SIGHUP)
            server.wait_for("config.reloaded")
        finally:
            caller.join(90)
        loads = _loads(server, 2)
    (result,) = results
    assert result.returncode == 0, result.output[-3000:]
    assert stat_value(result, "SuccessfulCall(C)") == CALLS
    assert stat_value(result, "FailedCall(C)") == 0
    assert [(load["plans"], load["errors"]) for load in loads] == [(PLANS, 0), (PLANS, 0)]
