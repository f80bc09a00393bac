"""Tests for the SQLite CDR store: exactly-once ingest from the spool, queries and statistics."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from callserver.cdr.marks import MARKS_FILE, CdrMark, append_mark
from callserver.cdr.record import CdrRecord, Disposition
from callserver.cdr.selection import CdrFilter
from callserver.cdr.store import CdrStore, GroupStats, IngestResult
from tests.cdr import make_record

DAY = "2026-11-22.jsonl"


def _append(spool_dir: Path, *records: CdrRecord, name: str = DAY) -> None:
    spool_dir.mkdir(parents=True, exist_ok=True)
    with (spool_dir / name).open("ab") as file:
        for record in records:
            file.write(record.to_json().encode() + b"\n")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CdrStore]:
    """An empty store in a fresh data directory."""
    with CdrStore(tmp_path / "cdr.sqlite") as cdr_store:
        yield cdr_store


def _uuids(store: CdrStore) -> list[str]:
    return [r.uuid for r in store.records()]


def test_database_is_in_wal_mode(store: CdrStore) -> None:
    """The store opens SQLite with the write-ahead log."""
    mode = sqlite3.connect(store.path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_ingest_reads_new_lines_once_and_records_come_back_equal(
    store: CdrStore, tmp_path: Path
) -> None:
    """A second ingest adds only what was appended since, and records equal what was spooled."""
    spool = tmp_path / "cdr"
    first = [make_record(n) for n in range(3)]
    _append(spool, *first)
    assert store.ingest(spool) == IngestResult(inserted=3)
    assert store.ingest(spool) == IngestResult()
    _append(spool, make_record(3))
    assert store.ingest(spool) == IngestResult(inserted=1)
    assert list(store.records()) == [*first, make_record(3)]
    assert store.checkpoint(DAY) == (spool / DAY).stat().st_size


def test_crash_inside_the_transaction_loses_nothing_and_duplicates_nothing(
    store: CdrStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error after the inserts but before the commit rolls back rows and offset together;
    the next ingest then stores each record exactly once."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0), make_record(1))
    store.ingest(spool)
    _append(spool, make_record(2), make_record(3))

    def crash(self: CdrStore, name: str, offset: int) -> None:
        raise RuntimeError("power cut")

    with monkeypatch.context() as patch:
        patch.setattr(CdrStore, "_advance", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            store.ingest(spool)
    assert _uuids(store) == ["u0", "u1"]
    assert store.ingest(spool) == IngestResult(inserted=2)
    assert _uuids(store) == ["u0", "u1", "u2", "u3"]


def test_unique_uuid_guards_against_a_lost_checkpoint(store: CdrStore, tmp_path: Path) -> None:
    """If the checkpoint is lost the files are read again and every record is a duplicate."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0), make_record(1))
    store.ingest(spool)
    sqlite3.connect(store.path, isolation_level=None).execute("DELETE FROM ingest_checkpoint")
    assert store.ingest(spool) == IngestResult(duplicates=2)
    assert _uuids(store) == ["u0", "u1"]


def test_a_line_still_being_written_waits_for_its_newline(store: CdrStore, tmp_path: Path) -> None:
    """Only complete lines are ingested; the rest of a partial line completes it later."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0))
    line = make_record(1).to_json().encode()
    with (spool / DAY).open("ab") as file:
        file.write(line[:40])
    assert store.ingest(spool) == IngestResult(inserted=1)
    with (spool / DAY).open("ab") as file:
        file.write(line[40:] + b"\n")
    assert store.ingest(spool) == IngestResult(inserted=1)
    assert _uuids(store) == ["u0", "u1"]


def test_malformed_lines_are_skipped_counted_and_logged(store: CdrStore, tmp_path: Path) -> None:
    """A torn line is passed over with cdr.ingest_malformed; the records around it are kept."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0))
    with (spool / DAY).open("ab") as file:
        file.write(b'{"uuid":"u9","call\n')
    _append(spool, make_record(1))
    with capture_logs() as logs:
        assert store.ingest(spool) == IngestResult(inserted=2, malformed=1)
    assert [e["event"] for e in logs if e["event"] == "cdr.ingest_malformed"] == [
        "cdr.ingest_malformed"
    ]
    assert _uuids(store) == ["u0", "u1"]


