"""The feeder: a node's CDR spool shipped to the cluster's PostgreSQL (``cluster.postgres``).

Theory of operation
-------------------
The spool's day files stay the record of truth (``cdr.spool``); PostgreSQL is a copy of every
node's records that the feeder keeps current (``cdr.central`` holds its tables). The feeder is
one task on the server's loop, started after the spool's start-up recovery, so the ABORTED
records of a crash are among the first it ships. Nothing on the call path knows it exists: it
looks at the spool directory once every ``interval`` (1 s) and ships what the files gained.

Offsets. ``<data_dir>/cdr-central.offset`` is its checkpoint, JSON ``{file: offset}``: how far
each day file (and ``marks.jsonl``, the MCID marks) is in PostgreSQL. From there it reads the
complete lines only (a line still being written has no newline yet: it waits for it) and
sends them in batches of at most ``batch`` records, each batch one ``INSERT ... SELECT FROM
unnest(...) ON CONFLICT (uuid) DO NOTHING`` (one round trip, committed alone). After
PostgreSQL committed a batch, the checkpoint moves past it: written to a temporary file,
fsync'd and renamed over the old one (``process.durable.write_json``). A crash between the
commit and the rename sends the batch again at the next start, and the primary key on
``uuid`` drops it: nothing is lost and nothing is doubled. A checkpoint that is missing or
unreadable starts again from the beginning of every file, with the same guarantee. A line
that is no record (the torn line a failed write can leave) is skipped, counted and logged as
``cdr.central_malformed``; the offset moves past it.

Off the call path. Reading the lines and making their rows (``CdrRecord.from_json`` checks
each, about 60 us a record, so that PostgreSQL holds exactly what ``cdr.sqlite`` holds) runs
in a worker process (``cdr.central_rows``; a process as the ingester's, for its reason: a
thread would hold the interpreter lock the loop needs for the media clock, and paced slices
on the loop would cost it six times more). The loop unpickles the rows (under 1 us each) and
asyncpg encodes a batch in one step, about 1 ms for 200 records: ``batch`` keeps that step
short. Scans and checkpoint writes go to threads. docs/scaling.md has the figures.

PostgreSQL unreachable (refused, reset, shut down, too slow: ``cdr.central.UNREACHABLE``).
The batch in flight is not checkpointed, so it is sent again. ``cdr.central_unavailable`` is
logged once (error level) for the outage, and the feeder tries again after 1 s, then 2, 4 ...
up to ``backoff`` (30 s); the spool keeps growing meanwhile and the backlog shows it. Once a
pass delivers everything that waited, ``cdr.central_resumed`` is logged with how many records
it delivered and how long PostgreSQL was gone. While nothing waits, each pass checks the
connection (``SELECT 1``), so ``up`` says whether PostgreSQL answers. A spool that cannot be
read, a worker that died (it is started again) or any other error (a bug, with its
traceback) is logged as ``cdr.central_failed`` and the feed goes on the same way.

Statistics (``statistics``, read by /metrics at scrape time): up, the backlog in records and
bytes and how many seconds behind (``cdr.backlog``, as of the last look), and the records
delivered, ignored as duplicates and skipped as malformed.

Close. ``close`` stops the task and makes a last delivery attempt within its grace, after the
spool closed (every record on disk). What it could not deliver is logged as
``cdr.central_pending_at_close`` and goes at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import structlog

from callserver.cdr.backlog import Backlog, read_checkpoint, scan
from callserver.cdr.central import INSERT_MARKS, INSERT_RECORDS, UNREACHABLE, ensure_schema
from callserver.cdr.central import redacted as _redacted
from callserver.cdr.central_rows import Chunk, Row, SpoolReadError, read_chunk
from callserver.cdr.ingester import worker_pool
from callserver.cdr.marks import MARKS_FILE
from callserver.process.durable import write_json

__all__ = ["CHECKPOINT", "CdrFeeder", "FeederStatistics"]

log = structlog.get_logger("callserver.cdr")

CHECKPOINT = "cdr-central.offset"
_READ = 512 * 1024  # bytes of complete lines read (and parsed) by one job of the worker


@dataclass(frozen=True, slots=True, kw_only=True)
class FeederStatistics:
    """The feeder now: whether PostgreSQL answers (``up``), what waits (``backlog_records``,
    ``backlog_bytes``, ``lag_seconds``), and counters since start: records ``delivered``
    (new rows), ``duplicates`` (already there), ``malformed`` lines skipped, ``batches``
    committed, ``failures`` (attempts that failed) and ``outages``."""

    up: bool
    backlog_records: int
    backlog_bytes: int
    lag_seconds: float
    delivered: int
    duplicates: int
    malformed: int
    batches: int
    failures: int
    outages: int


@dataclass(slots=True)
class _Outage:
    since: float
    reached: float | None = None  # when PostgreSQL answered again
    delivered: int = 0


class CdrFeeder:
    """Ships ``spool_dir``'s records to PostgreSQL (see the module docstring).

    Args:
        spool_dir: The spool directory (``<data_dir>/cdr``).
        dsn: ``postgresql://user@host:port/db`` (``cluster.postgres``).
        node: This node's name (``cluster.node``), the rows' ``node``.
        checkpoint: The offsets file (``<data_dir>/cdr-central.offset``).
        batch: Most records a batch.
        interval: Seconds between two looks at the spool.
        backoff: The longest wait between two attempts while PostgreSQL is unreachable.
        timeout: Seconds to connect, and that a statement may take.
        clock: The loop's monotonic clock (lag, outage times).
        log_level, log_format: The server's logging, which the worker process sets up too.

    Raises:
        ValueError: for a non-positive ``batch``, ``interval``, ``backoff`` or ``timeout``.
    """

    def __init__(
        self,
        spool_dir: Path,
        dsn: str,
        node: str,
        *,
        checkpoint: Path,
        batch: int = 200,
        interval: float = 1.0,
        backoff: float = 30.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        log_level: str = "info",
        log_format: str = "auto",
    ) -> None:
        if min(batch, interval, backoff, timeout) <= 0:
            raise ValueError("batch, interval, backoff and timeout must be positive")
        self.spool_dir, self.checkpoint = spool_dir, checkpoint
        self._dsn, self._node = dsn, node
        self._batch, self._interval, self._timeout = batch, interval, timeout
        self._max_backoff, self._backoff, self._retry_at = backoff, 0.0, 0.0
        self._clock, self._logging = clock, (log_level, log_format)
        self._worker: ProcessPoolExecutor | None = None
        self._backlog: Backlog | None = None  # the checkpoint, once read
        self._connection: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._writing = threading.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._outage: _Outage | None = None
        self._up = False
        self._counts = dict.fromkeys(("delivered", "duplicates", "malformed", "batches"), 0)
        self._failures = self._outages = 0

    def start(self) -> None:
        """Start the task: a first pass at once, then one every ``interval``."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="cdr-feeder")

    async def deliver(self, wait: float = 2.0) -> None:
        """One pass now, for at most ``wait`` seconds (the admin API's reads wait for it, so
        that what this node spooled is in PostgreSQL); none while PostgreSQL is known down."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                await self._pass(force=False)

    async def close(self, grace: float = 5.0) -> None:
        """Stop the task and make a last pass, all within ``grace`` seconds (call it after the
        spool closed; what is still not delivered is logged); close the connection."""
        task, self._task = self._task, None
        if task is not None:
            await self._last_pass(task, asyncio.get_running_loop().time() + grace)
        self._disconnect()
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.to_thread(worker.shutdown)

    def statistics(self) -> FeederStatistics:
        """A snapshot (the backlog as of the last look at the spool)."""
        backlog = self._backlog
        c = self._counts
        return FeederStatistics(
            up=self._up,
            backlog_records=backlog.records() if backlog else 0,
            backlog_bytes=backlog.bytes() if backlog else 0,
            lag_seconds=backlog.lag(self._clock()) if backlog else 0.0,
            delivered=c["delivered"],
            duplicates=c["duplicates"],
            malformed=c["malformed"],
            batches=c["batches"],
            failures=self._failures,
            outages=self._outages,
        )

    # --- the task ----------------------------------------------------------------------------

    async def _last_pass(self, task: asyncio.Task[None], deadline: float) -> None:
        self._stopping = True
        self._wake.set()  # the pass in progress ends, then the task
        if not (await asyncio.wait([task], timeout=deadline - task.get_loop().time()))[0]:
            task.cancel()
            await asyncio.wait([task])
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                await self._pass(force=True)
        if self._backlog is not None and self._backlog.records():
            log.warning(
                "cdr.central_pending_at_close",
                records=self._backlog.records(),
                bytes=self._backlog.bytes(),
                detail="delivered at the next start",
            )

    async def _run(self) -> None:
        while not self._stopping:
            await self._pass(force=False)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()

    async def _pass(self, *, force: bool) -> None:
        """Look at the spool; unless waiting out a back-off (``force`` does not wait), deliver
        everything that waits."""
        async with self._lock:
            try:
                backlog = await self._look()
                if not force and self._clock() < self._retry_at:
                    return
                await self._deliver(backlog)
            except (SpoolReadError, BrokenProcessPool) as exc:  # not PostgreSQL's doing
                self._not_delivered(exc, traceback=False)
            except UNREACHABLE as exc:
                self._failed(exc)
            except asyncio.CancelledError:
                self._disconnect()  # a statement cut short leaves the connection unusable
                raise
            except Exception as exc:  # a bug: logged, and the feed outlives it
                self._not_delivered(exc, traceback=True)
            else:
                self._caught_up()

    async def _look(self) -> Backlog:
        if self._backlog is None:
            self._backlog = Backlog(await asyncio.to_thread(read_checkpoint, self.checkpoint))
        counted = self._backlog.counted()
        found = await asyncio.to_thread(scan, self.spool_dir, counted)
        self._backlog.apply(found, self._clock())
        return self._backlog

    async def _deliver(self, backlog: Backlog) -> None:
        connection = await self._connect()
        sent = False
        for name in backlog.waiting():
            while await self._ship(connection, backlog, name):
                sent = True
        if not sent:
            await connection.execute("SELECT 1")  # nothing to send: does it still answer?
        self._reached()

    async def _ship(self, connection: asyncpg.Connection, backlog: Backlog, name: str) -> bool:
        """Ship the next lines of ``name`` in batches; False when none are complete."""
        chunk = await self._in_worker(self.spool_dir / name, backlog.offset(name))
        position = chunk.start
        for first in range(0, len(chunk.rows), self._batch):
            last = min(first + self._batch, len(chunk.rows))
            rows = [row for row in chunk.rows[first:last] if row is not None]
            if rows:
                await self._insert(connection, name, rows)
            end = position + sum(chunk.lengths[first:last])
            backlog.shipped(name, position, end, last - first)
            self._malformed(name, chunk, range(first, last), position)
            position = end
            await self._save(backlog)
        return bool(chunk.rows)

    async def _in_worker(self, path: Path, offset: int) -> Chunk:
        """``read_chunk`` in the worker process, started at the first job (and again after
        one died)."""
        if self._worker is None:
            self._worker = worker_pool(*self._logging)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._worker, read_chunk, path, offset, _READ)
        except BrokenProcessPool:
            worker, self._worker = self._worker, None
            worker.shutdown(wait=False)
            raise

    def _malformed(self, name: str, chunk: Chunk, lines: range, offset: int) -> None:
        """Count and log the lines of a committed batch that were no record."""
        for index in lines:
            if index in chunk.errors:
                self._counts["malformed"] += 1
                log.warning(
                    "cdr.central_malformed", file=name, offset=offset, error=chunk.errors[index]
                )
            offset += chunk.lengths[index]

    async def _insert(self, connection: asyncpg.Connection, name: str, rows: list[Row]) -> None:
        statement = INSERT_MARKS if name == MARKS_FILE else INSERT_RECORDS
        columns = [list(column) for column in zip(*rows, strict=True)]
        status = await connection.execute(statement, self._node, *columns)
        self._reached()
        self._counts["batches"] += 1
        if name == MARKS_FILE:
            return
        inserted = int(status.rsplit(" ", 1)[-1])  # "INSERT 0 <rows>"
        self._counts["delivered"] += inserted
        self._counts["duplicates"] += len(rows) - inserted
        if self._outage is not None:
            self._outage.delivered += inserted

    async def _save(self, backlog: Backlog) -> None:
        """Write the checkpoint (after a commit); a failure is logged and retried with the
        next batch (until then a restart sends those batches again: no harm)."""
        try:
            await asyncio.to_thread(self._write_checkpoint, backlog.offsets())
        except OSError as exc:
            log.error("cdr.central_checkpoint_failed", file=str(self.checkpoint), error=str(exc))

    def _write_checkpoint(self, offsets: dict[str, int]) -> None:
        # One writer at a time: a pass cancelled at close may leave its write running.
        data: dict[str, object] = dict(offsets)
        with self._writing:
            write_json(self.checkpoint, data)

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            self._connection = await asyncpg.connect(
                self._dsn, timeout=self._timeout, command_timeout=self._timeout
            )
            await ensure_schema(self._connection)
        return self._connection

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            connection.terminate()

    # --- up and down -------------------------------------------------------------------------

    def _reached(self) -> None:
        self._up = True
        if self._outage is not None and self._outage.reached is None:
            self._outage.reached = self._clock()

    def _not_delivered(self, exc: BaseException, *, traceback: bool) -> None:
        """Not PostgreSQL: the spool unreadable, the worker dead, or a bug; try again."""
        self._retry_later()
        log.error(
            "cdr.central_failed",
            error=str(exc) or type(exc).__name__,
            error_type=type(exc).__name__,
            exc_info=traceback,
        )

    def _retry_later(self) -> None:
        """Drop the connection and wait 1 s, then twice as long each time, up to backoff."""
        self._disconnect()
        self._failures += 1
        self._backoff = min(self._max_backoff, max(1.0, self._backoff * 2))
        self._retry_at = self._clock() + self._backoff

    def _failed(self, exc: Exception) -> None:
        """PostgreSQL cannot be used: an outage begins (logged once), or goes on."""
        self._retry_later()
        self._up = False
        if self._outage is not None:
            self._outage.reached = None  # lost again while catching up: the same outage
        else:
            self._outage = _Outage(since=self._clock())
            self._outages += 1
            log.error(
                "cdr.central_unavailable",
                database=_redacted(self._dsn),
                error=f"{type(exc).__name__}: {exc}",
                retry_seconds=self._backoff,
                backlog_records=self._backlog.records() if self._backlog else 0,
            )

    def _caught_up(self) -> None:
        self._backoff, self._retry_at = 0.0, 0.0
        outage, self._outage = self._outage, None
        if outage is None:
            return
        now = self._clock()
        reached = outage.reached if outage.reached is not None else now
        log.info(
            "cdr.central_resumed",
            database=_redacted(self._dsn),
            delivered=outage.delivered,
            down_seconds=round(reached - outage.since, 3),
            drain_seconds=round(now - reached, 3),
        )
