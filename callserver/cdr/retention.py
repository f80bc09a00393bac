"""Call recordings on disk and their retention: which are kept, which have expired, the purge.

Theory of operation
-------------------
A call's recording is ``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav``, the date the
recording started (UTC); ``<uuid>`` is the call's CDR ``uuid``. A recording is kept for its
customer's ``recording_retention_days`` (``retention``, a function of the customer's name so
that this layer needs no configuration; ``DEFAULT_RETENTION_DAYS`` for a customer the
configuration does not know): one made on day D has expired from day D + days + 1 on, so a
recording kept 90 days is still there all of its 90th day after the call.

The purge walks the day folders (``scan``), oldest first, deletes each expired file and notes
it in the CDR store's ``recording_purge`` table (``CdrStore.note_purged``: the path, the
customer, when), then removes the day folders it emptied. Files whose name does not fit the
layout are left alone, and so is a file being written (``.<name>.part``). ``now`` is passed in:
the server's scheduled purge and ``callserver recordings purge`` read the clock, tests do not.
Every call here blocks on the disk: the server runs it off the loop (``RetentionTask``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "PurgeResult",
    "StoredRecording",
    "day_folders",
    "expired",
    "purge_day",
    "recordings_dir",
    "remove_empty",
    "scan",
]

DEFAULT_RETENTION_DAYS = 90
_DAY_PARTS = (re.compile(r"\d{4}"), re.compile(r"\d{2}"), re.compile(r"\d{2}"))


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredRecording:
    """One published recording: its file, its path under the data dir, whose, of which day."""

    path: Path
    relative: str
    customer: str
    day: date
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PurgeResult:
    """What a purge deleted (or, dry, would delete) and the bytes that freed."""

    deleted: tuple[StoredRecording, ...] = ()

    @property
    def bytes(self) -> int:
        """The size of the deleted files."""
        return sum(recording.size for recording in self.deleted)

    def __add__(self, other: PurgeResult) -> PurgeResult:
        return PurgeResult(deleted=self.deleted + other.deleted)


def recordings_dir(data_dir: Path) -> Path:
    """``<data_dir>/recordings``."""
    return data_dir / "recordings"


def day_folders(data_dir: Path) -> list[tuple[str, date, Path]]:
    """Every ``<customer>/YYYY/MM/DD`` folder as (customer, day, folder), oldest day first."""
    root = recordings_dir(data_dir)
    found: list[tuple[str, date, Path]] = []
    for customer in _children(root):
        for year in _children(customer, _DAY_PARTS[0]):
            for month in _children(year, _DAY_PARTS[1]):
                for day in _children(month, _DAY_PARTS[2]):
                    with contextlib.suppress(ValueError):
                        when = date(int(year.name), int(month.name), int(day.name))
                        found.append((customer.name, when, day))
    found.sort(key=lambda item: (item[1], item[0]))
    return found


def scan(data_dir: Path) -> Iterator[StoredRecording]:
    """Every published recording under ``data_dir``, oldest day first."""
    for customer, day, folder in day_folders(data_dir):
        yield from _recordings_in(data_dir, customer, day, folder)


def expired(day: date, retention_days: int, now: datetime) -> bool:
    """True when a recording of ``day`` is past ``retention_days`` at ``now`` (UTC)."""
    return now.astimezone(UTC).date() > day + timedelta(days=retention_days)


def purge_day(
    data_dir: Path,
    folder: tuple[str, date, Path],
    retention: Callable[[str], int],
    now: datetime,
    *,
    dry_run: bool = False,
) -> PurgeResult:
    """Delete the expired recordings of one day folder (``day_folders``); with ``dry_run``
    only say which. The emptied folders up to the customer's are removed.

    Raises:
        OSError: a file could not be deleted (those deleted before it stay deleted).
    """
    customer, day, path = folder
    if not expired(day, retention(customer), now):
        return PurgeResult()
    doomed = tuple(_recordings_in(data_dir, customer, day, path))
    if not dry_run:
        for recording in doomed:
            recording.path.unlink(missing_ok=True)
        remove_empty(path, recordings_dir(data_dir) / customer)
    return PurgeResult(deleted=doomed)


def _recordings_in(
    data_dir: Path, customer: str, day: date, folder: Path
) -> Iterator[StoredRecording]:
    for path in sorted(folder.glob("*.wav")):
        if path.name.startswith("."):
            continue  # a recording still being written (.<name>.part) or not ours
        with contextlib.suppress(FileNotFoundError):
            size = path.stat().st_size
            relative = str(path.relative_to(data_dir))
            yield StoredRecording(
                path=path, relative=relative, customer=customer, day=day, size=size
            )


def _children(folder: Path, pattern: re.Pattern[str] | None = None) -> list[Path]:
    try:
        entries = sorted(folder.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [
        entry
        for entry in entries
        if entry.is_dir() and (pattern is None or pattern.fullmatch(entry.name))
    ]


def remove_empty(folder: Path, stop: Path) -> None:
    """Remove ``folder`` and its parents below ``stop`` while they are empty."""
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): the folders above are not empty either
            return
        folder = folder.parent
