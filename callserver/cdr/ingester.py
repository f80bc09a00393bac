"""The running server's feed of the CDR spool into SQLite: a periodic ingest in a worker process.

Theory of operation
-------------------
The spool's day files are the record of truth and ``cdr.sqlite`` an index over them
(``callserver.cdr.store``). ``CdrIngester`` keeps that index current while the server runs:
one ingest right after start-up recovery (so the ABORTED records of a crash are queryable at
once), one every ``interval`` seconds, and a last one at close, after the spool has written
and closed everything.

Each run is ``CdrStore.ingest`` in a worker process of its own: parsing a few thousand JSON
lines and inserting them is CPU work, and in a thread of the server it would hold the
interpreter lock the event loop needs for the media clock (off the loop is not off the core).
The worker is started once, with the 'spawn' method (the server has threads and may run
uvloop, which a fork would copy half-way), and serves every run after it; its priority is
lowered (nice) so that on a shared core the server comes first, and it exits by itself when
the server is gone (even killed with SIGKILL). A run opens its own
``CdrStore`` in the worker and closes it before it returns, so the server process never opens
``cdr.sqlite`` and no file stays open between runs. The worker sends back the counts, and the
server logs ``cdr.ingested`` with them when a run added records (or skipped malformed lines),
nothing otherwise; the worker's own log lines (``cdr.ingest_malformed``...) go to the same
output, configured as the server's.

Runs never overlap: the periodic task runs them one after another, the runs the admin API asks
for before it reads (``ingest``) queue behind them in the one worker, and ``close`` lets the
run in progress finish before the last one starts; then the worker is shut down. A second process
ingesting at the same time (``callserver cdr export``) is serialised by SQLite's write lock;
the offset checkpoint is read and advanced inside that lock, so nothing is lost or counted
twice whoever runs first.

Failures. A run that fails (``sqlite3.Error``, ``OSError``: a locked or corrupt database, a
full disk, an unreadable spool) is logged as ``cdr.ingest_failed`` at error level with the
error, and counted; nothing is raised into the server, and the next run retries from the
stored offset, so a failed run loses nothing. A worker that died (killed, out of memory:
``BrokenProcessPool``) fails its run the same way, and the next run starts a fresh worker; a
run it did not finish was rolled back by SQLite. Any other exception is a bug: it is logged
the same way with its traceback and the feed goes on.

An ``interval`` of 0 turns the server's ingest off entirely (no worker is started); the
``callserver cdr`` commands still ingest before they read.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.connection
import os
import signal
import sqlite3
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import structlog

from callserver.cdr.store import CdrStore, IngestResult, log_ingested
from callserver.process.logs import configure_logging

__all__ = ["CdrIngester", "IngesterStatistics", "worker_pool"]

log = structlog.get_logger("callserver.cdr")

SPOOL_DIR = "cdr"
DATABASE = "cdr.sqlite"
_WORKER_NICE = 10  # a nice-10 process gets about a tenth of a core the server also wants


@dataclass(frozen=True, slots=True, kw_only=True)
class IngesterStatistics:
    """Counters since the ingester was created: runs tried, runs failed, and their results."""

    runs: int
    failures: int
    inserted: int
    duplicates: int
    malformed: int


class CdrIngester:
    """Feeds ``<data_dir>/cdr`` into ``<data_dir>/cdr.sqlite`` while the server runs.

    Args:
        data_dir: The server's data directory (``Settings.data_dir``).
        interval: Seconds between runs (``cdr.ingest_interval``); 0 disables every run.
        log_level, log_format: The server's logging (``Settings.log_level``,
            ``Settings.log_format``), which the worker process sets up the same way.

    Raises:
        ValueError: for a negative ``interval``.
    """

    def __init__(
        self, data_dir: Path, interval: float, *, log_level: str = "info", log_format: str = "auto"
    ) -> None:
        if interval < 0:
            raise ValueError("the ingest interval must not be negative")
        self.spool_dir = Path(data_dir) / SPOOL_DIR
        self.database = Path(data_dir) / DATABASE
        self._interval = interval
        self._logging = (log_level, log_format)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._worker: ProcessPoolExecutor | None = None
        self._runs = self._failures = 0
        self._total = IngestResult()
        self.worker_pid: int | None = None  # the process of the last run that succeeded
        self.last_success: float | None = None  # the loop's time when that run ended

    def start(self) -> None:
        """Start the periodic task: a first run at once, then one every ``interval``.

        Call it after the spool's start-up recovery; a second call does nothing.
        """
        if self._task is None and self._interval > 0:
            self._stopping.clear()
            self._task = asyncio.create_task(self._periodic(), name="cdr-ingester")

    async def close(self) -> None:
        """Stop the periodic task, run the last ingest, then stop the worker process; call it
        after the spool closed.

        The run in progress, if any, finishes first. Without ``start`` no last run happens.
        """
        task, self._task = self._task, None
        if task is not None:
            self._stopping.set()
            await asyncio.wait([task])
            await self.ingest()
        worker, self._worker = self._worker, None
        if worker is not None:
            await asyncio.to_thread(worker.shutdown)  # joins the process: a few ms

    async def ingest(self) -> IngestResult | None:
        """One run in the worker process; its result, or None if it failed (logged, counted)."""
        self._runs += 1
        try:
            pid, result = await self._in_worker()
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, traceback=False)
            return None
        except BrokenProcessPool as exc:  # the worker died: the next run starts another
            self._failed(exc, traceback=False)
            self._discard_worker()
            return None
        except Exception as exc:  # a bug: the feed must outlive it, and the server too
            self._failed(exc, traceback=True)
            return None
        self.worker_pid = pid
        self.last_success = asyncio.get_running_loop().time()
        self._total += result
        log_ingested(result)
        return result

    def statistics(self) -> IngesterStatistics:
        """A snapshot of the counters."""
        return IngesterStatistics(
            runs=self._runs,
            failures=self._failures,
            inserted=self._total.inserted,
            duplicates=self._total.duplicates,
            malformed=self._total.malformed,
        )

    async def _in_worker(self) -> tuple[int, IngestResult]:
        if self._worker is None:
            self._worker = worker_pool(*self._logging)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._worker, _ingest, self.spool_dir, self.database)

    def _discard_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=False)

    async def _periodic(self) -> None:
        await self.ingest()
        while not await self._wait_stopping():
            await self.ingest()

    async def _wait_stopping(self) -> bool:
        """Wait one interval; True if ``close`` asked to stop meanwhile."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._interval):
                await self._stopping.wait()
        return self._stopping.is_set()

    def _failed(self, exc: Exception, *, traceback: bool) -> None:
        self._failures += 1
        log.error(
            "cdr.ingest_failed",
            error=str(exc) or type(exc).__name__,
            error_type=type(exc).__name__,
            database=str(self.database),
            failures=self._failures,
            exc_info=traceback,
        )


def worker_pool(log_level: str, log_format: str) -> ProcessPoolExecutor:
    """A worker process as the ingester's (see the module docstring): started with 'spawn'
    at its first job, niced, logging as the server, gone when the server is (the feeder of
    the central store, ``cdr.feeder``, parses in one too)."""
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_worker_started,
        initargs=(log_level, log_format),
    )


def _worker_started(log_level: str, log_format: str) -> None:
    """The worker process's set-up: the server's logging, a lower priority, no reaction to the
    signals a terminal sends the whole process group (the server stops the worker), and an
    exit of its own when the server is gone."""
    configure_logging(log_level, log_format)
    os.nice(_WORKER_NICE)
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    """Exit once ``sentinel`` (the server's end of a pipe) closes: a server killed with
    SIGKILL never shuts the worker down, and nothing else would end it. A run cut short here
    is rolled back by SQLite."""
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ingest(spool_dir: Path, database: Path) -> tuple[int, IngestResult]:
    """One ingest with a connection of its own (runs in the worker process): its pid, result."""
    with CdrStore(database) as store:
        return os.getpid(), store.ingest(spool_dir, report=False)
