"""Tests for the CDR spool: durability, group commit, failed writes and recovery after kill -9."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import pytest
from structlog.testing import capture_logs

from callserver.cdr import files
from callserver.cdr.journal import JOURNAL_NAME
from callserver.cdr.record import CdrRecord, parse_stamp
from callserver.cdr.spool import CdrSpool
from tests.cdr import make_record

T0 = "2026-11-22T10:00:00.000Z"


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines()


def _records(path: Path) -> list[CdrRecord]:
    return [CdrRecord.from_json(line) for line in _lines(path)]


def _journal(directory: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in _lines(directory / JOURNAL_NAME)]


class _Clock:
    """A wall clock that only moves when a test sets it."""

    def __init__(self, stamp: str) -> None:
        self.now = parse_stamp(stamp)

    def set(self, stamp: str) -> None:
        self.now = parse_stamp(stamp)

    def __call__(self) -> datetime:
        return self.now


class _FsyncGate:
    """Counts os.fsync calls; when armed, the next one waits until the test releases it."""

    def __init__(self) -> None:
        self.calls = 0
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()
        self._fsync = os.fsync

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if self.armed:
            self.armed = False
            self.entered.set()
            self.release.wait(10)
        self._fsync(fd)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> _FsyncGate:
    """Every fsync of the spool goes through a counting, holdable gate."""
    fsync_gate = _FsyncGate()
    monkeypatch.setattr(os, "fsync", fsync_gate)
    return fsync_gate


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[CdrSpool]:
    """A group-commit spool in a fresh directory, closed after the test."""
    with CdrSpool(tmp_path / "cdr", max_delay=0.0) as cdr_spool:
        yield cdr_spool


def test_write_is_durable_and_lands_in_the_file_of_its_end_date(spool: CdrSpool) -> None:
    """The future says True once the line is on disk, in YYYY-MM-DD.jsonl of end_stamp (UTC)."""
    late = make_record(
        2,
        start_stamp="2026-11-22T23:59:59.000Z",
        answer_stamp=None,
        disposition="CANCELLED",
        end_stamp="2026-11-23T00:00:01.000Z",
    )
    assert spool.write(make_record(1)).result(timeout=10) is True
    assert spool.write(late).result(timeout=10) is True
    assert _records(spool.directory / "2026-11-22.jsonl") == [make_record(1)]
    assert _records(spool.directory / "2026-11-23.jsonl") == [late]
    stats = spool.statistics()
    assert (stats.records_written, stats.write_errors, stats.retry_pending) == (2, 0, 0)


def test_group_commit_shares_one_fsync_among_queued_records(
    tmp_path: Path, gate: _FsyncGate
) -> None:
    """Ten records queued while the disk is busy are written with a single fsync."""
    with CdrSpool(tmp_path / "cdr", max_delay=0.0) as spool:
        before = gate.calls
        gate.armed = True
        first = spool.write(make_record(0))
        assert gate.entered.wait(10)  # the writer is inside fsync (new file's directory)
        rest = [spool.write(make_record(n)) for n in range(1, 11)]
        gate.release.set()
        assert [f.result(timeout=10) for f in [first, *rest]] == [True] * 11
        # directory + first record + one for the ten others
        assert gate.calls - before == 3
        assert spool.statistics().batches == 2
    assert len(_lines(tmp_path / "cdr" / "2026-11-22.jsonl")) == 11


def test_without_group_commit_every_record_has_its_own_fsync(
    tmp_path: Path, gate: _FsyncGate
) -> None:
    """With group_commit=False the same queue of records costs one fsync per record."""
    with CdrSpool(tmp_path / "cdr", group_commit=False) as spool:
        before = gate.calls
        gate.armed = True
        first = spool.write(make_record(0))
        assert gate.entered.wait(10)
        rest = [spool.write(make_record(n)) for n in range(1, 4)]
        gate.release.set()
        assert [f.result(timeout=10) for f in [first, *rest]] == [True] * 4
        assert gate.calls - before == 1 + 4
        assert spool.statistics().batches == 4


async def test_asyncio_caller_awaits_without_blocking_the_loop(
    tmp_path: Path, gate: _FsyncGate
) -> None:
    """write() returns at once; the loop keeps running while fsync is held; the await ends True."""
    with CdrSpool(tmp_path / "cdr") as spool:
        gate.armed = True
        written = asyncio.wrap_future(spool.write(make_record(0)))
        await asyncio.to_thread(gate.entered.wait, 10)
        for _ in range(3):
            await asyncio.sleep(0)
        assert not written.done()
        gate.release.set()
        assert await written is True


class _FullDisk:
    """A file whose writes fail with ENOSPC (after writing half the data) while ``full``."""

    full = False
    truncate_fails = False

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file

    def write(self, data: bytes) -> int:
        if _FullDisk.full:
            self._file.write(bytes(data[: len(data) // 2]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._file.write(data)

    def truncate(self, size: int) -> int:
        if _FullDisk.truncate_fails:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return self._file.truncate(size)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


@pytest.fixture
def full_disk(monkeypatch: pytest.MonkeyPatch) -> type[_FullDisk]:
    """Files opened by the spool become _FullDisk files; the disk starts with room."""

    def opener(path: Path, mode: str, buffering: int = -1) -> _FullDisk:
        return _FullDisk(open(path, mode, buffering=buffering))

    monkeypatch.setattr(_FullDisk, "full", False)
    monkeypatch.setattr(_FullDisk, "truncate_fails", False)
    monkeypatch.setattr(files, "open", opener, raising=False)
    return _FullDisk


def test_full_disk_is_logged_counted_and_retried_on_the_next_write(
    spool: CdrSpool, full_disk: type[_FullDisk]
) -> None:
    """ENOSPC: the future is False, cdr.write_failed is logged, no torn line stays, and the
    held record is written before the next one once there is room."""
    day = spool.directory / "2026-11-22.jsonl"
    assert spool.write(make_record(0)).result(timeout=10) is True
    full_disk.full = True
    with capture_logs() as logs:
        assert spool.write(make_record(1)).result(timeout=10) is False
    failed = [e for e in logs if e["event"] == "cdr.write_failed"]
    assert failed and failed[0]["log_level"] == "error"
    assert failed[0]["errno"] == errno.ENOSPC
    assert _records(day) == [make_record(0)]  # the half-written line was truncated away
    stats = spool.statistics()
    assert (stats.write_errors, stats.records_failed, stats.retry_pending) == (1, 1, 1)
    full_disk.full = False
    assert spool.write(make_record(2)).result(timeout=10) is True
    assert _records(day) == [make_record(0), make_record(1), make_record(2)]
    assert spool.statistics().retry_pending == 0
    assert spool.statistics().records_written == 3


def test_a_line_torn_beyond_repair_stays_on_a_line_of_its_own(
    spool: CdrSpool, full_disk: type[_FullDisk]
) -> None:
    """If truncation fails too, the next write starts on a new line; every other line parses."""
    day = spool.directory / "2026-11-22.jsonl"
    assert spool.write(make_record(0)).result(timeout=10) is True
    full_disk.full = full_disk.truncate_fails = True
    assert spool.write(make_record(1)).result(timeout=10) is False
    full_disk.full = False
    assert spool.write(make_record(2)).result(timeout=10) is True
    lines = _lines(day)
    parsed: list[CdrRecord | None] = []
    for line in lines:
        try:
            parsed.append(CdrRecord.from_json(line))
        except ValueError:
            parsed.append(None)
    assert parsed == [make_record(0), None, make_record(1), make_record(2)]


def test_held_records_are_bounded_and_drops_are_logged(
    tmp_path: Path, full_disk: type[_FullDisk]
) -> None:
    """With max_retry=2 a third failed record drops the oldest, logged as cdr.record_dropped."""
    with CdrSpool(tmp_path / "cdr", group_commit=False, max_retry=2) as spool:
        full_disk.full = True
        with capture_logs() as logs:
            results = [spool.write(make_record(n)).result(timeout=10) for n in range(3)]
        assert results == [False, False, False]
        assert [e["uuid"] for e in logs if e["event"] == "cdr.record_dropped"] == ["u0"]
        stats = spool.statistics()
        assert (stats.records_dropped, stats.retry_pending) == (1, 2)


def test_write_after_close_returns_false_and_raises_nothing(tmp_path: Path) -> None:
    """A closed spool refuses the record through its future, with cdr.spool_closed logged."""
    spool = CdrSpool(tmp_path / "cdr")
    spool.close()
    with capture_logs() as logs:
        assert spool.write(make_record()).result(timeout=10) is False
    assert [e["event"] for e in logs] == ["cdr.spool_closed"]


def _known(n: int, **extra: object) -> dict[str, object]:
    return {
        "uuid": f"u{n}",
        "trunk": "pbx-1",
        "called_e164": "38733123456",
        "start_stamp": T0,
        **extra,
    }


def test_recovery_after_kill_writes_each_open_call_once_as_aborted(tmp_path: Path) -> None:
    """Calls opened but never written (the old spool is abandoned, as by kill -9) come back as
    ABORTED records with what was known; a second recovery, or the next start, adds nothing."""
    directory, clock = tmp_path / "cdr", _Clock(T0)
    old = CdrSpool(directory, clock=clock)
    for n in range(4):
        old.open_call(f"c{n}", _known(n))
    clock.set("2026-11-22T10:00:03.000Z")
    answered = {"answer_stamp": "2026-11-22T10:00:03.000Z", "language": "bs"}
    old.update_call("c2", answered)
    assert old.write(make_record(1)).result(timeout=10) is True
    assert old.flush().result(timeout=10) is True

    new = CdrSpool(directory, clock=clock)
    recovered = new.recover(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    by_call = {r.call_id: r for r in recovered}
    assert sorted(by_call) == ["c0", "c2", "c3"]
    assert {(r.status, r.end_reason.value, r.hangup_by) for r in recovered} == {
        ("aborted", "aborted", "server")
    }
    c2 = by_call["c2"]
    assert (c2.uuid, c2.trunk, c2.language, c2.disposition.value) == (
        "u2",
        "pbx-1",
        "bs",
        "ANSWERED",
    )
    assert c2.end_stamp == "2026-11-22T10:00:03.000Z"  # the last time it was known, not now
    assert by_call["c0"].disposition.value == "FAILED"
    assert new.recover(datetime(2026, 11, 22, 12, 1, tzinfo=UTC)) == []
    new.close()
    with CdrSpool(directory) as third:
        assert third.recover(datetime(2026, 11, 22, 13, 0, tzinfo=UTC)) == []
    written = [r.call_id for r in _records(directory / "2026-11-22.jsonl")]
    assert sorted(written) == ["c0", "c1", "c2", "c3"]
    old.close()


def test_aborted_end_is_the_last_heartbeat_of_the_crashed_run(tmp_path: Path) -> None:
    """A call open when the process died ends at that process's last heartbeat, capped at now."""
    directory, clock = tmp_path / "cdr", _Clock(T0)
    old = CdrSpool(directory, clock=clock, heartbeat=0.001)
    old.open_call("c1", _known(1))
    clock.set("2026-11-22T10:05:00.000Z")
    for _ in range(10_000):  # the writer heartbeats after each batch and when idle
        old.flush().result(timeout=10)
        if any(e.get("at") == "2026-11-22T10:05:00.000Z" for e in _journal(directory)):
            break
    else:
        pytest.fail("no heartbeat was written")
    new = CdrSpool(directory, clock=clock)
    (record,) = new.recover(datetime(2026, 11, 22, 11, 0, tzinfo=UTC))
    assert (record.end_stamp, record.duration) == ("2026-11-22T10:05:00.000Z", 300)
    new.close()
    old.close()


