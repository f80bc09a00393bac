"""The durable queue event log: ``<data_dir>/queue-events/YYYY-MM-DD.jsonl``, group commit.

Theory of operation
-------------------
One ``QueueLogRecord.to_json()`` line an event, in the file of the UTC date of its ``at``
(rotation by day). ``write`` only queues the record and returns a
``concurrent.futures.Future[bool]``: True once the line is on disk and fsync'd, False if the
write failed (the record is then held and written first in the next batch). The future never
carries an exception and nothing waits for it on the call path; the event loop may
``asyncio.wrap_future`` it, a test or a command calls ``.result()``.

The writing is the CDR spool's: one writer thread with group commit
(``callserver.process.group_commit``: at most one commit per ``max_delay``, everything queued
meanwhile shares it) appending through ``callserver.cdr.files.AppendFiles`` (one write and one
fsync a file a batch, a new file's directory fsync'd, a failed append truncated back so no torn
line precedes the next). kill -9 loses nothing whose future said True (nor anything that
reached ``write(2)``); fsync covers power loss. A failed write is logged as
``queues.event_write_failed``; at most ``max_retry`` records are held, the oldest dropped with
``queues.event_dropped``.

``read_events`` reads the files of a period back for the statistics: a line that is not a
record is reported as ``FILE:LINE: why`` and skipped, never the end of a report.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from callserver.cdr.files import AppendFiles
from callserver.process.group_commit import GroupCommit, settle
from callserver.queues.records import QueueLogRecord

__all__ = ["EVENTS_DIR", "EventLogStatistics", "QueueEventLog", "read_events"]

log = structlog.get_logger("callserver.queues")

EVENTS_DIR = "queue-events"


@dataclass(frozen=True, slots=True, kw_only=True)
class EventLogStatistics:
    """Counters since the log was opened (``retry_pending`` is a current value)."""

    records_written: int
    records_failed: int
    records_dropped: int
    retry_pending: int
    write_errors: int
    fsyncs: int
    batches: int


@dataclass(slots=True)
class _Pending:
    record: QueueLogRecord | None  # None: a barrier (flush)
    future: Future[bool] | None


class QueueEventLog:
    """Append-only, fsync'd queue event log (see the module docstring).

    Args:
        directory: The log's directory (``<data_dir>/queue-events``), created if missing.
        group_commit: Share one fsync among the records queued together (else one each).
        max_batch: Most records a batch.
        max_delay: Shortest interval between two commits (the longest a record waits).
        max_retry: Most failed records held for retry.

    Raises:
        ValueError: for a non-positive ``max_batch`` or ``max_retry``.
        OSError: if the directory cannot be created.
    """

    def __init__(
        self,
        directory: Path,
        *,
        group_commit: bool = True,
        max_batch: int = 256,
        max_delay: float = 0.005,
        max_retry: int = 10_000,
    ) -> None:
        if max_retry < 1:
            raise ValueError("max_retry must be positive")
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._max_retry = max_retry
        self._files = AppendFiles(self._dir, max_open=2, failed_event="queues.event_write_failed")
        self._retry: list[_Pending] = []
        self._counts = dict.fromkeys(("written", "failed", "dropped", "batches"), 0)
        self._writer: GroupCommit[_Pending] = GroupCommit(
            self._commit,
            name="queue-events",
            max_batch=max_batch if group_commit else 1,
            max_delay=max_delay,
            idle=60.0,
            stopped=self._stopped,
        )
        self._writer.start()

    @property
    def directory(self) -> Path:
        """The log's directory."""
        return self._dir

    def write(self, record: QueueLogRecord) -> Future[bool]:
        """Queue ``record``; the future is True once it is fsync'd, False if the write failed."""
        return self._submit(_Pending(record, Future()))

    def flush(self) -> Future[bool]:
        """A future resolved when everything queued before is handled; False if any is held."""
        return self._submit(_Pending(None, Future()))

    def statistics(self) -> EventLogStatistics:
        """A snapshot of the counters."""
        c = self._counts
        return EventLogStatistics(
            records_written=c["written"],
            records_failed=c["failed"],
            records_dropped=c["dropped"],
            retry_pending=len(self._retry),
            write_errors=self._files.errors,
            fsyncs=self._files.fsyncs,
            batches=c["batches"],
        )

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer and close the files."""
        self._writer.close(timeout)

    def __enter__(self) -> QueueEventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _submit(self, item: _Pending) -> Future[bool]:
        future = item.future
        assert future is not None
        if not self._writer.submit(item):
            log.error("queues.event_log_closed")
            future.set_result(False)
        return future

    # --- the writer thread -------------------------------------------------------------------

    def _commit(self, items: list[_Pending]) -> None:
        try:
            self._write(items)
        except Exception:  # a bug must not leave a future pending
            log.exception("queues.event_writer_error")
            for item in items:
                settle(item.future, False)

    def _write(self, items: list[_Pending]) -> None:
        if not items and not self._retry:
            return
        self._counts["batches"] += 1
        pending, self._retry = self._retry + [i for i in items if i.record is not None], []
        by_file: dict[str, list[_Pending]] = {}
        for p in pending:
            assert p.record is not None
            by_file.setdefault(f"{p.record.stamp[:10]}.jsonl", []).append(p)
        for name, group in by_file.items():
            lines = [p.record.to_json().encode("ascii") + b"\n" for p in group if p.record]
            ok = self._files.append(name, b"".join(lines), sync=True)
            self._counts["written" if ok else "failed"] += len(group)
            for p in group:
                settle(p.future, ok)
                p.future = None  # resolved once; a retried record only counts when it lands
            if not ok:
                self._hold(group)
        for item in items:
            if item.record is None:
                settle(item.future, not self._retry)

    def _hold(self, group: list[_Pending]) -> None:
        self._retry += group
        excess = len(self._retry) - self._max_retry
        if excess > 0:
            dropped, self._retry = self._retry[:excess], self._retry[excess:]
            self._counts["dropped"] += excess
            for p in dropped:
                assert p.record is not None
                log.error("queues.event_dropped", uuid=p.record.uuid, kind=p.record.kind.value)

    def _stopped(self) -> None:
        if self._retry:
            log.error("queues.events_unwritten_at_close", records=len(self._retry))
        self._files.close()


def read_events(
    directory: Path, since: datetime, until: datetime, *, lookback: timedelta = timedelta(days=1)
) -> tuple[list[QueueLogRecord], list[str]]:
    """The records of the day files from ``since - lookback`` to ``until``, in time order.

    The files of the ``lookback`` before the period are read too, so that an agent logged in
    or paused before ``since`` is known to be (the statistics cut the time at ``since``).

    Returns:
        The records (every one whose file is in range; the caller cuts the period) and one
        problem a bad line, ``FILE:LINE: why``, in file order.

    Raises:
        OSError: if the directory or a day file cannot be read (a missing directory is empty).
    """
    first, last = (since - lookback).date().isoformat(), until.date().isoformat()
    if not directory.is_dir():
        return [], []
    records: list[QueueLogRecord] = []
    problems: list[str] = []
    for path in sorted(directory.glob("????-??-??.jsonl")):
        if first <= path.stem <= last:
            _read_file(path, records, problems)
    records.sort(key=lambda r: r.at)
    return records, problems


def _read_file(path: Path, records: list[QueueLogRecord], problems: list[str]) -> None:
    for number, line in _lines(path.read_bytes().splitlines()):
        try:
            records.append(QueueLogRecord.from_json(line))
        except ValueError as exc:
            problems.append(f"{path}:{number}: {exc}")


def _lines(lines: Iterable[bytes]) -> Iterable[tuple[int, bytes]]:
    return ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
