"""Tests for the call recordings' retention (callserver.cdr.retention, cdr.purging).

Recordings are files in a temp data dir laid out as the server writes them; every ``now`` is
a pinned date, never the clock.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from pathlib import Path

from structlog.testing import capture_logs

from callserver.cdr.purging import RetentionTask, purge
from callserver.cdr.retention import expired, scan
from callserver.cdr.store import CdrStore

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
DAYS = {"acme": 90, "bigco": 270}


def retention(customer: str) -> int:
    """acme keeps 90 days, bigco 270, anyone else the default 90."""
    return DAYS.get(customer, 90)


def put(data_dir: Path, customer: str, day: date, name: str = "u1") -> Path:
    """A recording of ``customer`` made on ``day``."""
    path = data_dir / "recordings" / customer / f"{day:%Y/%m/%d}" / f"{name}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"RIFF" + bytes(40))
    return path


def test_a_recording_expires_the_day_after_its_last_day() -> None:
    """One made on 1 April and kept 90 days is there all of 30 June and gone on 1 July."""
    day = date(2027, 4, 1)
    assert not expired(day, 90, datetime(2027, 6, 30, 23, 59, tzinfo=UTC))
    assert expired(day, 90, datetime(2027, 7, 1, 0, 0, tzinfo=UTC))


def test_purge_removes_recordings_past_retention_and_keeps_newer_ones(tmp_path: Path) -> None:
    """Past its customer's retention a recording is deleted and noted; newer ones stay."""
    old = put(tmp_path, "acme", date(2027, 3, 1), "old")
    new = put(tmp_path, "acme", date(2027, 6, 1), "new")
    long_kept = put(tmp_path, "bigco", date(2027, 3, 1), "kept")
    result = purge(tmp_path, retention, NOW)
    assert [r.relative for r in result.deleted] == ["recordings/acme/2027/03/01/old.wav"]
    assert not old.exists() and not old.parent.exists() and not old.parent.parent.exists()
    assert new.exists() and long_kept.exists()
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        assert store.purged() == {"recordings/acme/2027/03/01/old.wav": "2027-06-30T12:00:00.000Z"}


def test_a_dry_run_deletes_nothing_and_notes_nothing(tmp_path: Path) -> None:
    """``dry_run`` lists what would go and leaves the files and the database alone."""
    old = put(tmp_path, "acme", date(2027, 1, 5))
    result = purge(tmp_path, retention, NOW, dry_run=True)
    assert [r.path for r in result.deleted] == [old] and old.exists()
    assert not (tmp_path / "cdr.sqlite").exists()


def test_files_that_are_not_recordings_are_left_alone(tmp_path: Path) -> None:
    """A file being written, a stray file and a folder not named for a day are never touched."""
    old = put(tmp_path, "acme", date(2027, 1, 5))
    part = old.with_name(f".{old.name}.part")
    part.write_bytes(b"")
    stray = tmp_path / "recordings" / "acme" / "notes" / "x.wav"
    stray.parent.mkdir()
    stray.write_bytes(b"")
    assert [r.path for r in scan(tmp_path)] == [old]
    purge(tmp_path, retention, NOW)
    assert part.exists() and stray.exists() and not old.exists()


def test_the_scheduled_purge_runs_on_its_clock_and_logs(tmp_path: Path) -> None:
    """The server's task purges by the clock it is given and logs what it deleted."""
    put(tmp_path, "acme", date(2027, 3, 1))
    kept = put(tmp_path, "acme", date(2027, 6, 29))
    task = RetentionTask(tmp_path, retention, clock=lambda: NOW)
    with capture_logs() as logs:
        result = asyncio.run(task.run_once())
    assert len(result.deleted) == 1 and kept.exists()
    assert [e["event"] for e in logs] == ["recording.purged"]
    assert logs[0]["files"] == 1 and task.failures == 0


def test_a_failed_purge_is_logged_and_counted(tmp_path: Path) -> None:
    """A database that cannot be written fails the run, logged; the next run tries again."""
    put(tmp_path, "acme", date(2027, 3, 1))
    (tmp_path / "cdr.sqlite").mkdir()  # not a database
    task = RetentionTask(tmp_path, retention, clock=lambda: NOW)
    with capture_logs() as logs:
        asyncio.run(task.run_once())
    assert task.failures == 1
    assert "recording.purge_failed" in [e["event"] for e in logs]
