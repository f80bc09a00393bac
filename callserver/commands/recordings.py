"""``callserver recordings list|export|purge``: the call recordings under the data directory.

``select`` (``cdr.recording_files``) picks the recordings of a customer (``--customer``) made
on days in ``[--since, --until)`` (the day folder each is in: the day it started, UTC).
``list`` writes one line a recording: its day, customer, CDR uuid, seconds and path (relative
to the data dir). ``export`` copies them into a folder, keeping their ``<customer>/YYYY/MM/DD``
layout, or into a tar file (``.tar``, ``.tar.gz``, ``.tgz``), with ``index.csv`` beside them:
one row a recording (path, customer, day, uuid, seconds, bytes), so that the CDRs (``uuid``)
find their files. ``purge`` runs the retention purge now (``cdr.purging.purge``);
``--dry-run`` only lists what would be deleted.
"""

from __future__ import annotations

import csv
import io
import shutil
import tarfile
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from callserver.cdr.purging import purge
from callserver.cdr.recording_files import seconds, select
from callserver.cdr.retention import StoredRecording

__all__ = ["export_recordings", "list_recordings", "purge_recordings", "select"]

INDEX = "index.csv"
_INDEX_COLUMNS = ("path", "customer", "day", "uuid", "seconds", "bytes")
_TAR_SUFFIXES = (".tar", ".gz", ".tgz")


def list_recordings(recordings: Iterable[StoredRecording], out: TextIO) -> int:
    """Write one line a recording; return how many."""
    count = 0
    for recording in recordings:
        uuid = recording.path.stem
        out.write(
            f"{recording.day}  {recording.customer}  {uuid}  {seconds(recording):8.1f} s  "
            f"{recording.relative}\n"
        )
        count += 1
    return count


def export_recordings(recordings: list[StoredRecording], to: Path) -> int:
    """Copy ``recordings`` with their ``index.csv`` into folder ``to``, or into the tar file
    ``to`` (by its suffix); return how many.

    Raises:
        OSError: a file could not be read or written. ValueError: ``to`` exists and is a file
            (a folder export) or a tar file's name is taken.
    """
    index = _index(recordings)
    if to.suffix in _TAR_SUFFIXES:
        _tar(recordings, index, to)
    else:
        _copy(recordings, index, to)
    return len(recordings)


def purge_recordings(
    data_dir: Path,
    retention: Callable[[str], int],
    now: datetime,
    out: TextIO,
    *,
    dry_run: bool = False,
) -> int:
    """Run the retention purge now; write each file deleted (or, dry, to delete) and a total.

    Raises:
        OSError: a file could not be deleted. sqlite3.Error: the purge could not be noted.
    """
    result = purge(data_dir, retention, now, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    for recording in result.deleted:
        out.write(f"{verb} {recording.relative}\n")
    out.write(f"{verb} {len(result.deleted)} recording(s), {result.bytes} bytes\n")
    return len(result.deleted)


def _index(recordings: list[StoredRecording]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_INDEX_COLUMNS)
    for r in recordings:
        row = (r.relative, r.customer, r.day, r.path.stem, f"{seconds(r):.3f}", r.size)
        writer.writerow(row)
    return out.getvalue().encode()


def _inside(recording: StoredRecording) -> str:
    """A recording's name inside an export: its path below ``recordings/``."""
    return recording.relative.removeprefix("recordings/")


def _copy(recordings: list[StoredRecording], index: bytes, to: Path) -> None:
    if to.exists() and not to.is_dir():
        raise ValueError(f"{to} is a file: export into a folder, or name a .tar/.tar.gz file")
    for recording in recordings:
        target = to / _inside(recording)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(recording.path, target)
    to.mkdir(parents=True, exist_ok=True)
    (to / INDEX).write_bytes(index)


def _tar(recordings: list[StoredRecording], index: bytes, to: Path) -> None:
    if to.exists():
        raise ValueError(f"{to} exists: name a new tar file")
    with tarfile.open(to, "w" if to.suffix == ".tar" else "w:gz") as tar:
        info = tarfile.TarInfo(INDEX)
        info.size = len(index)
        tar.addfile(info, io.BytesIO(index))
        for recording in recordings:
            tar.add(recording.path, arcname=_inside(recording))
