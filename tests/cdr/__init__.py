"""Tests for callserver.cdr; ``make_record`` builds a valid CDR with overridable fields, and
the helpers below write a spool day file, read cdr.sqlite back and pick log lines."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from callserver.cdr.record import CdrRecord

DAY = "2026-11-22.jsonl"


def make_record(n: int = 0, **overrides: object) -> CdrRecord:
    """An answered inbound leg, number ``n``: uuid ``u<n>``, Call-ID ``c<n>``, 62.5 s long."""
    fields: dict[str, object] = {
        "uuid": f"u{n}",
        "call_id": f"c{n}",
        "direction": "inbound",
        "trunk": "pbx-1",
        "customer": "acme",
        "caller_raw": "061234567",
        "caller_e164": "38761234567",
        "caller_country": "BA",
        "called_raw": "033123456",
        "called_e164": "38733123456",
        "start_stamp": "2026-11-22T10:00:00.000Z",
        "answer_stamp": "2026-11-22T10:00:02.000Z",
        "end_stamp": "2026-11-22T10:01:02.500Z",
        "disposition": "ANSWERED",
        "hangup_cause": "NORMAL_CLEARING",
        "q850_cause": 16,
        "sip_code": 200,
        "hangup_by": "caller",
        "end_reason": "normal",
    }
    fields.update(overrides)
    return CdrRecord.from_dict(fields)


def append_records(data_dir: Path, *records: CdrRecord, name: str = DAY) -> None:
    """Append ``records`` to the spool day file ``name`` under ``data_dir``."""
    spool = data_dir / "cdr"
    spool.mkdir(parents=True, exist_ok=True)
    with (spool / name).open("ab") as file:
        for record in records:
            file.write(record.to_json().encode() + b"\n")


def stored_uuids(data_dir: Path) -> list[str]:
    """The uuids in cdr.sqlite, one per row, read through a connection of the test's own."""
    db = sqlite3.connect(f"file:{data_dir / 'cdr.sqlite'}?mode=ro", uri=True)
    try:
        return [uuid for (uuid,) in db.execute("SELECT uuid FROM cdr ORDER BY id")]
    finally:
        db.close()


def events_named(logs: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    """The captured log lines whose event is ``name``."""
    return [entry for entry in logs if entry["event"] == name]
