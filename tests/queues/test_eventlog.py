"""Tests for the durable queue event log: day files, fsync before True, kill -9, bad lines."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from structlog.testing import capture_logs

from callserver.cdr import files
from callserver.queues.eventlog import QueueEventLog, read_events
from tests.queues.scripted import at, event, scripted_day

ROOT = Path(__file__).resolve().parents[2]


def test_records_land_in_the_file_of_their_utc_date_and_read_back_in_time_order(
    tmp_path: Path,
) -> None:
    """Each line goes to YYYY-MM-DD.jsonl of its UTC date; read_events sorts them by time."""
    day = scripted_day()
    with QueueEventLog(tmp_path, max_delay=0.0) as log:
        assert all(f.result(timeout=10) for f in [log.write(r) for r in day])
        assert log.statistics().records_written == len(day)
    # 2026-03-02 01:00 local is 2026-03-02 00:00 UTC: the 03-01 file holds the evening before
    # and c12's end and wrap-up after local midnight (7 lines); 03-03's first hour is in 03-02
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2026-03-01.jsonl", "2026-03-02.jsonl"]
    assert len((tmp_path / "2026-03-01.jsonl").read_bytes().splitlines()) == 7
    records, problems = read_events(tmp_path, at("00:00:00"), at("00:00:00", "2026-03-03"))
    assert problems == []
    assert records == sorted(day, key=lambda r: r.at)


def test_read_events_reads_the_period_and_one_day_before_only(tmp_path: Path) -> None:
    """Files older than the lookback or newer than until are not read; no directory is empty."""
    assert read_events(tmp_path / "none", at("00:00:00"), at("12:00:00")) == ([], [])
    with QueueEventLog(tmp_path) as log:
        for day in ("2026-02-27", "2026-02-28", "2026-03-02", "2026-03-04"):
            log.write(event("login", at("12:00:00", day), agent="201")).result(timeout=10)
    records, _ = read_events(tmp_path, at("00:00:00", "2026-03-01"), at("23:00:00", "2026-03-02"))
    assert [r.at.date().isoformat() for r in records] == ["2026-02-28", "2026-03-02"]
    longer, _ = read_events(
        tmp_path, at("00:00:00", "2026-03-01"), at("01:00:00"), lookback=timedelta(days=3)
    )
    assert len(longer) == 3


def test_a_bad_line_is_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    """A torn line and a foreign one are named FILE:LINE: why; the good lines are all read."""
    good = [
        event("login", at("08:00:00"), agent="201"),
        event("logout", at("09:00:00"), agent="201"),
    ]
    path = tmp_path / "2026-03-02.jsonl"
    path.write_text(
        good[0].to_json()
        + '\n{"at":"2026-03-02T07:30:00.000Z","kind":"coffee"}\n'
        + "\n"
        + good[1].to_json()
        + '\n{"at":"2026-03-02T08:\n'
    )
    records, problems = read_events(tmp_path, at("00:00:00"), at("23:00:00"))
    assert records == good
    assert problems == [f"{path}:2: unknown kind 'coffee'", f"{path}:5: not a JSON line"]


_CHILD = textwrap.dedent(
    """
    import sys
    from datetime import datetime, timedelta, UTC
    from pathlib import Path
    from callserver.queues.eventlog import QueueEventLog
    from callserver.queues.records import QueueEventKind, QueueLogRecord

    log = QueueEventLog(Path(sys.argv[1]), max_delay=0.001)
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    for n in range(1_000_000):
        record = QueueLogRecord(
            at=start + timedelta(milliseconds=n), kind=QueueEventKind.JOIN, customer="acme",
            uuid=f"e{n}", queue="sales", call_id=f"c{n}",
        )
        if log.write(record).result(timeout=10):
            print(record.uuid, flush=True)
    """
)


def test_every_record_the_log_said_was_written_survives_kill_9(tmp_path: Path) -> None:
    """A writer killed with SIGKILL mid-stream keeps every record whose future said True."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert child.stdout is not None
    acknowledged = [child.stdout.readline().strip() for _ in range(200)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    records, problems = read_events(tmp_path, at("00:00:00"), at("23:00:00"))
    assert len(problems) <= 1  # at most the torn last line of the killed write
    on_disk = {r.uuid for r in records}
    assert set(acknowledged) <= on_disk
    assert len(acknowledged) == 200 and all(acknowledged)


class _FullDisk:
    """A file whose writes fail with ENOSPC (after writing half) while ``full``."""

    full = False

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        if _FullDisk.full:
            self._file.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._file.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


def test_a_full_disk_is_logged_and_the_record_written_when_there_is_room(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC: False and queues.event_write_failed; the held record goes first next time."""

    def opener(path: Path, mode: str, buffering: int = -1) -> _FullDisk:
        return _FullDisk(open(path, mode, buffering=buffering))

    monkeypatch.setattr(_FullDisk, "full", False)
    monkeypatch.setattr(files, "open", opener, raising=False)
    first, held, last = (event("login", at(f"0{n}:00:00"), agent="201") for n in (1, 2, 3))
    with QueueEventLog(tmp_path, max_delay=0.0) as log:
        assert log.write(first).result(timeout=10) is True
        _FullDisk.full = True
        with capture_logs() as logs:
            assert log.write(held).result(timeout=10) is False
            assert log.flush().result(timeout=10) is False
        assert next(e["errno"] for e in logs if e["event"] == "queues.event_write_failed") == 28
        assert log.statistics().retry_pending == 1
        _FullDisk.full = False
        assert log.write(last).result(timeout=10) is True
        assert log.flush().result(timeout=10) is True
    records, problems = read_events(tmp_path, at("00:00:00"), at("23:00:00"))
    assert (records, problems) == ([first, held, last], [])


def test_a_write_after_close_is_refused_through_its_future(tmp_path: Path) -> None:
    """A closed log answers False and logs queues.event_log_closed; nothing raises."""
    log = QueueEventLog(tmp_path)
    log.close()
    with capture_logs() as logs:
        assert log.write(event("login", at("08:00:00"), agent="201")).result(timeout=10) is False
    assert [e["event"] for e in logs] == ["queues.event_log_closed"]


def test_a_name_that_is_not_valid_unicode_is_written_and_read_back(tmp_path: Path) -> None:
    """A caller name holding a lone surrogate (undecodable bytes of a header) is escaped."""
    record = event("join", at("08:00:00"), queue="sales", call_id="c1", caller="Ana \udcff")
    with QueueEventLog(tmp_path) as log:
        assert log.write(record).result(timeout=10) is True
    assert read_events(tmp_path, at("00:00:00"), at("23:00:00")) == ([record], [])
