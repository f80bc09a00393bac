"""Reading the central store back: ``callserver cdr export|stats`` and ``/api/cdrs`` give,
from PostgreSQL, byte for byte what they give from the node's ``cdr.sqlite`` for the same
records (the same formatting code; only the rows' source differs)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callserver.admin.cdrs_api import CdrsApi
from callserver.cdr.central import CentralCdrs, read_central
from callserver.cdr.export import cdr_export_command, cdr_stats_command
from callserver.cdr.marks import CdrMark, append_mark
from callserver.cdr.record import CdrRecord, Disposition
from callserver.cdr.rows import CdrRows
from callserver.cdr.selection import CdrFilter, customer_totals
from callserver.cdr.store import CdrStore
from tests.admin.serving import serving
from tests.admin.tokens import ACME
from tests.cdr import make_record
from tests.cluster.central_cdrs import feeder_of, numbered, spool, stop_fast
from tests.cluster.peers import Postgres

CHARGE = {
    "payer": "caller",
    "tariff": "local",
    "billed_units": 63,
    "billed_seconds": 63,
    "cost": "0.0945",
    "vat": "0.0161",
}
UNANSWERED = {"answer_stamp": None, "hangup_cause": "USER_BUSY", "q850_cause": 17}


def _varied() -> list[CdrRecord]:
    """Legs of two days, two customers and none, every disposition, a rated one, a forwarded
    b leg, an ABORTED one, text beyond ASCII, a survey, and several starting at one moment."""
    at = "2026-11-21T23:59:59.500Z"
    return [
        make_record(1, start_stamp=at, disposition="BUSY", **UNANSWERED),
        make_record(
            2,
            start_stamp=at,
            customer="globex",
            trunk="globex-1",
            called_raw="0332",
            called_e164=None,
        ),
        make_record(3, start_stamp=at, currency="BAM", charges=[CHARGE], tariff="local"),
        make_record(4, customer=None, trunk=None, disposition="NO_ANSWER", **UNANSWERED),
        make_record(5, caller_raw="Žarko Čović", survey={"q1": 5, "note": "ok"}, steps=["menu"]),
        make_record(6, leg="b", linked_id="c5", direction="outbound", called_raw="+38761000"),
        make_record(7, status="aborted", end_reason="aborted", hangup_cause="CRASH"),
        make_record(
            8,
            start_stamp="2026-11-22T12:00:00.000Z",
            answer_stamp=None,
            end_stamp="2026-11-23T00:00:01.000Z",
            disposition="CANCELLED",
            hangup_cause="ORIGINATOR_CANCEL",
        ),
    ]


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL of the test's own, started."""
    with Postgres() as server:
        yield server


def _both(tmp_path: Path, dsn: str, records: list[CdrRecord]) -> Path:
    """A data dir whose spool holds ``records`` and a mark on c5, ingested into
    ``cdr.sqlite`` and delivered to PostgreSQL."""
    spool(tmp_path, records)
    append_mark(tmp_path / "cdr", CdrMark(call_id="c5", malicious="2026-11-22T10:05:00.000Z"))
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        store.ingest(tmp_path / "cdr", report=False)

    async def deliver() -> None:
        feeder = feeder_of(tmp_path, dsn)
        await feeder.deliver(wait=30)
        await feeder.close()

    asyncio.run(deliver())
    return tmp_path


def _export(data_dir: Path, postgres: str | None, fmt: str, **period: str | None) -> str:
    out = io.StringIO()
    period = {"since": None, "until": None, **period}
    cdr_export_command(data_dir, fmt=fmt, out=out, postgres=postgres, **period)  # type: ignore[arg-type]
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_the_export_from_postgres_is_the_sqlite_export_byte_for_byte(
    postgres: Postgres, tmp_path: Path, fmt: str
) -> None:
    """The whole store and two periods, in CSV and JSON lines: the same bytes both ways,
    the MCID mark on both legs of its call included."""
    data_dir = _both(tmp_path, postgres.dsn, _varied())
    for period in ({}, {"since": "2026-11-22"}, {"since": "2026-11-21", "until": "2026-11-22"}):
        local = _export(data_dir, None, fmt, **period)
        assert _export(data_dir, postgres.dsn, fmt, **period) == local
    assert _export(data_dir, postgres.dsn, fmt).count("2026-11-22T10:05:00.000Z") == 2


def test_stats_from_postgres_are_the_sqlite_stats(postgres: Postgres, tmp_path: Path) -> None:
    """``callserver cdr stats``: the same report and figures from both stores."""
    data_dir = _both(tmp_path, postgres.dsn, _varied())
    totals = []
    for since in (None, "2026-11-22"):
        local, central = io.StringIO(), io.StringIO()
        figures = cdr_stats_command(data_dir, since=since, until=None, out=local)
        same = cdr_stats_command(
            data_dir, since=since, until=None, out=central, postgres=postgres.dsn
        )
        assert (same, central.getvalue()) == (figures, local.getvalue())
        totals.append((figures.total.calls, len(figures.per_trunk), len(figures.per_called)))
    assert totals == [(8, 3, 2), (5, 2, 1)]


