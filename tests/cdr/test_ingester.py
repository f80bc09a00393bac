"""Tests for the server's periodic CDR ingest: runs, failures and retries, the last run at close,
exactly-once rows, the ``cdr.ingest_interval`` setting and the wiring into ``Server``."""

from __future__ import annotations

import asyncio
import io
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callserver.app import Server
from callserver.cdr import ingester as ingester_module
from callserver.cdr.export import cdr_export_command
from callserver.cdr.ingester import CdrIngester, IngesterStatistics
from callserver.cdr.record import utc_stamp
from callserver.cdr.spool import CdrSpool
from callserver.cdr.store import CdrStore, IngestResult
from callserver.cli import main
from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, keep_startup_values, load_settings
from tests.cdr import append_records, events_named, make_record, stored_uuids

ROOT = Path(__file__).resolve().parents[2]
HOUR = 3600.0  # an interval no test waits for: only the first and the last run happen


pytestmark = pytest.mark.usefixtures("clean_env")


async def _until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds; fail after about 10 s."""
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached within about 10 s")


# -- runs -----------------------------------------------------------------------------------


async def test_first_run_at_start_and_last_run_at_close(tmp_path: Path) -> None:
    """start() ingests at once; a record spooled afterwards reaches SQLite at close()."""
    append_records(tmp_path, make_record(0), make_record(1))
    ingester = CdrIngester(tmp_path, HOUR)
    ingester.start()
    await _until(lambda: ingester.statistics().inserted == 2)
    assert stored_uuids(tmp_path) == ["u0", "u1"]
    append_records(tmp_path, make_record(2))
    await ingester.close()
    assert stored_uuids(tmp_path) == ["u0", "u1", "u2"]
    assert ingester.statistics() == IngesterStatistics(
        runs=2, failures=0, inserted=3, duplicates=0, malformed=0
    )


async def test_periodic_runs_pick_up_new_records(tmp_path: Path) -> None:
    """With a short interval, records appended while running reach SQLite without a close."""
    ingester = CdrIngester(tmp_path, 0.01)
    ingester.start()
    try:
        for n in range(1, 4):
            append_records(tmp_path, make_record(n))
            await _until(lambda: ingester.statistics().inserted == n)  # noqa: B023 (awaited here)
        await _until(lambda: ingester.statistics().runs >= 5)
    finally:
        await ingester.close()
    assert stored_uuids(tmp_path) == ["u1", "u2", "u3"]


async def test_ingested_is_logged_with_counts_only_when_records_were_added(tmp_path: Path) -> None:
    """A run that adds records logs cdr.ingested with its counts; one with nothing new is quiet."""
    append_records(tmp_path, make_record(0), make_record(1))
    ingester = CdrIngester(tmp_path, HOUR)
    with capture_logs() as logs:
        assert await ingester.ingest() == IngestResult(inserted=2)
        assert await ingester.ingest() == IngestResult()
    await ingester.close()
    (entry,) = events_named(logs, "cdr.ingested")
    assert (entry["inserted"], entry["duplicates"], entry["malformed"]) == (2, 0, 0)
    assert events_named(logs, "cdr.ingest_failed") == []


async def test_no_duplicates_across_runs_restarts_and_the_export_command(tmp_path: Path) -> None:
    """Runs of one ingester, of a restarted one and of `cdr export` at the same time add each
    record once."""
    first = CdrIngester(tmp_path, HOUR)
    append_records(tmp_path, make_record(0))
    await first.ingest()
    append_records(tmp_path, make_record(1))
    export = asyncio.to_thread(
        cdr_export_command, tmp_path, since=None, until=None, fmt="jsonl", out=io.StringIO()
    )
    _, exported = await asyncio.gather(first.ingest(), export)
    assert exported == 2
    await first.ingest()
    await first.close()
    second = CdrIngester(tmp_path, HOUR)  # the next start of the server
    second.start()
    await second.close()
    assert stored_uuids(tmp_path) == ["u0", "u1"]
    assert first.statistics().duplicates == second.statistics().duplicates == 0


async def test_close_waits_for_the_run_in_progress_then_runs_the_last(tmp_path: Path) -> None:
    """close() while a run waits for SQLite's write lock (held by another connection) lets
    that run finish before the last one starts; every record lands once."""
    append_records(tmp_path, make_record(0))
    CdrStore(tmp_path / "cdr.sqlite").close()  # the schema, so the lock below is the only wait
    other = sqlite3.connect(tmp_path / "cdr.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ingester = CdrIngester(tmp_path, HOUR)
    ingester.start()
    try:
        closing = asyncio.create_task(ingester.close())
        for _ in range(20):
            await asyncio.sleep(0.05)
            assert not closing.done()
        append_records(tmp_path, make_record(1))
    finally:
        other.execute("ROLLBACK")
        other.close()
    await asyncio.wait_for(closing, 30)
    assert stored_uuids(tmp_path) == ["u0", "u1"]
    assert ingester.statistics() == IngesterStatistics(
        runs=2, failures=0, inserted=2, duplicates=0, malformed=0
    )


async def test_zero_interval_disables_every_run(tmp_path: Path) -> None:
    """ingest_interval 0: start() and close() do nothing, and no database is created."""
    append_records(tmp_path, make_record(0))
    ingester = CdrIngester(tmp_path, 0)
    ingester.start()
    await ingester.close()
    assert ingester.statistics().runs == 0
    assert not (tmp_path / "cdr.sqlite").exists()


def test_negative_interval_is_refused(tmp_path: Path) -> None:
    """A negative interval is a ValueError naming the interval."""
    with pytest.raises(ValueError, match="interval"):
        CdrIngester(tmp_path, -1)


async def test_close_without_start_does_nothing(tmp_path: Path) -> None:
    """close() of an ingester that never started (a server that failed to listen) runs nothing."""
    ingester = CdrIngester(tmp_path, HOUR)
    await ingester.close()
    assert ingester.statistics().runs == 0


# -- failures -------------------------------------------------------------------------------


async def test_database_failure_is_logged_counted_and_retried(tmp_path: Path) -> None:
    """cdr.sqlite being a directory fails a run loudly without raising; once it is fixed the
    next run ingests everything spooled meanwhile."""
    append_records(tmp_path, make_record(0))
    (tmp_path / "cdr.sqlite").mkdir()
    ingester = CdrIngester(tmp_path, HOUR)
    with capture_logs() as logs:
        assert await ingester.ingest() is None
        assert await ingester.ingest() is None
    failed = events_named(logs, "cdr.ingest_failed")
    assert [(e["log_level"], e["error_type"], e["failures"]) for e in failed] == [
        ("error", "OperationalError", 1),
        ("error", "OperationalError", 2),
    ]
    assert "unable to open database file" in str(failed[0]["error"])
    assert failed[0]["database"] == str(tmp_path / "cdr.sqlite")
    (tmp_path / "cdr.sqlite").rmdir()
    append_records(tmp_path, make_record(1))
    assert await ingester.ingest() == IngestResult(inserted=2)
    await ingester.close()
    assert ingester.statistics() == IngesterStatistics(
        runs=3, failures=2, inserted=2, duplicates=0, malformed=0
    )


async def test_unreadable_spool_file_is_an_os_error_that_commits_nothing(tmp_path: Path) -> None:
    """A day file that cannot be read fails the run (OSError, logged); no row is half-added."""
    append_records(tmp_path, make_record(0))
    (tmp_path / "cdr" / "2026-11-23.jsonl").mkdir()  # read() of a directory: IsADirectoryError
    ingester = CdrIngester(tmp_path, HOUR)
    with capture_logs() as logs:
        assert await ingester.ingest() is None
    (entry,) = events_named(logs, "cdr.ingest_failed")
    assert entry["error_type"] == "IsADirectoryError"
    assert stored_uuids(tmp_path) == ["u0"]  # the day before was committed in its own transaction
    (tmp_path / "cdr" / "2026-11-23.jsonl").rmdir()
    assert await ingester.ingest() == IngestResult()
    await ingester.close()


async def test_periodic_task_survives_failures_and_retries(tmp_path: Path) -> None:
    """The periodic task keeps running through failed runs and feeds SQLite once they pass."""
    append_records(tmp_path, make_record(0))
    (tmp_path / "cdr.sqlite").mkdir()
    ingester = CdrIngester(tmp_path, 0.01)
    with capture_logs() as logs:
        ingester.start()
        try:
            await _until(lambda: ingester.statistics().failures >= 2)
            (tmp_path / "cdr.sqlite").rmdir()
            await _until(lambda: ingester.statistics().inserted == 1)
        finally:
            await ingester.close()
    assert len(events_named(logs, "cdr.ingest_failed")) == ingester.statistics().failures
    assert stored_uuids(tmp_path) == ["u0"]


def _raise_bug(spool_dir: Path, database: Path) -> tuple[int, IngestResult]:
    """Stands in for a run with a bug; at module level, so the worker process can import it."""
    raise RuntimeError("bug")


async def test_a_bug_in_a_run_is_logged_with_its_traceback_and_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected exception in a run is logged (with exc_info) and counted, never raised."""
    monkeypatch.setattr(ingester_module, "_ingest", _raise_bug)
    ingester = CdrIngester(tmp_path, HOUR)
    try:
        with capture_logs() as logs:
            assert await ingester.ingest() is None
    finally:
        await ingester.close()
    (entry,) = events_named(logs, "cdr.ingest_failed")
    assert (entry["error"], entry["error_type"], entry["exc_info"]) == ("bug", "RuntimeError", True)
    assert ingester.statistics().failures == 1