def test_a_replaced_shorter_file_is_read_from_the_start(store: CdrStore, tmp_path: Path) -> None:
    """A day file shorter than its checkpoint is read again from 0 without duplicates."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0), make_record(1))
    store.ingest(spool)
    (spool / DAY).unlink()
    _append(spool, make_record(2))
    assert store.ingest(spool) == IngestResult(inserted=1)
    assert _uuids(store) == ["u0", "u1", "u2"]


def test_a_checkpoint_inside_a_line_rereads_the_file(store: CdrStore, tmp_path: Path) -> None:
    """If the file was rewritten so the checkpoint falls mid-line, it is read again from 0."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0), make_record(1))
    store.ingest(spool)
    (spool / DAY).write_bytes(b"")
    _append(spool, make_record(22), make_record(0), make_record(1), make_record(3))
    with capture_logs() as logs:
        assert store.ingest(spool) == IngestResult(inserted=2, duplicates=2)
    assert "cdr.checkpoint_misaligned" in [e["event"] for e in logs]
    assert sorted(_uuids(store)) == ["u0", "u1", "u22", "u3"]


def test_only_day_files_are_ingested(store: CdrStore, tmp_path: Path) -> None:
    """The journal and other files in the spool directory are left alone."""
    spool = tmp_path / "cdr"
    _append(spool, make_record(0), name="calls.journal")
    _append(spool, make_record(1), name="notes.jsonl")
    assert store.ingest(spool) == IngestResult()
    assert store.ingest(tmp_path / "missing") == IngestResult()


def test_records_are_selected_by_start_time(store: CdrStore, tmp_path: Path) -> None:
    """since is inclusive and until exclusive, on start_stamp; results are in start order."""
    spool = tmp_path / "cdr"
    starts = ["2026-11-22T12:00:00.000Z", "2026-11-22T08:00:00.000Z", "2026-11-22T10:00:00.000Z"]
    _append(
        spool,
        *(
            make_record(n, start_stamp=s, answer_stamp=None, disposition="BUSY", end_stamp=s)
            for n, s in enumerate(starts)
        ),
    )
    store.ingest(spool)
    assert _uuids(store) == ["u1", "u2", "u0"]
    since = datetime(2026, 11, 22, 10, tzinfo=UTC)
    until = datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert [r.uuid for r in store.records(since, until)] == ["u2"]
    assert [r.uuid for r in store.records(since=since)] == ["u2", "u0"]


def test_stats_give_asr_and_acd_in_all_per_trunk_and_per_number(
    store: CdrStore, tmp_path: Path
) -> None:
    """Calls, answered, ASR and ACD are right in total and in each breakdown, busiest first."""
    spool = tmp_path / "cdr"
    unanswered = {"answer_stamp": None, "disposition": "NO_ANSWER"}
    _append(
        spool,
        make_record(0, trunk="a", called_e164="1"),  # answered, billsec 60
        make_record(1, trunk="a", called_e164="1", end_stamp="2026-11-22T10:00:32.000Z"),  # 30
        make_record(2, trunk="a", called_e164="2", **unanswered),
        make_record(3, trunk="b", called_e164="2", **unanswered),
        make_record(4, trunk=None, called_e164=None, called_raw="999", **unanswered),
    )
    store.ingest(spool)
    stats = store.stats()
    assert stats.total == GroupStats(key="all", calls=5, answered=2, billsec=90)
    assert (stats.total.asr, stats.total.acd) == (40.0, 45.0)
    assert stats.per_trunk == (
        GroupStats(key="a", calls=3, answered=2, billsec=90),
        GroupStats(key="", calls=1, answered=0, billsec=0),
        GroupStats(key="b", calls=1, answered=0, billsec=0),
    )
    assert [(g.key, g.calls, g.answered) for g in stats.per_called] == [
        ("1", 2, 2),
        ("2", 2, 0),
        ("999", 1, 0),
    ]
    empty = store.stats(since=datetime(2030, 1, 1, tzinfo=UTC))
    assert (empty.total.calls, empty.total.asr, empty.total.acd, empty.per_trunk) == (0, 0, 0, ())


