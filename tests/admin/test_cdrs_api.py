"""``/api/cdrs`` on a real port over a real store: pages, filters, scope, exports equal to
``callserver cdr export``, totals equal to the rater's and ``cdr stats``' figures."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from callserver.admin.cdrs_api import CdrsApi
from callserver.cdr.charge import Charge
from callserver.cdr.export import cdr_export_command, cdr_stats_command, export
from callserver.cdr.ingester import CdrIngester
from callserver.cdr.record import CdrRecord
from callserver.cdr.store import CdrStore
from callserver.config.tariffs import load_tariffs
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.cdr import append_records, make_record

TARIFFS = Path(__file__).parents[2] / "config" / "tariffs.yaml"


def _rated(record: CdrRecord) -> CdrRecord:
    """``record`` with the charges the server's rating gives it (``Tariffs.charges``)."""
    tariffs = load_tariffs(TARIFFS)
    number_class = tariffs.classify(record.called_raw or "")
    ratings = tariffs.charges(number_class, record.billsec, caller="+" + str(record.caller_e164))
    charges = tuple(
        Charge(
            payer=r.payer.value,
            tariff=r.tariff,
            billed_units=r.billed_units,
            billed_seconds=r.billed_seconds,
            cost=r.cost,
            vat=r.vat,
        )
        for r in ratings
    )
    first = charges[0]
    return replace(
        record, tariff=first.tariff, cost=first.cost, vat=first.vat, currency="BAM", charges=charges
    )


def _records() -> list[CdrRecord]:
    """Legs of acme and globex on 21 and 22 November 2026: answered, busy, unanswered."""
    unanswered = {"answer_stamp": None, "hangup_cause": "USER_BUSY", "q850_cause": 17}
    return [
        _rated(make_record(1, start_stamp="2026-11-21T09:00:00.000Z")),
        _rated(make_record(2, customer="globex", trunk="globex-1", called_raw="033200300")),
        make_record(3, disposition="BUSY", **unanswered),
        _rated(
            make_record(
                4,
                caller_raw="+38762111222",
                caller_e164="38762111222",
                start_stamp="2026-11-22T11:00:00.000Z",
                answer_stamp="2026-11-22T11:00:05.000Z",
                end_stamp="2026-11-22T11:03:05.900Z",
            )
        ),
        make_record(5, customer="globex", disposition="NO_ANSWER", **unanswered),
    ]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir whose spool holds ``_records()``, ingested into cdr.sqlite."""
    append_records(tmp_path, *_records())
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        store.ingest(tmp_path / "cdr", report=False)
    return tmp_path


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[Client]:
    """The CDR resource over ``data_dir``'s store, read as it is."""
    async with serving(CdrsApi(lambda: data_dir / "cdr.sqlite")) as client:
        yield client


def _uuids(answer_json: dict[str, list[dict[str, object]]]) -> list[object]:
    return [cdr["uuid"] for cdr in answer_json["cdrs"]]


async def test_the_operator_pages_through_every_record_in_the_exports_order(api: Client) -> None:
    """Oldest first, as the export; ``total`` counts them all, ``limit``/``offset`` page."""
    data = (await api.get("/api/cdrs")).json
    assert (_uuids(data), data["total"]) == (["u1", "u2", "u3", "u5", "u4"], 5)
    page = (await api.get("/api/cdrs?limit=2&offset=2")).json
    assert (_uuids(page), page["total"]) == (["u3", "u5"], 5)
    beyond = (await api.get("/api/cdrs?offset=9")).json
    assert (beyond["cdrs"], beyond["total"]) == ([], 5)