# -- the setting ----------------------------------------------------------------------------


def test_setting_defaults_to_ten_seconds_and_the_shipped_file_says_so() -> None:
    """cdr.ingest_interval is 10 s by default and in config/callserver.yaml."""
    assert load_settings(None).cdr.ingest_interval == 10.0
    assert load_settings(ROOT / "config" / "callserver.yaml").cdr.ingest_interval == 10.0


def test_setting_from_the_file_and_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file sets cdr.ingest_interval; CALLSERVER_CDR__INGEST_INTERVAL overrides it."""
    path = tmp_path / "callserver.yaml"
    path.write_text("cdr:\n  ingest_interval: 0\n")
    assert load_settings(path).cdr.ingest_interval == 0.0
    monkeypatch.setenv("CALLSERVER_CDR__INGEST_INTERVAL", "2.5")
    assert load_settings(path).cdr.ingest_interval == 2.5


def test_bad_setting_names_file_line_and_field(tmp_path: Path) -> None:
    """A negative interval or an unknown cdr key is an error naming file, line and field."""
    path = tmp_path / "callserver.yaml"
    path.write_text("data_dir: var\ncdr:\n  ingest_interval: -1\n  spool: x\n")
    with pytest.raises(OperatorFileError) as info:
        load_settings(path)
    assert [e.split(": ")[:2] for e in info.value.errors] == [
        [f"{path}:3", "cdr.ingest_interval"],
        [f"{path}:4", "cdr.spool"],
    ]


def test_check_accepts_the_setting_and_blames_a_bad_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`callserver check` passes the shipped file and names a bad CALLSERVER_CDR__ variable."""
    monkeypatch.chdir(ROOT)
    assert main(["check", "config/callserver.yaml"]) == 0
    monkeypatch.setenv("CALLSERVER_CDR__INGEST_INTERVAL", "-5")
    assert main(["check", "config/callserver.yaml"]) == 1
    err = capsys.readouterr().err
    assert "environment CALLSERVER_CDR__INGEST_INTERVAL: cdr.ingest_interval: " in err


