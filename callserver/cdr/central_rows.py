"""The central store's rows made from spool lines, in the feeder's worker process.

Theory of operation
-------------------
``read_chunk`` runs in the feeder's worker process (``cdr.feeder``; the process is the
ingester's kind, ``cdr.ingester.worker_pool``). It reads up to ``limit`` bytes of complete
lines of a spool file from an offset (``CdrStore``'s ``read_lines``: a line still being
written waits, a rewritten file is read again from 0) and makes each line's row: a day file's
line goes through ``CdrRecord.from_json``, as ``CdrStore.ingest`` takes it, so PostgreSQL
holds exactly the records ``cdr.sqlite`` holds and both read back through the same code; a
``marks.jsonl`` line through ``parse_mark``. A line that is neither has no row and says why.

What comes back to the loop is small and cheap to unpickle (under a microsecond a row): the
offset read from, each line's length, its row (the columns of ``cdr.central``'s tables in
``INSERT_RECORDS``'s order, the spooled line itself as ``record``) and the errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callserver.cdr.marks import MARKS_FILE, parse_mark
from callserver.cdr.record import CdrRecord
from callserver.cdr.store import read_lines

__all__ = ["Chunk", "Row", "SpoolReadError", "read_chunk"]

Row = tuple[object, ...]


class SpoolReadError(Exception):
    """A spool file or the spool directory could not be read (not PostgreSQL's fault)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """Lines of one file from ``start``: each line's ``lengths`` (its newline included) and
    ``rows`` (None: no record), and ``errors`` by the line's index."""

    start: int
    lengths: list[int]
    rows: list[Row | None]
    errors: dict[int, str]


def read_chunk(path: Path, offset: int, limit: int) -> Chunk:
    """The complete lines of ``path`` from ``offset`` (up to ``limit`` bytes) and their rows;
    none when the file is gone.

    Raises:
        SpoolReadError: the file cannot be read.
    """
    try:
        data, start = read_lines(path, offset, limit)
    except FileNotFoundError:
        return Chunk(offset, [], [], {})
    except OSError as exc:
        raise SpoolReadError(f"{path}: {exc.strerror or exc}") from None
    row_of = _mark_row if path.name == MARKS_FILE else _record_row
    lines = data.split(b"\n")[:-1]
    rows: list[Row | None] = []
    errors: dict[int, str] = {}
    for index, line in enumerate(lines):
        try:
            rows.append(row_of(line))
        except ValueError as exc:
            rows.append(None)
            errors[index] = str(exc)
    return Chunk(start, [len(line) + 1 for line in lines], rows, errors)


def _record_row(line: bytes) -> Row:
    """A day file line's row: ``CdrStore``'s columns, the line itself as ``record``."""
    r = CdrRecord.from_json(line)
    return (
        *(r.uuid, r.call_id, r.linked_id, r.leg, r.status, r.trunk, r.customer),
        *(r.called_e164 or r.called_raw, r.start_stamp, r.end_stamp, r.billsec),
        *(r.disposition.value, line.decode()),
    )


def _mark_row(line: bytes) -> Row:
    mark = parse_mark(line)
    return (mark.call_id, mark.malicious)
