"""The retention purge of call recordings, run now (``purge``) or on a schedule in the server.

``purge`` is the whole purge, blocking (``callserver recordings purge``): every day folder in
turn (``retention.purge_day``), then the deleted files noted in ``cdr.sqlite``
(``CdrStore.note_purged``). ``RetentionTask`` is the running server's: one purge shortly after
start-up and then every ``interval`` seconds, each day folder's work in a thread (deleting
files and writing SQLite block on the disk, never the loop) and the folders paced
(``process.pacing.paced``) so that a first purge of a large archive takes only the loop's
spare share, however many folders it has. The database is opened only when a purge deleted
something, and closed again at once. A failure (``OSError``, ``sqlite3.Error``) is logged as
``recording.purge_failed`` and the next run tries again; files already deleted stay deleted
and are noted by the run that deleted them whenever the database lets it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import structlog

from callserver.cdr.retention import PurgeResult, day_folders, purge_day
from callserver.cdr.store import CdrStore
from callserver.process.pacing import BACKGROUND_SHARE, paced

__all__ = ["RetentionTask", "note", "purge"]

log = structlog.get_logger("callserver.cdr")

PURGE_INTERVAL = 3600.0
_FIRST_DELAY = 60.0  # after start-up, once the server has settled


def purge(
    data_dir: Path, retention: Callable[[str], int], now: datetime, *, dry_run: bool = False
) -> PurgeResult:
    """Delete every expired recording under ``data_dir`` (``dry_run``: only list them) and
    note the deleted ones in ``cdr.sqlite``; blocking.

    Raises:
        OSError: a file could not be deleted. sqlite3.Error: the database failed.
    """
    result = PurgeResult()
    for folder in day_folders(data_dir):
        result += purge_day(data_dir, folder, retention, now, dry_run=dry_run)
    if not dry_run:
        note(data_dir, result, now)
    return result


def note(data_dir: Path, result: PurgeResult, now: datetime) -> None:
    """Note ``result``'s deleted recordings in ``data_dir/cdr.sqlite`` (nothing: no-op)."""
    if result.deleted:
        with CdrStore(data_dir / "cdr.sqlite") as store:
            store.note_purged(result.deleted, now)


class RetentionTask:
    """The server's scheduled purge; see the module docstring.

    Args:
        data_dir: Where the recordings and ``cdr.sqlite`` are.
        retention: The retention days of the configuration in force, by customer.
        clock: The wall clock (UTC, aware); tests pass a fake one.
        share: The loop's share the purge may take (``pacing.spare_share``).
    """

    def __init__(
        self,
        data_dir: Path,
        retention: Callable[[str], int],
        *,
        interval: float = PURGE_INTERVAL,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        share: Callable[[], float] = lambda: BACKGROUND_SHARE,
    ) -> None:
        self.data_dir = data_dir
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self.share = share
        self.failures = 0

    async def run(self, first_delay: float = _FIRST_DELAY) -> None:
        """Purge after ``first_delay`` s, then every ``interval`` s, until cancelled."""
        await asyncio.sleep(first_delay)
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval)

    async def run_once(self) -> PurgeResult:
        """One purge, paced, off the loop; logged as ``recording.purged`` when it deleted."""
        now = self.clock()
        result = PurgeResult()
        try:
            folders = await asyncio.to_thread(day_folders, self.data_dir)
            async for folder in paced(folders, self.share):
                result += await asyncio.to_thread(
                    purge_day, self.data_dir, folder, self.retention, now
                )
        except OSError as exc:
            self._failed(exc)
        try:
            await asyncio.to_thread(note, self.data_dir, result, now)
        except (OSError, sqlite3.Error) as exc:
            self._failed(exc)
        if result.deleted:
            log.info("recording.purged", files=len(result.deleted), bytes=result.bytes)
        return result

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        log.error("recording.purge_failed", error=str(exc))