def test_reload_keeps_the_running_interval_and_says_a_restart_is_needed(tmp_path: Path) -> None:
    """SIGHUP does not change the interval of the running ingester; the warning names it."""
    running = load_settings(None)
    path = tmp_path / "callserver.yaml"
    path.write_text("cdr:\n  ingest_interval: 60\n")
    kept, restart = keep_startup_values(running, load_settings(path))
    assert (kept.cdr.ingest_interval, restart) == (10.0, ["cdr.ingest_interval"])


# -- the server -----------------------------------------------------------------------------


async def test_server_ingests_recovered_aborted_records_at_start_and_at_close(
    tmp_path: Path,
) -> None:
    """After a crash left two legs open, Server.start's first run puts their ABORTED records
    in cdr.sqlite, from a worker process; a record written while it runs is in SQLite after
    Server.close."""
    crashed = CdrSpool(tmp_path / "cdr")
    for n in range(2):
        known = {"uuid": f"u{n}", "trunk": "t", "start_stamp": utc_stamp(datetime.now(UTC))}
        crashed.open_call(f"c{n}", known)
    assert crashed.flush().result(timeout=10) is True
    server = Server(_server_settings(tmp_path))
    await server.start()
    try:
        await _until(lambda: server.ingester.statistics().inserted == 2)
        assert sorted(stored_uuids(tmp_path)) == ["u0", "u1"]
        assert server.ingester.worker_pid not in (None, os.getpid())
        assert server.cdr is not None
        assert server.cdr.write(make_record(7)).result(timeout=10) is True
    finally:
        await server.close()
        crashed.close()
    assert sorted(stored_uuids(tmp_path)) == ["u0", "u1", "u7"]
    assert server.ingester.statistics().failures == 0


def _server_settings(data_dir: Path) -> Settings:
    return load_settings(
        None,
        {
            "sip": {"listen": ["udp:127.0.0.1:0"]},
            "media": {"prompts_dir": ROOT / "prompts"},
            "data_dir": data_dir,
            "trunks": ROOT / "config" / "trunks.yaml",
            "tariffs": ROOT / "config" / "tariffs.yaml",
            "cdr": {"ingest_interval": HOUR},
        },
    )
