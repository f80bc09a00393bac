"""The running server's feed of the CDR spool into SQLite: a periodic ingest off the event loop.

Theory of operation
-------------------
The spool's day files are the record of truth and ``cdr.sqlite`` an index over them
(``callserver.cdr.store``). ``CdrIngester`` keeps that index current while the server runs:
one ingest right after start-up recovery (so the ABORTED records of a crash are queryable at
once), one every ``interval`` seconds, and a last one at close, after the spool has written
and closed everything. Each run is ``CdrStore.ingest`` in a worker thread
(``asyncio.to_thread``): the event loop never waits for SQLite or the disk. A run opens its
own ``CdrStore`` and closes it before it returns, so the connection lives and dies in the one
thread that uses it (SQLite connections are bound to their thread) and no file stays open
between runs.

Runs never overlap: the periodic task runs them one after another, and ``close`` lets the run
in progress finish before the last one starts. A second process ingesting at the same time
(``callserver cdr export``) is serialised by SQLite's write lock; the offset checkpoint is
read and advanced inside that lock, so nothing is lost or counted twice whoever runs first.

Failures. A run that fails (``sqlite3.Error``, ``OSError``: a locked or corrupt database, a
full disk, an unreadable spool) is logged as ``cdr.ingest_failed`` at error level with the
error, and counted; nothing is raised into the server, and the next run retries from the
stored offset, so a failed run loses nothing. Any other exception is a bug: it is logged the
same way with its traceback and the feed goes on. ``CdrStore.ingest`` logs ``cdr.ingested``
with the counts when a run added records (or skipped malformed lines), and nothing otherwise.

An ``interval`` of 0 turns the server's ingest off entirely; the ``callserver cdr`` commands
still ingest before they read.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import structlog

from callserver.cdr.store import CdrStore, IngestResult

__all__ = ["CdrIngester", "IngesterStatistics"]

log = structlog.get_logger("callserver.cdr")

SPOOL_DIR = "cdr"
DATABASE = "cdr.sqlite"


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

    Raises:
        ValueError: for a negative ``interval``.
    """

    def __init__(self, data_dir: Path, interval: float) -> None:
        if interval < 0:
            raise ValueError("the ingest interval must not be negative")
        self.spool_dir = Path(data_dir) / SPOOL_DIR
        self.database = Path(data_dir) / DATABASE
        self._interval = interval
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._runs = self._failures = 0
        self._total = IngestResult()

    def start(self) -> None:
        """Start the periodic task: a first run at once, then one every ``interval``.

        Call it after the spool's start-up recovery; a second call does nothing.
        """
        if self._task is None and self._interval > 0:
            self._stopping.clear()
            self._task = asyncio.create_task(self._periodic(), name="cdr-ingester")

    async def close(self) -> None:
        """Stop the periodic task, then run the last ingest; call it after the spool closed.

        The run in progress, if any, finishes first. Does nothing if not started.
        """
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping.set()
        await asyncio.wait([task])
        await self.ingest()

    async def ingest(self) -> IngestResult | None:
        """One run in a worker thread; its result, or None if it failed (logged and counted)."""
        self._runs += 1
        try:
            result = await asyncio.to_thread(_ingest, self.spool_dir, self.database)
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, traceback=False)
            return None
        except Exception as exc:  # a bug: the feed must outlive it, and the server too
            self._failed(exc, traceback=True)
            return None
        self._total += result
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


def _ingest(spool_dir: Path, database: Path) -> IngestResult:
    """One ingest with a connection of its own (runs in the worker thread)."""
    with CdrStore(database) as store:
        return store.ingest(spool_dir)
