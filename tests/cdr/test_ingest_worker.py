"""Tests for the CDR ingester's worker process: runs happen in one process other than the
server's, started once; a killed worker fails one run and a fresh one takes over; the worker
exits when its server is killed; its log lines come out as the server's."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callserver.cdr.ingester import CdrIngester
from callserver.cdr.store import IngestResult
from tests.cdr import DAY, append_records, events_named, make_record, stored_uuids

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0  # an interval no test waits for: only the runs a test asks for happen


async def test_runs_happen_in_one_worker_process_other_than_the_servers(tmp_path: Path) -> None:
    """Every run goes to the same worker process, started once, whose pid is not this one."""
    ingester = CdrIngester(tmp_path, HOUR)
    try:
        append_records(tmp_path, make_record(0))
        assert await ingester.ingest() == IngestResult(inserted=1)
        first = ingester.worker_pid
        append_records(tmp_path, make_record(1))
        assert await ingester.ingest() == IngestResult(inserted=1)
    finally:
        await ingester.close()
    assert first is not None and first != os.getpid()
    assert ingester.worker_pid == first


async def test_a_killed_worker_fails_one_run_and_a_fresh_one_takes_over(tmp_path: Path) -> None:
    """SIGKILL of the worker fails the next run (BrokenProcessPool, logged and counted); the run
    after it starts a new worker and ingests what was spooled meanwhile."""
    ingester = CdrIngester(tmp_path, HOUR)
    try:
        assert await ingester.ingest() == IngestResult()
        killed = ingester.worker_pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        append_records(tmp_path, make_record(0))
        with capture_logs() as logs:
            assert await ingester.ingest() is None
            assert await ingester.ingest() == IngestResult(inserted=1)
    finally:
        await ingester.close()
    (entry,) = events_named(logs, "cdr.ingest_failed")
    assert (entry["error_type"], entry["failures"]) == ("BrokenProcessPool", 1)
    assert ingester.worker_pid not in (None, killed)
    assert stored_uuids(tmp_path) == ["u0"]


_HOLDS_A_WORKER = """
import asyncio, sys
from pathlib import Path
from callserver.cdr.ingester import CdrIngester

async def main():
    ingester = CdrIngester(Path(sys.argv[1]), 3600)
    await ingester.ingest()
    print(ingester.worker_pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def _exited(pid: int) -> bool:
    """True once ``pid`` is gone or a zombie (exited; init may not have reaped it yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_the_worker_exits_when_its_server_is_killed(tmp_path: Path) -> None:
    """A server process killed with SIGKILL, which never shuts its worker down, leaves no
    worker behind: the worker sees its parent go and exits."""
    command = [sys.executable, "-c", _HOLDS_A_WORKER, str(tmp_path)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        worker = int(server.stdout.readline())
    finally:
        server.kill()
        server.wait(10)
    for _ in range(200):
        if _exited(worker):
            return
        time.sleep(0.05)
    os.kill(worker, signal.SIGKILL)
    raise AssertionError(f"the worker {worker} outlived its server")


async def test_the_workers_own_log_lines_come_out_like_the_servers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A malformed spool line is logged by the worker as a JSON line on the same stdout, as the
    server's logging is set up (log_format json)."""
    append_records(tmp_path, make_record(0))
    with (tmp_path / "cdr" / DAY).open("ab") as file:
        file.write(b"{not a record\n")
    ingester = CdrIngester(tmp_path, HOUR, log_format="json")
    try:
        assert await ingester.ingest() == IngestResult(inserted=1, malformed=1)
    finally:
        await ingester.close()
    out = capfd.readouterr().out.splitlines()  # this process logs as structlog's default
    lines = [json.loads(line) for line in out if line.startswith("{")]
    (entry,) = [line for line in lines if line["event"] == "cdr.ingest_malformed"]
    assert (entry["level"], entry["file"]) == ("warning", DAY)