def _lose_close_lines(directory: Path) -> None:
    journal = directory / JOURNAL_NAME
    kept = [line for line in _lines(journal) if b'"op":"close"' not in line]
    journal.write_bytes(b"".join(line + b"\n" for line in kept))


def test_record_written_but_close_lost_is_not_duplicated(tmp_path: Path) -> None:
    """A crash between the record's fsync and its journal close leaves no ABORTED duplicate."""
    directory = tmp_path / "cdr"
    clock = _Clock("2026-11-22T10:00:00.000Z")
    with CdrSpool(directory, clock=clock) as old:
        old.open_call("c1", _known(1))
        assert old.write(make_record(1)).result(timeout=10) is True
    _lose_close_lines(directory)
    clock.set("2026-11-22T12:00:00.000Z")
    with CdrSpool(directory, clock=clock) as new:
        assert new.recover(clock()) == []
        assert new.statistics().open_calls == 0
    assert len(_lines(directory / "2026-11-22.jsonl")) == 1


@pytest.mark.parametrize("opened", ["2026-11-23T00:00:01.000Z", "2026-12-06T09:00:00.000Z"])
def test_record_on_an_earlier_day_than_its_journal_line_is_not_duplicated(
    tmp_path: Path, opened: str
) -> None:
    """Recovery reads the day file of the record's own start, not only of the journal's open."""
    directory = tmp_path / "cdr"
    clock = _Clock(opened)
    with CdrSpool(directory, clock=clock) as old:
        old.open_call("c1", _known(1, start_stamp="2026-11-21T23:59:59.000Z"))
        record = make_record(
            1,
            start_stamp="2026-11-21T23:59:59.000Z",
            answer_stamp="2026-11-21T23:59:59.500Z",
            end_stamp="2026-11-21T23:59:59.900Z",
        )
        assert old.write(record).result(timeout=10) is True
    _lose_close_lines(directory)
    with CdrSpool(directory, clock=clock) as new:
        assert new.recover(clock()) == []
    assert len(_lines(directory / "2026-11-21.jsonl")) == 1