async def test_each_listed_record_is_as_the_export_writes_it(api: Client, data_dir: Path) -> None:
    """A listed record is the JSON line ``callserver cdr export`` writes for it."""
    out = io.StringIO()
    cdr_export_command(data_dir, since=None, until=None, fmt="jsonl", out=out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert (await api.get("/api/cdrs")).json["cdrs"] == lines


async def test_filters_pick_by_period_number_and_status(api: Client) -> None:
    """``from``/``to`` by start time, ``number`` caller or called (``+`` optional), ``status``."""
    day = (await api.get("/api/cdrs?from=2026-11-22&to=2026-11-22T10:30:00Z")).json
    assert _uuids(day) == ["u2", "u3", "u5"]
    assert _uuids((await api.get("/api/cdrs?number=%2B38762111222")).json) == ["u4"]
    assert _uuids((await api.get("/api/cdrs?number=033200300")).json) == ["u2"]
    assert _uuids((await api.get("/api/cdrs?status=busy")).json) == ["u3"]
    assert _uuids((await api.get("/api/cdrs?status=NO_ANSWER&customer=globex")).json) == ["u5"]


async def test_a_customer_sees_only_its_records_and_another_customer_is_404(api: Client) -> None:
    """acme's token lists acme's legs; ``customer=globex`` with it is 404, as a missing one."""
    assert _uuids((await api.get("/api/cdrs", ACME)).json) == ["u1", "u3", "u4"]
    assert _uuids((await api.get("/api/cdrs?customer=acme", ACME)).json) == ["u1", "u3", "u4"]
    for path in ("/api/cdrs", "/api/cdrs/export", "/api/cdrs/totals"):
        answer = await api.get(path + "?customer=globex", ACME)
        assert answer.status == 404
        assert "no customer globex" in answer.json["error"]
    totals = (await api.get("/api/cdrs/totals", GLOBEX)).json["totals"]
    assert [row["customer"] for row in totals] == ["globex"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("from=yesterday", "from"),
        ("to=2026-13-01", "to"),
        ("from=2026-11-22&to=2026-11-21", "to"),
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("offset=-1", "offset"),
        ("status=LOST", "status"),
        ("number=", "number"),
        ("since=2026-11-22", "since"),
        ("limit=1&limit=2", "limit"),
    ],
)
async def test_a_bad_query_parameter_is_400_naming_it(api: Client, query: str, name: str) -> None:
    """Each bad or unknown parameter is refused, the error naming it."""
    answer = await api.get(f"/api/cdrs?{query}")
    assert answer.status == 400
    assert answer.json["error"].startswith(f"query parameter {name}: ")


async def test_the_export_format_and_its_parameters_are_checked(api: Client) -> None:
    """``format=xml`` and ``limit`` (a list's parameter) are 400 on the export."""
    for query, name in (("format=xml", "format"), ("limit=5", "limit")):
        answer = await api.get(f"/api/cdrs/export?{query}")
        assert (answer.status, answer.json["error"].split(":")[0]) == (
            400,
            f"query parameter {name}",
        )


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_the_export_is_byte_for_byte_the_commands(
    api: Client, data_dir: Path, fmt: str
) -> None:
    """The download equals ``callserver cdr export --format`` of the same store and period."""
    for query, since, until in (("", None, None), ("&from=2026-11-22", "2026-11-22", None)):
        answer = await api.get(f"/api/cdrs/export?format={fmt}{query}")
        assert answer.status == 200
        assert answer.headers["Content-Disposition"] == f'attachment; filename="cdrs.{fmt}"'
        out = io.StringIO()
        cdr_export_command(data_dir, since=since, until=until, fmt=fmt, out=out)  # type: ignore[arg-type]
        assert answer.body == out.getvalue().encode()


async def test_a_customers_export_holds_its_records_only(api: Client) -> None:
    """acme's CSV is ``export`` of acme's records, in order, with the header."""
    out = io.StringIO()
    export([r for r in _records() if r.customer == "acme"], "csv", out)
    body = (await api.get("/api/cdrs/export?format=csv", ACME)).body
    assert body == out.getvalue().encode()


async def test_a_large_export_streams_in_chunks_equal_to_the_command(tmp_path: Path) -> None:
    """3000 records (about 2 MB of CSV, many chunks) arrive whole and in the command's bytes."""
    records = [make_record(n, start_stamp=f"2026-11-22T0{n % 10}:00:00.000Z") for n in range(3000)]
    append_records(tmp_path, *records)
    out = io.StringIO()
    cdr_export_command(tmp_path, since=None, until=None, fmt="csv", out=out)
    async with serving(CdrsApi(lambda: tmp_path / "cdr.sqlite")) as api:
        answer = await api.get("/api/cdrs/export?format=csv")
    assert len(answer.body) > 1_000_000
    assert answer.body == out.getvalue().encode()