def test_filters_pages_counts_and_totals_pick_the_same_records(
    postgres: Postgres, tmp_path: Path
) -> None:
    """Each filter of the admin API (customer, a number with or without +, a disposition),
    a page of it, its count and its totals per customer: the same from both stores."""
    data_dir = _both(tmp_path, postgres.dsn, _varied())
    filters = [
        CdrFilter(),
        CdrFilter(customer="acme"),
        CdrFilter(number="+38761234567"),
        CdrFilter(number="0332"),
        CdrFilter(disposition=Disposition.BUSY, customer="acme"),
    ]
    since = datetime(2026, 11, 21, tzinfo=UTC)

    def read(rows: CdrRows) -> list[object]:
        answers: list[object] = []
        for where in filters:
            answers.append([r.uuid for r in rows.records(since, where=where)])
            answers.append([r.uuid for r in rows.records(where=where, limit=2, offset=1)])
            answers.append(rows.count(since, where=where))
            answers.append(customer_totals(rows.legs(where=where)))
        return answers

    with CdrStore(data_dir / "cdr.sqlite") as store:
        local = read(store)
    assert read_central(postgres.dsn, read) == local
    assert local[0] == ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]


def test_a_large_export_pages_through_ties_in_the_stored_order(
    postgres: Postgres, tmp_path: Path
) -> None:
    """1 300 records starting at three moments only: PostgreSQL's pages of 500 (by start
    time, then the order stored) give the SQLite export's CSV exactly."""
    starts = ["2026-11-22T08:00:00.000Z", "2026-11-22T09:00:00.000Z", "2026-11-22T07:00:00.000Z"]
    records = [make_record(n, start_stamp=starts[n % 3]) for n in range(1300)]
    data_dir = _both(tmp_path, postgres.dsn, records)
    assert _export(data_dir, postgres.dsn, "csv") == _export(data_dir, None, "csv")


async def test_the_admin_api_answers_from_postgres_as_from_sqlite(
    postgres: Postgres, tmp_path: Path
) -> None:
    """``/api/cdrs`` pages and filters, the CSV export, the totals and a customer's scope are
    the same over PostgreSQL (after the feeder's delivery) as over ``cdr.sqlite``."""
    spool(tmp_path, _varied())
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        store.ingest(tmp_path / "cdr", report=False)
    feeder, central = feeder_of(tmp_path, postgres.dsn), CentralCdrs(postgres.dsn)
    paths = [
        ("/api/cdrs", None),
        ("/api/cdrs?limit=3&offset=2&from=2026-11-21", None),
        ("/api/cdrs?number=%2B38761234567&status=answered", None),
        ("/api/cdrs/export?format=csv", None),
        ("/api/cdrs/export?format=jsonl&customer=globex", None),
        ("/api/cdrs/totals", None),
        ("/api/cdrs", ACME),
        ("/api/cdrs/totals?customer=globex", ACME),
    ]
    try:
        async with serving(CdrsApi(lambda: tmp_path / "cdr.sqlite")) as local:
            expected = [await local.get(path, token or "operator-secret") for path, token in paths]
        api = CdrsApi(lambda: tmp_path / "nothing.sqlite", feeder.deliver, central=central)
        async with serving(api) as remote:
            answers = [await remote.get(path, token or "operator-secret") for path, token in paths]
    finally:
        await feeder.close()
        await central.close()
    assert [(a.status, a.body) for a in answers] == [(e.status, e.body) for e in expected]
    assert answers[0].json["total"] == 8 and answers[-1].status == 404


async def test_postgres_down_is_503_saying_what_to_do(postgres: Postgres, tmp_path: Path) -> None:
    """With PostgreSQL gone, the list, the export and the totals answer 503 with a JSON error
    naming the central store and this node's own records; the command fails the same way."""
    central = CentralCdrs(postgres.dsn, timeout=2.0)
    await central.ensure()
    await asyncio.to_thread(stop_fast, postgres)
    try:
        async with serving(CdrsApi(lambda: tmp_path / "cdr.sqlite", central=central)) as api:
            for path in ("/api/cdrs", "/api/cdrs/export?format=csv", "/api/cdrs/totals"):
                answer = await api.get(path)
                assert answer.status == 503, path
                assert "central CDR store" in answer.json["error"]
                assert "callserver cdr export --local" in answer.json["error"]
    finally:
        await central.close()
    with pytest.raises(OSError, match="cannot be read"):
        await asyncio.to_thread(_export, tmp_path, postgres.dsn, "csv")


def test_records_spooled_after_the_first_delivery_follow(
    postgres: Postgres, tmp_path: Path
) -> None:
    """Two deliveries with records in between: the export from PostgreSQL grows with them."""
    data_dir = _both(tmp_path, postgres.dsn, numbered(0, 3))
    spool(data_dir, numbered(3, 2))

    async def deliver() -> None:
        feeder = feeder_of(data_dir, postgres.dsn)
        await feeder.deliver(wait=30)
        await feeder.close()

    asyncio.run(deliver())
    assert _export(data_dir, postgres.dsn, "jsonl") == _export(data_dir, None, "jsonl")
    assert _export(data_dir, postgres.dsn, "jsonl").count("\n") == 5