def test_journal_is_compacted_on_start_and_skips_a_torn_tail(tmp_path: Path) -> None:
    """On start closed calls vanish from the journal; a torn last line is counted, not fatal."""
    directory = tmp_path / "cdr"
    with CdrSpool(directory) as old:
        for n in range(3):
            old.open_call(f"c{n}", _known(n))
        for n in range(2):
            old.write(make_record(n)).result(timeout=10)
    with (directory / JOURNAL_NAME).open("ab") as journal:
        journal.write(b'{"op":"open","call_id":"c9","ru')
    with CdrSpool(directory) as new:
        entries = _journal(directory)
        assert [(e["op"], e.get("call_id")) for e in entries if e["op"] != "alive"] == [
            ("open", "c2")
        ]
        assert new.statistics().journal_malformed == 1
        assert new.statistics().open_calls == 1


def test_journal_is_compacted_while_running(tmp_path: Path) -> None:
    """After compact_after closes the journal is rewritten without the closed calls."""
    directory = tmp_path / "cdr"
    with CdrSpool(directory, group_commit=False, compact_after=2) as spool:
        for n in range(3):
            spool.open_call(f"c{n}", _known(n))
        for n in range(3):
            spool.write(make_record(n))
        assert spool.flush().result(timeout=10) is True
        mentioned = {e.get("call_id") for e in _journal(directory)}
    assert mentioned == {None, "c2"}


def test_records_queued_within_the_commit_interval_share_one_commit(tmp_path: Path) -> None:
    """After a commit, records queued before max_delay has passed go out together in one batch."""
    with CdrSpool(tmp_path / "cdr", max_delay=2.0) as spool:
        assert spool.write(make_record(0)).result(timeout=10) is True  # a lone record: at once
        rest = [spool.write(make_record(n)) for n in range(1, 6)]
        assert [f.result(timeout=10) for f in rest] == [True] * 5
        assert spool.statistics().batches == 2
    assert len(_lines(tmp_path / "cdr" / "2026-11-22.jsonl")) == 6