def test_the_store_keeps_every_payers_charge(store: CdrStore, tmp_path: Path) -> None:
    """A record with two payers comes back from SQLite with both charges, money exact."""
    charges = [
        {
            "payer": payer,
            "tariff": "unique_access_bh_telecom_fixed",
            "billed_units": 90,
            "billed_seconds": 90,
            "cost": cost,
            "vat": vat,
        }
        for payer, cost, vat in (("caller", "0.0630", "0.0107"), ("called", "0.0300", "0.0051"))
    ]
    record = make_record(7, charges=charges)
    _append(tmp_path / "cdr", record)
    store.ingest(tmp_path / "cdr")
    (back,) = store.records()
    assert back == record
    assert [(c.payer, str(c.cost)) for c in back.charges] == [
        ("caller", "0.0630"),
        ("called", "0.0300"),
    ]


def test_a_malicious_mark_flags_every_leg_of_its_call(store: CdrStore, tmp_path: Path) -> None:
    """A mark in marks.jsonl sets ``malicious`` on the caller's leg and the legs linked to it,
    keeps the first mark of a call, skips a bad line, and is read again into a new database."""
    spool = tmp_path / "cdr"
    a, b = make_record(1), make_record(2, leg="b", linked_id="c1")
    _append(spool, a, b, make_record(3))
    stamp = "2026-11-22T10:02:00.000Z"
    append_mark(spool, CdrMark(call_id="c1", malicious=stamp))
    append_mark(spool, CdrMark(call_id="c1", malicious="2026-11-22T10:03:00.000Z"))
    with (spool / MARKS_FILE).open("ab") as file:
        file.write(b'{"call_id": 5}\n')
    assert store.ingest(spool) == IngestResult(inserted=3, malformed=1)
    assert [r.malicious for r in store.records()] == [stamp, stamp, None]
    assert CdrRecord.from_json(a.to_json()).malicious is None  # the spooled line is unchanged
    with CdrStore(tmp_path / "rebuilt.sqlite") as rebuilt:
        rebuilt.ingest(spool, report=False)
        assert [r.malicious for r in rebuilt.records()] == [stamp, stamp, None]


def test_a_filter_picks_by_customer_disposition_and_number_and_pages(
    store: CdrStore, tmp_path: Path
) -> None:
    """``where`` picks a customer's legs, a disposition, a caller or called number (raw or
    E.164, ``+`` or not); ``limit``/``offset`` page in the same order; ``count`` agrees."""
    unanswered = {"answer_stamp": None, "disposition": "BUSY", "hangup_cause": "USER_BUSY"}
    _append(
        tmp_path / "cdr",
        make_record(1),
        make_record(2, customer="globex", caller_raw="+38762000111", caller_e164="38762000111"),
        make_record(3, **unanswered),
        make_record(4, called_raw="033999888", called_e164="38733999888"),
    )
    store.ingest(tmp_path / "cdr", report=False)

    def picked(**where: Any) -> list[str]:
        chosen = CdrFilter(**where)
        uuids = [r.uuid for r in store.records(where=chosen)]
        assert store.count(where=chosen) == len(uuids)
        return uuids

    assert picked(customer="acme") == ["u1", "u3", "u4"]
    assert picked(disposition=Disposition.BUSY) == ["u3"]
    assert picked(number="38762000111") == picked(number="+38762000111") == ["u2"]
    assert picked(number="033999888") == picked(number="+38733999888") == ["u4"]
    assert picked(customer="globex", number="033999888") == []
    page = store.records(where=CdrFilter(customer="acme"), limit=2, offset=1)
    assert [r.uuid for r in page] == ["u3", "u4"]
    assert store.count() == 4
