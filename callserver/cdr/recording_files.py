"""The call recordings a query picks, one found by its id, one deleted on request.

``select`` picks the recordings of a customer made on days in ``[since, until)`` (the day
folder each is in: the day it started, UTC), as ``callserver recordings list|export`` and the
admin API list them. A recording's id is its file's stem, the ``uuid`` of its call's CDR;
``find`` looks it up among the published recordings (``retention.scan``), so an id is only ever
compared with the names found on disk and never becomes part of a path.

``delete`` deletes one recording as the retention purge deletes an expired one: the file, then
the day folders it emptied, then a note in ``cdr.sqlite``'s ``recording_purge`` table
(``purging.note``), so the CDR's ``recording_path`` names a file known to be gone on purpose.
Everything here blocks on the disk: the server runs it off the loop.
"""

from __future__ import annotations

import contextlib
import wave
from datetime import date, datetime
from pathlib import Path

from callserver.cdr.export import parse_time
from callserver.cdr.purging import note
from callserver.cdr.retention import (
    PurgeResult,
    StoredRecording,
    recordings_dir,
    remove_empty,
    scan,
)

__all__ = ["delete", "find", "seconds", "select"]


def select(
    data_dir: Path,
    *,
    customer: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> list[StoredRecording]:
    """The recordings of ``customer`` (None: every one) made on days in [since, until).

    Raises:
        ValueError: ``since`` or ``until`` is not an ISO 8601 date or time.
    """
    first = _day(since)
    last = _day(until)
    return [
        recording
        for recording in scan(data_dir)
        if (customer is None or recording.customer == customer)
        and (first is None or recording.day >= first)
        and (last is None or recording.day < last)
    ]


def find(data_dir: Path, uuid: str, *, customer: str | None = None) -> StoredRecording | None:
    """The published recording whose id (file stem) is ``uuid``, of ``customer`` (None: any)."""
    for recording in select(data_dir, customer=customer):
        if recording.path.stem == uuid:
            return recording
    return None


def seconds(recording: StoredRecording) -> float:
    """The length of ``recording``'s audio (0.0 when its WAV header cannot be read)."""
    with (
        contextlib.suppress(OSError, wave.Error, EOFError),
        wave.open(str(recording.path), "rb") as wav,
    ):
        return wav.getnframes() / wav.getframerate()
    return 0.0


def delete(data_dir: Path, recording: StoredRecording, now: datetime) -> None:
    """Delete ``recording``, the folders it emptied, and note it purged at ``now``.

    Raises:
        OSError: the file could not be deleted. sqlite3.Error: it could not be noted.
    """
    recording.path.unlink(missing_ok=True)
    remove_empty(recording.path.parent, recordings_dir(data_dir) / recording.customer)
    note(data_dir, PurgeResult(deleted=(recording,)), now)


def _day(text: str | None) -> date | None:
    return None if text is None else parse_time(text).date()
