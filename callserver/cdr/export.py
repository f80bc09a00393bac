"""CDR exports (JSON lines; CSV in Asterisk's Master.csv order) and ``callserver cdr`` commands.

Theory of operation
-------------------
JSON lines are ``CdrRecord.to_json()``, one record a line, exactly as spooled.

CSV starts with the 18 columns of Asterisk's ``Master.csv`` (cdr_csv.c), in its order, so
tools written for Asterisk read our files unchanged; then every other record field under its
own name (``EXTRA_COLUMNS``). The mapping:

====================  =============================================================
accountcode           customer
src, clid             caller_raw (we have no display name, so clid is the number)
dst                   called_raw
dcontext              dialplan
channel               ``SIP/<trunk>`` (empty without a trunk)
dstchannel, lastdata  empty
lastapp               the last dialplan step visited
start, answer, end    ``YYYY-MM-DD HH:MM:SS`` in UTC (the ms stamps follow as extras)
duration, billsec     the same whole seconds as the record
disposition           Asterisk's words: ANSWERED, NO ANSWER, BUSY, FAILED (REJECTED ->
                      FAILED, CANCELLED -> NO ANSWER); ours is ``disposition_detail``
amaflags              DOCUMENTATION (Asterisk's default)
uniqueid              uuid
userfield             empty
====================  =============================================================

Quoting is Asterisk's: every text value in double quotes (``""`` when empty), the integers
bare; ``steps`` and ``survey`` are compact JSON; lines end with ``\\n``. A header row names the
columns (Asterisk writes none; ``header=False`` leaves it out).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO, TypeVar

from callserver.cdr.record import CdrRecord, Disposition
from callserver.cdr.rows import CdrRows
from callserver.cdr.store import CdrStats, CdrStore, GroupStats
from callserver.process.logs import printable

__all__ = [
    "ASTERISK_COLUMNS",
    "CSV_COLUMNS",
    "EXTRA_COLUMNS",
    "ExportFormat",
    "cdr_export_command",
    "cdr_stats_command",
    "csv_row",
    "export",
    "format_stats",
    "parse_time",
]

ExportFormat = Literal["jsonl", "csv"]
T = TypeVar("T")

ASTERISK_COLUMNS = (
    *("accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp"),
    *("lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags"),
    *("uniqueid", "userfield"),
)
EXTRA_COLUMNS = tuple(
    "disposition_detail" if f.name == "disposition" else f.name
    for f in fields(CdrRecord)
    if f.name not in ("duration", "billsec")
)
CSV_COLUMNS = ASTERISK_COLUMNS + EXTRA_COLUMNS

_ASTERISK_DISPOSITION = {
    Disposition.ANSWERED: "ANSWERED",
    Disposition.NO_ANSWER: "NO ANSWER",
    Disposition.BUSY: "BUSY",
    Disposition.FAILED: "FAILED",
    Disposition.REJECTED: "FAILED",
    Disposition.CANCELLED: "NO ANSWER",
}


def export(
    records: Iterable[CdrRecord], fmt: ExportFormat, out: TextIO, *, header: bool = True
) -> int:
    """Write ``records`` to ``out`` as JSON lines or CSV; return how many were written.

    Raises:
        ValueError: for an unknown ``fmt``.
    """
    if fmt == "jsonl":
        count = 0
        for record in records:
            out.write(record.to_json() + "\n")
            count += 1
        return count
    if fmt != "csv":
        raise ValueError(f"unknown CDR export format {fmt!r} (jsonl or csv)")
    writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for record in records:
        writer.writerow(csv_row(record))
        count += 1
    return count


def csv_row(record: CdrRecord) -> list[str | int]:
    """One CSV row: the Asterisk columns, then ``EXTRA_COLUMNS`` (see the module docstring)."""
    values = record.to_dict()
    asterisk: list[str | int] = [
        *(record.customer or "", record.caller_raw or "", record.called_raw or ""),
        *(record.dialplan or "", record.caller_raw or ""),
        f"SIP/{record.trunk}" if record.trunk else "",
        *("", record.steps[-1] if record.steps else "", ""),
        *(_asterisk_time(record.start_stamp), _asterisk_time(record.answer_stamp)),
        *(_asterisk_time(record.end_stamp), record.duration, record.billsec),
        *(_ASTERISK_DISPOSITION[record.disposition], "DOCUMENTATION", record.uuid, ""),
    ]
    values["disposition_detail"] = values["disposition"]
    row = asterisk + [_cell(values[name]) for name in EXTRA_COLUMNS]
    return [printable(cell) if isinstance(cell, str) else cell for cell in row]


def parse_time(text: str) -> datetime:
    """A ``--since``/``--until`` value: an ISO 8601 date or date-time; UTC unless it says.

    Raises:
        ValueError: if ``text`` is neither.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 date or time (2026-11-22, 2026-11-22T08:00Z)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_stats(stats: CdrStats, *, top: int | None = 20) -> str:
    """A plain-text report: totals, then tables per trunk and per called number (``top`` rows)."""
    t = stats.total
    lines = [
        f"calls {t.calls}  answered {t.answered}  ASR {t.asr:.1f} %  ACD {t.acd:.1f} s",
        *_table("trunk", stats.per_trunk[:top]),
        *_table("called number", stats.per_called[:top]),
    ]
    return "\n".join(lines) + "\n"


