"""The durable CDR spool: daily JSONL files, a journal of open calls, group commit.

Theory of operation
-------------------
Files, all in one directory (``<data_dir>/cdr``): ``YYYY-MM-DD.jsonl`` holds one
``CdrRecord.to_json()`` line per leg, in the file of its ``end_stamp``'s UTC date (rotation by
day); ``calls.journal`` holds one JSON line per event of a call in progress: ``open`` (at
admission, with what is known: uuid, trunk, numbers, start_stamp ...), ``update`` (more facts,
e.g. answer_stamp), ``close`` (its record is written) and the writer's ``alive`` heartbeat.
The journal is keyed by the leg's SIP Call-ID, as ``CdrRecord.call_id``: each leg opens its own.

One writer thread owns every file. ``open_call``, ``update_call`` and ``write`` only enqueue and
return a ``concurrent.futures.Future[bool]``: True once the line is on disk and fsync'd, False
if the write failed (the record is then held for retry). The future never carries an exception,
so nothing raises into call teardown. Synchronous code calls ``.result()``; the event loop
awaits ``asyncio.wrap_future(future)`` and is never blocked by the disk. A thread, not
asyncio's executor, because group commit needs one writer that sees the whole queue; and the
fsync releases the GIL, so the loop runs while the disk works. Cancelling the awaiting task
does not unqueue the record.

Group commit (``callserver.process.group_commit``): the writer commits at most once per
``max_delay``, everything queued meanwhile, up to ``max_batch`` items. So a lone record after a
quiet spell never waits, and a steady stream or a burst shares its fsyncs: at 1000 calls/s
(three items a call: open, answer, record) the writer commits about 1/``max_delay`` times a
second instead of 3000. Each file touched gets one write and one fsync for the whole batch,
then every future of the batch resolves.
With ``group_commit=False`` each item is its own batch: one fsync per record.

Ordering and crash windows. Record lines are fsync'd before the journal's ``close`` lines are
written, so a record is never closed without being durable. The journal is fsync'd only when
it holds ``open`` or ``update`` lines; a lost ``close`` is harmless, because recovery looks for
the call's record in the day files before it writes anything (no duplicates). kill -9 loses
nothing that reached ``write(2)``; fsync covers power loss.

Recovery (``recover``, once at start-up): every leg the journal left open, and whose record is
not in a day file, gets an ABORTED record (see ``callserver.cdr.journal``), which closes it. The
journal is compacted (closed legs dropped, by an atomic rewrite) on start and every
``compact_after`` closes.

Failures. An ``OSError`` from open/write/fsync is logged as ``cdr.write_failed`` (error level)
and counted (``callserver.cdr.files``); the records are kept (at most ``max_retry``, the oldest
dropped with ``cdr.record_dropped``) and written first in the next batch. A leg whose record
is dropped stays open in the journal, so the next start still reports it as ABORTED: no call
is silently missing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import structlog

from callserver.cdr.files import AppendFiles
from callserver.cdr.journal import (
    JOURNAL_NAME,
    JournalState,
    aborted_record,
    day_file_name,
    earliest_stamp,
    recorded_call_ids,
)
from callserver.cdr.record import CdrRecord, utc_stamp
from callserver.process.group_commit import GroupCommit, settle

__all__ = ["CdrSpool", "SpoolStatistics"]

log = structlog.get_logger("callserver.cdr")


@dataclass(frozen=True, slots=True, kw_only=True)
class SpoolStatistics:
    """Counters since the spool was opened (``queued``, ``retry_pending``, ``journal_backlog``
    and ``open_calls`` are current values; ``queued``: records and journal lines waiting for
    the writer thread)."""

    records_written: int
    records_failed: int
    records_dropped: int
    retry_pending: int
    write_errors: int
    journal_backlog: int
    fsyncs: int
    batches: int
    open_calls: int
    recovered: int
    journal_malformed: int
    queued: int


@dataclass(slots=True)
class _Record:
    record: CdrRecord
    future: Future[bool] | None


@dataclass(slots=True)
class _Journal:
    op: Literal["open", "update", "close"]
    call_id: str
    at: str
    known: dict[str, object]
    future: Future[bool] | None


@dataclass(slots=True)
class _Barrier:
    future: Future[bool]


class CdrSpool:
    """Append-only CDR spool with crash recovery (see the module docstring).

    Args:
        directory: The spool directory, created if missing.
        group_commit: Share one fsync among the records queued together (else one each).
        max_batch: Most items per batch.
        max_delay: Shortest interval between two commits (the longest an item waits).
        max_retry: Most failed records (and journal lines) held for retry.
        heartbeat: Seconds between ``alive`` journal lines (bounds an ABORTED end_stamp).
        compact_after: Rewrite the journal after this many closes.
        clock: Wall clock for journal times (tests pass a fixed one).

    Raises:
        ValueError: for a non-positive ``max_batch``/``max_retry``/``heartbeat``.
        OSError: if the directory cannot be created or the journal read.
    """

    def __init__(
        self,
        directory: Path,
        *,
        group_commit: bool = True,
        max_batch: int = 256,
        max_delay: float = 0.005,
        max_retry: int = 10_000,
        heartbeat: float = 10.0,
        compact_after: int = 10_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if max_batch < 1 or max_retry < 1 or heartbeat <= 0:
            raise ValueError("max_batch, max_retry and heartbeat must be positive")
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._max_retry = max_retry
        self._heartbeat, self._compact_after = heartbeat, compact_after
        self._clock = clock or (lambda: datetime.now(UTC))
        self._files = AppendFiles(self._dir, max_open=3, keep=(JOURNAL_NAME,))
        self._retry: list[_Record] = []
        self._backlog: list[bytes] = []
        self._counts = dict.fromkeys(("written", "failed", "dropped", "batches", "recovered"), 0)
        self._journal = JournalState(uuid.uuid4().hex[:12])
        self._journal.load(_read_or_empty(self._dir / JOURNAL_NAME))
        if self._journal.malformed:
            log.warning("cdr.journal_malformed", lines=self._journal.malformed)
        self._orphans = dict(self._journal.calls)
        self._journal.heartbeat(self._now())
        self._last_alive = time.monotonic()
        self._closes = 0
        self._rewrite_journal()
        self._writer: GroupCommit[_Record | _Journal | _Barrier] = GroupCommit(
            self._run_batch,
            name="cdr-spool",
            max_batch=max_batch if group_commit else 1,
            max_delay=max_delay,
            idle=heartbeat,
            stopped=self._stopped,
        )
        self._writer.start()

    @property
    def directory(self) -> Path:
        """The spool directory."""
        return self._dir

    def open_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Journal a leg at admission with what is known (CdrRecord field names, JSON values)."""
        return self._submit(_Journal("open", call_id, self._now(), dict(known), Future()))

    def update_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Journal more facts about an open leg (e.g. ``answer_stamp`` when it is answered)."""
        return self._submit(_Journal("update", call_id, self._now(), dict(known), Future()))

    def write(self, record: CdrRecord) -> Future[bool]:
        """Queue ``record``; the future is True once it is fsync'd, False if the write failed."""
        return self._submit(_Record(record, Future()))

    def flush(self) -> Future[bool]:
        """A future resolved when everything queued before is handled; False if any is held."""
        return self._submit(_Barrier(Future()))

    def recover(self, now_utc: datetime) -> list[CdrRecord]:
        """Write an ABORTED record for every leg a previous run left open; return them.

        Blocks until they are on disk. A second call (or the next start) returns nothing.
        """
        orphans, self._orphans = self._orphans, {}
        if not orphans:
            return []
        now = utc_stamp(now_utc)
        recorded = recorded_call_ids(self._dir, min(map(earliest_stamp, orphans.values())))
        records: list[CdrRecord] = []
        futures: list[Future[bool]] = []
        for call_id, call in orphans.items():
            if call_id in recorded:  # written, but its close was lost
                futures.append(self._submit(_Journal("close", call_id, now, {}, Future())))
                continue
            records.append(aborted_record(call_id, call, self._journal.alive.get(call.run), now))
            futures.append(self.write(records[-1]))
        for future in futures:
            future.result()
        self._counts["recovered"] += len(records)
        log.warning("cdr.recovered", aborted=len(records), closed=len(orphans) - len(records))
        return records

    def statistics(self) -> SpoolStatistics:
        """A snapshot of the counters."""
        c = self._counts
        return SpoolStatistics(
            records_written=c["written"],
            records_failed=c["failed"],
            records_dropped=c["dropped"],
            retry_pending=len(self._retry),
            write_errors=self._files.errors,
            journal_backlog=len(self._backlog),
            fsyncs=self._files.fsyncs,
            batches=c["batches"],
            open_calls=len(self._journal.calls),
            recovered=c["recovered"],
            journal_malformed=self._journal.malformed,
            queued=self._writer.queued(),
        )

    def close(self, timeout: float | None = None) -> None:
        """Write what is queued, stop the writer and close the files."""
        self._writer.close(timeout)

    def __enter__(self) -> CdrSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _now(self) -> str:
        return utc_stamp(self._clock())

    def _submit(self, item: _Record | _Journal | _Barrier) -> Future[bool]:
        future = item.future
        assert future is not None
        if self._writer.submit(item):
            return future
        log.error("cdr.spool_closed", item=type(item).__name__)
        future.set_result(False)
        return future

    # --- the writer thread -------------------------------------------------------------------

    def _run_batch(self, items: list[_Record | _Journal | _Barrier]) -> None:
        try:
            self._commit(items)
            self._maybe_heartbeat()
            self._maybe_compact()
        except Exception:  # a bug must not leave a future pending
            log.exception("cdr.writer_error")
            for item in items:
                settle(item.future, False)

    def _stopped(self) -> None:
        if self._retry or self._backlog:
            log.error("cdr.unwritten_at_close", records=len(self._retry), lines=len(self._backlog))
        self._files.close()

    def _commit(self, items: list[_Record | _Journal | _Barrier]) -> None:
        if not items and not self._retry:
            return
        self._counts["batches"] += 1
        pending, self._retry = self._retry + [i for i in items if isinstance(i, _Record)], []
        entries = [i for i in items if isinstance(i, _Journal)]
        done = self._write_records(pending)
        lines = [self._apply(e) for e in entries]
        closes = [self._journal.close(p.record.call_id) for p in done]
        self._closes += len(closes) - closes.count(None)
        sync = any(e.op != "close" for e in entries)
        journal_ok = self._write_journal([x for x in lines + closes if x], sync=sync)
        written = {id(p) for p in done}
        clear = not self._retry and not self._backlog
        for item in items:
            if isinstance(item, _Record):
                settle(item.future, id(item) in written)
            else:
                settle(item.future, clear if isinstance(item, _Barrier) else journal_ok)
        for p in pending:
            p.future = None  # resolved once; a retried record only counts when it lands

    def _write_records(self, pending: list[_Record]) -> list[_Record]:
        by_file: dict[str, list[_Record]] = {}
        for p in pending:
            by_file.setdefault(day_file_name(p.record), []).append(p)
        done: list[_Record] = []
        for name, group in by_file.items():
            data = b"".join([p.record.to_json().encode("ascii") + b"\n" for p in group])
            if self._files.append(name, data, sync=True):
                done += group
                self._counts["written"] += len(group)
            else:
                self._hold(group)
        return done

    def _hold(self, group: list[_Record]) -> None:
        self._counts["failed"] += len(group)
        self._retry += group
        excess = len(self._retry) - self._max_retry
        if excess > 0:
            dropped, self._retry = self._retry[:excess], self._retry[excess:]
            self._counts["dropped"] += excess
            for p in dropped:  # still open in the journal: the next start reports it ABORTED
                log.error("cdr.record_dropped", uuid=p.record.uuid, call_id=p.record.call_id)

    def _apply(self, entry: _Journal) -> bytes | None:
        if entry.op == "open":
            return self._journal.open(entry.call_id, entry.at, entry.known)
        if entry.op == "update":
            return self._journal.update(entry.call_id, entry.at, entry.known)
        return self._journal.close(entry.call_id)

    def _write_journal(self, lines: list[bytes], *, sync: bool) -> bool:
        if not lines and not self._backlog:
            return True
        sync = sync or bool(self._backlog)
        if self._files.append(JOURNAL_NAME, b"".join(self._backlog + lines), sync=sync):
            self._backlog = []
            return True
        self._backlog = (self._backlog + lines)[-self._max_retry :]
        return False

    def _maybe_heartbeat(self) -> None:
        if time.monotonic() - self._last_alive < self._heartbeat:
            return
        self._last_alive = time.monotonic()
        self._files.append(JOURNAL_NAME, self._journal.heartbeat(self._now()), sync=False)

    def _maybe_compact(self) -> None:
        if self._closes >= self._compact_after and not self._backlog:
            self._rewrite_journal()

    def _rewrite_journal(self) -> None:
        if self._files.replace(JOURNAL_NAME, self._journal.compacted()):
            self._closes = 0


def _read_or_empty(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
