"""The queryable CDR store: SQLite in WAL mode, fed from the spool with a byte-offset checkpoint.

Theory of operation
-------------------
The spool's day files are the source of truth; ``cdr.sqlite`` is an index over them that can
always be rebuilt. ``ingest`` reads each ``YYYY-MM-DD.jsonl`` from the offset stored for it in
``ingest_checkpoint``, takes only complete lines (a line still being written has no newline
yet), inserts the records and stores the new offset **in the same transaction** (``BEGIN
IMMEDIATE`` ... ``COMMIT``). A crash before the commit rolls both back and the next ingest
reads the same lines again; a crash after it finds them done. So nothing is lost and nothing
is counted twice. ``UNIQUE(uuid)`` with ``INSERT OR IGNORE`` is the second guard: a lost or
reset checkpoint re-reads files without duplicating a record. The checkpoint is read inside
the write transaction, so two processes ingesting at once are serialised by SQLite's lock.

``synchronous=NORMAL`` is enough in WAL mode here: a power loss may undo the last
transactions, rows and checkpoint together, and the next ingest redoes them from the spool.

A line that is not a valid record (a torn line after a failed write) is skipped, counted and
logged as ``cdr.ingest_malformed``; the offset moves past it so one bad line never stalls the
feed. A file shorter than its checkpoint, or whose checkpoint is not just after a newline, was
rewritten under us: it is read again from the start (``UNIQUE(uuid)`` keeps that exact).

``recording_purge`` notes each call recording the retention purge deleted (``cdr.retention``),
or that was deleted on request (``cdr.recording_files.delete``, the admin API):
its path, customer, day and size, and when; a CDR's ``recording_path`` found there names a file
that is gone on purpose.

``marks.jsonl`` beside the day files holds marks made after a call ended (MCID,
``cdr.marks``): it is ingested the same way into ``cdr_mark``, and ``records`` gives every leg
of a marked call its ``malicious`` stamp.

Queries select on ``start_stamp`` (the call date, as Asterisk's ``calldate``), ``since``
inclusive and ``until`` exclusive, and ``records`` and ``count`` on a ``CdrFilter`` too
(``cdr.selection``: customer, disposition, a caller or called number). ASR is answered
calls over all calls in percent and ACD the mean billsec of answered calls (ASR as in ITU-T
E.411); each record is one leg, so a forwarded call counts once per leg, each on its own trunk.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog

from callserver.cdr.journal import is_day_file
from callserver.cdr.marks import MARKS_FILE, parse_mark
from callserver.cdr.record import CdrRecord, utc_stamp
from callserver.cdr.retention import StoredRecording
from callserver.cdr.selection import CdrFilter, LegRow
from callserver.process.sqlite import open_database, transaction

__all__ = ["CdrStats", "CdrStore", "GroupStats", "IngestResult", "log_ingested", "read_lines"]

log = structlog.get_logger("callserver.cdr")

_CHUNK = 4 * 1024 * 1024  # bytes read (and committed) per transaction
_SCHEMA = """
CREATE TABLE IF NOT EXISTS cdr (
    id INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    call_id TEXT NOT NULL,
    linked_id TEXT NOT NULL,
    leg TEXT NOT NULL,
    status TEXT NOT NULL,
    trunk TEXT,
    customer TEXT,
    called TEXT,
    start_stamp TEXT NOT NULL,
    end_stamp TEXT NOT NULL,
    billsec INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cdr_start ON cdr (start_stamp);
CREATE INDEX IF NOT EXISTS cdr_linked ON cdr (linked_id);
CREATE TABLE IF NOT EXISTS cdr_mark (
    call_id TEXT PRIMARY KEY,
    malicious TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recording_purge (
    path TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    day TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    purged_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_checkpoint (
    file TEXT PRIMARY KEY,
    offset INTEGER NOT NULL
);
"""
_INSERT = (
    "INSERT OR IGNORE INTO cdr (uuid, call_id, linked_id, leg, status, trunk, customer, called,"
    " start_stamp, end_stamp, billsec, disposition, record)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_GROUP = (
    "SELECT {key}, COUNT(*), SUM(disposition = 'ANSWERED'),"
    " SUM(CASE WHEN disposition = 'ANSWERED' THEN billsec ELSE 0 END)"
    " FROM cdr WHERE start_stamp >= ? AND start_stamp < ? GROUP BY 1 ORDER BY 2 DESC, 1"
)
_FAR_PAST, _FAR_FUTURE = "0000", "9999"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestResult:
    """What one ``ingest`` did: records added, duplicates ignored, malformed lines skipped."""

    inserted: int = 0
    duplicates: int = 0
    malformed: int = 0

    def __add__(self, other: IngestResult) -> IngestResult:
        return IngestResult(
            inserted=self.inserted + other.inserted,
            duplicates=self.duplicates + other.duplicates,
            malformed=self.malformed + other.malformed,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupStats:
    """Calls, answered calls and answered seconds of one group (a trunk, a number, or all)."""

    key: str
    calls: int
    answered: int
    billsec: int

    @property
    def asr(self) -> float:
        """Answer-seizure ratio in percent (ITU-T E.411); 0.0 without calls."""
        return 100.0 * self.answered / self.calls if self.calls else 0.0

    @property
    def acd(self) -> float:
        """Average call duration: mean billsec of the answered calls; 0.0 without any."""
        return self.billsec / self.answered if self.answered else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrStats:
    """Totals and the breakdowns per trunk and per called number (busiest first)."""

    total: GroupStats
    per_trunk: tuple[GroupStats, ...]
    per_called: tuple[GroupStats, ...]


class CdrStore:
    """The CDR database at ``path`` (normally ``<data_dir>/cdr.sqlite``), created if missing.

    Raises:
        sqlite3.Error: if the database cannot be opened or is not ours.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = open_database(path, _SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> CdrStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ingest(self, spool_dir: Path, *, report: bool = True) -> IngestResult:
        """Add the records written to the spool's day files since the last ingest.

        With ``report`` the counts are logged (``log_ingested``); the server's ingester logs
        them itself, in its own process.

        Raises:
            OSError: if a day file cannot be read (nothing of it is committed).
            sqlite3.Error: if the database fails (the transaction is rolled back).
        """
        total = IngestResult()
        if not spool_dir.is_dir():
            return total
        for path in sorted(spool_dir.iterdir()):
            if is_day_file(path.name) or path.name == MARKS_FILE:
                while (chunk := self._ingest_chunk(path)) is not None:
                    total += chunk
        if report:
            log_ingested(total)
        return total

    def note_purged(self, recordings: Iterable[StoredRecording], at: datetime) -> None:
        """Note the recordings a retention purge deleted, at ``at`` (``cdr.retention``).

        Raises:
            sqlite3.Error: if the database fails (nothing is noted).
        """
        stamp = utc_stamp(at)
        rows = [(r.relative, r.customer, r.day.isoformat(), r.size, stamp) for r in recordings]
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO recording_purge VALUES (?, ?, ?, ?, ?)", rows
            )

    def purged(self) -> dict[str, str]:
        """Every purged recording's path (relative to the data dir) and when it was purged."""
        rows = self._db.execute("SELECT path, purged_at FROM recording_purge ORDER BY path")
        return dict(rows.fetchall())

    def checkpoint(self, name: str) -> int:
        """The byte offset up to which day file ``name`` has been ingested."""
        row = self._db.execute(
            "SELECT offset FROM ingest_checkpoint WHERE file = ?", (name,)
        ).fetchone()
        return int(row[0]) if row else 0

    def records(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> Iterator[CdrRecord]:
        """The records that started in ``[since, until)``, by start time then ingest order;
        with ``where`` only those it picks, with ``limit`` that many from ``offset``."""
        clause, params = _where(since, until, where)
        page = "" if limit is None else f" LIMIT {int(limit)} OFFSET {int(offset)}"
        rows = self._db.execute(
            "SELECT record, (SELECT MIN(malicious) FROM cdr_mark"
            " WHERE cdr_mark.call_id IN (cdr.call_id, cdr.linked_id))"
            f" FROM cdr WHERE {clause} ORDER BY start_stamp, id{page}",
            params,
        )
        for line, malicious in rows:
            record = CdrRecord.from_json(line)
            yield record if malicious is None else replace(record, malicious=malicious)

    def count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> int:
        """How many records ``records`` gives for the same arguments (without a limit)."""
        clause, params = _where(since, until, where)
        return int(
            self._db.execute(f"SELECT COUNT(*) FROM cdr WHERE {clause}", params).fetchone()[0]
        )

    def legs(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        *,
        where: CdrFilter | None = None,
    ) -> Iterator[LegRow]:
        """What ``cdr.selection.customer_totals`` adds up of each record ``records`` gives
        (customer, disposition, billsec, currency, the charges' JSON), no record decoded."""
        clause, params = _where(since, until, where)
        yield from self._db.execute(
            "SELECT customer, disposition, billsec, json_extract(record, '$.currency'),"
            f" json_extract(record, '$.charges') FROM cdr WHERE {clause}",
            params,
        )

    def calls_of(self, uuids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """The Call-ID and start stamp of each record of ``uuids`` in the store (a call
        recording's file is named by its CDR's uuid)."""
        wanted, found = list(uuids), {}
        for at in range(0, len(wanted), 500):  # SQLite's bound parameters: a few hundred a go
            part = wanted[at : at + 500]
            marks = ", ".join("?" * len(part))
            rows = self._db.execute(
                f"SELECT uuid, call_id, start_stamp FROM cdr WHERE uuid IN ({marks})", part
            )
            found.update({uuid: (call_id, start) for uuid, call_id, start in rows})
        return found

    def stats(self, since: datetime | None = None, until: datetime | None = None) -> CdrStats:
        """Calls, answered, ASR and ACD in ``[since, until)``: in all, per trunk, per number."""
        bounds = _bounds(since, until)
        total = self._groups("'all'", bounds)
        return CdrStats(
            total=total[0] if total else GroupStats(key="all", calls=0, answered=0, billsec=0),
            per_trunk=tuple(self._groups("COALESCE(trunk, '')", bounds)),
            per_called=tuple(self._groups("COALESCE(called, '')", bounds)),
        )

    def _groups(self, key: str, bounds: tuple[str, str]) -> list[GroupStats]:
        rows = self._db.execute(_GROUP.format(key=key), bounds).fetchall()
        return [GroupStats(key=k, calls=n, answered=a or 0, billsec=s or 0) for k, n, a, s in rows]

    def _ingest_chunk(self, path: Path) -> IngestResult | None:
        """Ingest the next chunk of complete lines of ``path`` in one transaction, if any."""
        with transaction(self._db):  # nothing read: a transaction that wrote nothing
            offset = self.checkpoint(path.name)
            data, offset = read_lines(path, offset)
            if not data:
                return None
            insert = self._insert_marks if path.name == MARKS_FILE else self._insert
            result = insert(data, path.name, offset)
            self._advance(path.name, offset + len(data))
        return result

    def _insert(self, data: bytes, name: str, offset: int) -> IngestResult:
        rows, malformed = [], 0
        for line in data.splitlines():
            try:
                record = CdrRecord.from_json(line)
            except ValueError as exc:
                malformed += 1
                log.warning("cdr.ingest_malformed", file=name, offset=offset, error=str(exc))
            else:
                rows.append(_row(record))
            offset += len(line) + 1
        before = self._db.total_changes
        self._db.executemany(_INSERT, rows)
        inserted = self._db.total_changes - before
        return IngestResult(inserted=inserted, duplicates=len(rows) - inserted, malformed=malformed)

    def _insert_marks(self, data: bytes, name: str, offset: int) -> IngestResult:
        """Marks (``cdr.marks``): the first of a call is kept; a bad line is skipped."""
        rows, malformed = [], 0
        for line in data.splitlines():
            try:
                mark = parse_mark(line)
            except ValueError as exc:
                malformed += 1
                log.warning("cdr.ingest_malformed", file=name, offset=offset, error=str(exc))
            else:
                rows.append((mark.call_id, mark.malicious))
            offset += len(line) + 1
        self._db.executemany("INSERT OR IGNORE INTO cdr_mark VALUES (?, ?)", rows)
        return IngestResult(malformed=malformed)

    def _advance(self, name: str, offset: int) -> None:
        self._db.execute(
            "INSERT INTO ingest_checkpoint (file, offset) VALUES (?, ?)"
            " ON CONFLICT (file) DO UPDATE SET offset = excluded.offset",
            (name, offset),
        )


def log_ingested(result: IngestResult) -> None:
    """Log ``cdr.ingested`` with the counts of an ingest that added records or skipped
    malformed lines; nothing for one that found nothing new."""
    if result.inserted or result.malformed:
        log.info(
            "cdr.ingested",
            inserted=result.inserted,
            duplicates=result.duplicates,
            malformed=result.malformed,
        )


def read_lines(path: Path, offset: int, limit: int = _CHUNK) -> tuple[bytes, int]:
    """Up to ``limit`` bytes of complete lines of a spool file from ``offset`` (one longer
    line whole), and the offset used: 0 when the file is shorter than ``offset`` or
    ``offset`` is not just after a newline (the file was rewritten: read it again)."""
    with path.open("rb") as file:
        size = file.seek(0, 2)
        if size < offset:
            log.warning("cdr.spool_file_shrunk", file=path.name, size=size, checkpoint=offset)
            offset = 0
        file.seek(max(0, offset - 1))
        if offset and file.read(1) != b"\n":
            log.warning("cdr.checkpoint_misaligned", file=path.name, checkpoint=offset)
            offset = 0  # the file was rewritten under us: read it again, UNIQUE(uuid) dedups
        file.seek(offset)
        data = file.read(limit)
    end = data.rfind(b"\n") + 1
    if end == 0 and len(data) == limit:  # one line longer than a chunk: take it whole
        with path.open("rb") as file:
            file.seek(offset)
            data = file.readline()
        end = len(data) if data.endswith(b"\n") else 0
    return data[:end], offset


def _row(record: CdrRecord) -> tuple[object, ...]:
    called = record.called_e164 or record.called_raw
    return (
        *(record.uuid, record.call_id, record.linked_id, record.leg, record.status),
        *(record.trunk, record.customer, called, record.start_stamp, record.end_stamp),
        *(record.billsec, record.disposition.value, record.to_json()),
    )


def _where(
    since: datetime | None, until: datetime | None, where: CdrFilter | None
) -> tuple[str, list[object]]:
    """The WHERE clause and parameters of a period and a filter."""
    clauses, params = where.sql() if where is not None else ([], [])
    return " AND ".join(["start_stamp >= ?", "start_stamp < ?", *clauses]), [
        *_bounds(since, until),
        *params,
    ]


def _bounds(since: datetime | None, until: datetime | None) -> tuple[str, str]:
    return (
        utc_stamp(since) if since else _FAR_PAST,
        utc_stamp(until) if until else _FAR_FUTURE,
    )