async def test_totals_are_the_rated_charges_and_the_stats_figures(
    api: Client, data_dir: Path
) -> None:
    """Per customer: the legs and answered legs, their billsec and the sum of the charges the
    rater gave them; together the calls, answered and billsec of ``cdr stats``."""
    rows = (await api.get("/api/cdrs/totals")).json["totals"]
    assert [row["customer"] for row in rows] == ["acme", "globex"]
    for row in rows:
        legs = [r for r in _records() if r.customer == row["customer"]]
        cost = sum((c.cost for r in legs for c in r.charges), Decimal(0))
        vat = sum((c.vat for r in legs for c in r.charges), Decimal(0))
        assert row["calls"] == len(legs)
        assert row["answered"] == sum(r.answer_stamp is not None for r in legs)
        assert row["seconds"] == sum(r.billsec for r in legs)
        assert (row["cost"], row["vat"]) == (str(cost), str(vat))
        assert (Decimal(row["total"]), row["currency"]) == (cost + vat, "BAM")
    assert Decimal(rows[0]["cost"]) > 0  # config/tariffs.yaml prices acme's local calls
    stats = cdr_stats_command(data_dir, since="2026-11-22", until=None, out=io.StringIO())
    day = (await api.get("/api/cdrs/totals?from=2026-11-22")).json["totals"]
    assert sum(row["calls"] for row in day) == stats.total.calls
    assert sum(row["answered"] for row in day) == stats.total.answered
    assert sum(row["seconds"] for row in day) == stats.total.billsec


async def test_records_still_in_the_spool_are_shown_after_the_servers_ingest(
    tmp_path: Path,
) -> None:
    """With the server's ingester, a record written to the spool after the last ingest is in
    the next answer; without a store at all, the lists are empty."""
    ingester = CdrIngester(tmp_path, 10.0)
    try:
        async with serving(CdrsApi(lambda: tmp_path / "cdr.sqlite", ingester.ingest)) as api:
            assert (await api.get("/api/cdrs")).json == {"cdrs": [], "total": 0, "offset": 0}
            append_records(tmp_path, make_record(7))
            assert _uuids((await api.get("/api/cdrs")).json) == ["u7"]
    finally:
        await ingester.close()


async def test_without_a_store_every_answer_is_empty(tmp_path: Path) -> None:
    """No cdr.sqlite yet: no records, the CSV header alone, no totals; no file is made."""
    async with serving(CdrsApi(lambda: tmp_path / "cdr.sqlite")) as api:
        assert (await api.get("/api/cdrs")).json["cdrs"] == []
        assert (await api.get("/api/cdrs/totals")).json == {"totals": []}
        csv_body = (await api.get("/api/cdrs/export?format=csv")).body
        assert csv_body.startswith(b'"accountcode"') and csv_body.count(b"\n") == 1
    assert not (tmp_path / "cdr.sqlite").exists()


async def test_a_client_leaving_mid_export_ends_the_export_quietly(tmp_path: Path) -> None:
    """A client that reads the first bytes of a large export and closes: the export's thread
    stops, nothing is logged as failed, and the server answers the next request."""
    append_records(tmp_path, *(make_record(n) for n in range(3000)))
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        store.ingest(tmp_path / "cdr", report=False)
    with capture_logs() as logs:
        async with asyncio.timeout(10), serving(CdrsApi(lambda: tmp_path / "cdr.sqlite")) as api:
            headers = {"Authorization": f"Bearer {OPERATOR}"}
            url = api.url + "/api/cdrs/export?format=csv"
            async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as r:
                assert len(await r.content.read(1000)) == 1000
            assert (await api.get("/api/cdrs?limit=1")).json["total"] == 3000
    assert [e for e in logs if e["log_level"] == "error"] == []
