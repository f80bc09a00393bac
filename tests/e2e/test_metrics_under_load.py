"""/metrics scraped without pause while SIPp places calls at 200 a second: no call fails, and
the gauge of calls in progress, once every call is up, is SIPp's own count of its calls."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

from tests.e2e.admin_client import ADMIN, CALLED, TRUNKS
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    free_port,
    media_port,
    start_server,
    stopped_on_exit,
)
from tests.e2e.test_admin_api import Samples, _scraped, _total

RATE, CALLS = 200, 400  # two seconds of calls at 200 a second
HELD = 8.0  # each call is up this long after its answer (the server's BYE ends it)


class Scraper(threading.Thread):
    """Scrapes /metrics back to back until stopped; keeps each scrape's calls in progress."""

    def __init__(self, server: ServerProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.seen: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            self.seen.append(_total(_scraped(self.server), "callserver_calls_in_progress"))


def _sipp_current_calls(stat_file: Path) -> int:
    """SIPp's calls in progress in the last row of its -trace_stat CSV."""
    rows = [row.split(";") for row in stat_file.read_text().strip().splitlines()]
    return int(rows[-1][rows[0].index("CurrentCall")])


def _wait_for(scraper: Scraper, value: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if scraper.seen and scraper.seen[-1] == value:
            return
        time.sleep(0.05)
    raise AssertionError(f"calls in progress never {value}: last {scraper.seen[-3:]}")


def _sipp(sipp: str, server: ServerProcess, cwd: Path, stat_file: Path) -> subprocess.Popen[bytes]:
    """SIPp placing the calls, its screen to a file (a pipe no one reads could fill)."""
    cmd = [
        sipp,
        f"{HOST}:{server.port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-s", CALLED),
        *("-r", str(RATE), "-m", str(CALLS), "-l", str(CALLS)),
        *("-trace_stat", "-stf", str(stat_file), "-fd", "1"),
        *("-nostdin", "-timeout", "60s", "-timeout_error"),
    ]
    with (cwd / "sipp-screen.log").open("wb") as screen:
        return subprocess.Popen(cmd, stdout=screen, stderr=subprocess.STDOUT, cwd=cwd)


def test_scrapes_under_200_calls_a_second_fail_no_call_and_count_sipps_calls(
    sipp: str, tmp_path: Path
) -> None:
    """Scrapes back to back through the whole run; at the plateau the gauge and SIPp's
    CurrentCall both say 400; every call succeeds; afterwards the gauge is 0."""
    trunks = {**TRUNKS, "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme"}}}
    server = start_server(tmp_path, trunks=trunks, admin=ADMIN, hangup_after=HELD)
    stat_file = tmp_path / "sipp-stats.csv"
    with stopped_on_exit(server):
        scraper = Scraper(server)
        scraper.start()
        caller = _sipp(sipp, server, tmp_path, stat_file)
        try:
            _wait_for(scraper, CALLS, timeout=HELD)
            time.sleep(1.2)  # SIPp writes its statistics once a second
            assert scraper.seen[-1] == CALLS
            assert _sipp_current_calls(stat_file) == CALLS
            screen = tmp_path / "sipp-screen.log"
            assert caller.wait(timeout=60) == 0, screen.read_text(errors="replace")[-3000:]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        _wait_for(scraper, 0, timeout=10)
        scraper.halt.set()
        scraper.join(timeout=10)
        samples: Samples = _scraped(server)
    assert max(scraper.seen) == CALLS
    assert len(scraper.seen) > 20
    assert _total(samples, "callserver_call_attempts_total") == CALLS
    rows = stat_file.read_text().strip().splitlines()
    header, last = rows[0].split(";"), rows[-1].split(";")
    assert int(last[header.index("SuccessfulCall(C)")]) == CALLS
    assert int(last[header.index("FailedCall(C)")]) == 0
