"""Who pays what, end to end: the charges of a unique access call and of a forward abroad.

SIPp calls `callserver run` on 127.0.0.1 and the records are read back with `callserver cdr
export`, as JSON lines and as CSV. The amounts are recomputed here from the record's billsec
and the prices config/tariffs.yaml writes (``tests.e2e.rated_cdrs``), apart from
callserver's own rating.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from callserver.cdr.export import CSV_COLUMNS
from tests.e2e.conftest import plan_dir, run_scenario, start_server, stopped_on_exit, uas_leg
from tests.e2e.rated_cdrs import (
    HOLD_MS,
    Record,
    acme_trunks,
    expected_amounts,
    log_tail,
    stopped_cdrs,
)

UNIQUE_ACCESS = "081920123"
BH_TELECOM_FIXED_CALLER = "033200300"  # Sarajevo: BH Telecom's fixed network in the seed list
FREE_PHONE = "38780050050"  # a free-phone number whose dialplan forwards abroad
ABROAD = "+38512345678"  # a Croatian fixed number: zone I


def _charge(payer: str, tariff: str, billsec: int) -> Record:
    """The charge ``payer`` owes for ``billsec`` s at the price the file gives ``tariff``."""
    units, seconds, cost, vat = expected_amounts(tariff, billsec)
    return {
        "payer": payer,
        "tariff": tariff,
        "billed_units": units,
        "billed_seconds": seconds,
        "cost": str(cost),
        "vat": str(vat),
    }


def _csv_charges(data_dir: Path) -> list[object]:
    """The charges column of each CSV row of `callserver cdr export --format csv`."""
    export = [sys.executable, "-m", "callserver", "cdr", "export", "--format", "csv"]
    proc = subprocess.run(
        [*export, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    later = list(CSV_COLUMNS[CSV_COLUMNS.index("charges") :])
    assert list(rows[0])[-len(later) :] == later  # columns added since charges come last
    return [json.loads(row["charges"]) for row in rows]


def test_a_unique_access_call_from_bh_telecoms_fixed_network_has_two_payers(
    sipp: str, tmp_path: Path
) -> None:
    """081 92X XXX from 033: the caller's 0.042 and the subscriber's 0.020 KM/min, both kept."""
    with stopped_on_exit(start_server(tmp_path, trunks=acme_trunks())) as server:
        result = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-caller-hangs-up-after-answer.xml",
            *("-s", UNIQUE_ACCESS, "-m", "1", "-key", "caller", BH_TELECOM_FIXED_CALLER),
            *("-d", str(HOLD_MS)),
        )
    assert result.returncode == 0, result.output[-2000:] + log_tail(server)
    (record,) = stopped_cdrs(server, 1)
    billsec = record["billsec"]
    assert isinstance(billsec, int) and billsec >= 1, record
    shares = _split_prices(billsec)
    assert record["charges"] == shares, record
    assert (record["payer"], record["cost"], record["vat"]) == (
        "caller",
        shares[0]["cost"],
        shares[0]["vat"],
    )
    assert _csv_charges(server.data_dir) == [shares]


def _split_prices(billsec: int) -> list[Record]:
    """The unique access split from BH Telecom's fixed network, recomputed at 0.042 / 0.020."""
    out = []
    for payer, price in (("caller", "0.042"), ("called", "0.020")):
        cost = (Decimal(price) * billsec / 60).quantize(Decimal("0.0001"))
        vat = (cost * Decimal("0.17")).quantize(Decimal("0.0001"))
        out.append(
            {
                "payer": payer,
                "tariff": "unique_access_bh_telecom_fixed",
                "billed_units": billsec,
                "billed_seconds": billsec,
                "cost": str(cost),
                "vat": str(vat),
            }
        )
    return out


def test_a_free_phone_call_forwarded_abroad_carries_the_zone_surcharge(
    sipp: str, tmp_path: Path
) -> None:
    """080 forwarded to Croatia: the b-leg's subscriber pays the Croatian price and zone I."""
    plans = plan_dir(
        tmp_path, FREE_PHONE, f'steps:\n  out:\n    forward: "{ABROAD}"\n    ring_timeout: 10s\n'
    )
    with (
        uas_leg(sipp, tmp_path, "-sn", "uas") as (uas, uas_port),
        stopped_on_exit(
            start_server(tmp_path, dialplans=plans, trunks=acme_trunks(2, uas_port))
        ) as server,
    ):
        caller = run_scenario(
            sipp,
            tmp_path,
            server,
            "uac-caller-hangs-up-after-answer.xml",
            *("-s", FREE_PHONE, "-m", "1", "-key", "caller", BH_TELECOM_FIXED_CALLER),
            *("-d", str(HOLD_MS)),
        )
        uas_out, _ = uas.communicate(timeout=30)
    assert caller.returncode == 0, caller.output[-2000:] + log_tail(server)
    assert uas.returncode == 0, uas_out[-2000:] + log_tail(server)
    records = stopped_cdrs(server, 2)
    legs = {str(record["leg"]): record for record in records}
    a, b = legs["a"], legs["b"]
    billsec = b["billsec"]
    assert isinstance(billsec, int) and billsec >= 1, b
    assert b["charges"] == [
        _charge("called", "croatia_fixed", billsec),
        _charge("called", "forwarded_abroad_zone_1", billsec),
    ], b
    assert (b["tariff"], b["payer"]) == ("croatia_fixed", "called")
    assert a["charges"] == [
        {
            "payer": "called",
            "tariff": "free_phone",
            "billed_units": a["billsec"],
            "billed_seconds": a["billsec"],
            "cost": "0.0000",
            "vat": "0.0000",
        }
    ], a