def cdr_export_command(
    data_dir: Path,
    *,
    since: str | None,
    until: str | None,
    fmt: ExportFormat,
    out: TextIO,
    postgres: str | None = None,
) -> int:
    """``callserver cdr export``: write the records; return the count. From the node's
    ``cdr.sqlite`` (the spool ingested first), or with ``postgres`` from the cluster's central
    store (``cdr.central``), in the same bytes for the same records.

    Raises:
        ValueError: for a bad ``since``/``until``.
        OSError: a store that cannot be read (``cdr.rows.StoreUnavailable``: PostgreSQL).
    """
    start, end = _range(since, until)
    return _read(data_dir, postgres, lambda rows: export(rows.records(start, end), fmt, out))


def cdr_stats_command(
    data_dir: Path,
    *,
    since: str | None,
    until: str | None,
    out: TextIO,
    top: int | None = 20,
    postgres: str | None = None,
) -> CdrStats:
    """``callserver cdr stats``: print the report; return the figures (from the store
    ``cdr_export_command`` reads).

    Raises:
        ValueError: for a bad ``since``/``until``.
        OSError: a store that cannot be read (``cdr.rows.StoreUnavailable``: PostgreSQL).
    """
    start, end = _range(since, until)
    stats = _read(data_dir, postgres, lambda rows: rows.stats(start, end))
    out.write(format_stats(stats, top=top))
    return stats


def _read(data_dir: Path, postgres: str | None, work: Callable[[CdrRows], T]) -> T:
    """``work`` over the central store's rows (``postgres``), else over ``cdr.sqlite``'s
    after ingesting the spool."""
    if postgres is not None:
        from callserver.cdr.central import read_central  # asyncpg only where it is used

        return read_central(postgres, work)
    with CdrStore(data_dir / "cdr.sqlite") as store:
        store.ingest(data_dir / "cdr")
        return work(store)


def _range(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    return (
        parse_time(since) if since else None,
        parse_time(until) if until else None,
    )


def _table(title: str, groups: tuple[GroupStats, ...]) -> list[str]:
    rows = [f"{title:<24} {'calls':>8} {'answered':>8} {'ASR %':>6} {'ACD s':>8}"]
    for g in groups:
        key = g.key or "-"
        rows.append(f"{key:<24} {g.calls:>8} {g.answered:>8} {g.asr:>6.1f} {g.acd:>8.1f}")
    return ["", *rows]


def _asterisk_time(stamp: str | None) -> str:
    return "" if stamp is None else stamp[:19].replace("T", " ")


def _cell(value: object) -> str | int:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | str):
        return value
    return json.dumps(value, separators=(",", ":"))
