"""`callserver rate`: what a call to a number is and who pays what, as text and JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli import ROOT, callserver

RATE_KEYS = {"number_e164", "class", "kind", "zone", "barring", "max_duration", "warn_before"}
CHARGE_KEYS = {"payer", "tariff", "billed_seconds", "cost", "vat", "total", "currency"}


def rate_json(*args: str) -> dict[str, object]:
    """`callserver rate ARGS --format json`, which must succeed, as a dict."""
    result = callserver("rate", *args, "--format", "json")
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict) and set(data) >= RATE_KEYS
    return data


def test_rate_prints_class_cap_warning_and_the_callers_charge() -> None:
    """`callserver rate 092 292 123`: a 0.99 KM per-call premium number capped at 180 s."""
    result = callserver("rate", "092", "292", "123")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "number        +38792292123",
        "class         premium_call_099 (premium_per_call), zone premium",
        "barring       premium",
        "max_duration  180 s",
        "warn_before   30 s",
        "caller        +38733123456 (network bh_telecom_fixed)",
        "seconds       60",
        "payer caller  premium_call_099: 0.99 KM/call, 60 s billed (1 unit), "
        "cost 0.9900 + VAT 0.1683 = 1.1583 KM",
    ]


def test_rate_json_gives_every_payer_of_the_unique_access_number() -> None:
    """From the default BiH fixed caller, 081 92X XXX charges the caller and the subscriber."""
    data = rate_json("081 920 123", "--seconds", "90")
    assert {k: data[k] for k in sorted(RATE_KEYS)} == {
        "barring": [],
        "class": "unique_access",
        "kind": "unique_access",
        "max_duration": None,
        "number_e164": "38781920123",
        "warn_before": None,
        "zone": "bih",
    }
    assert data["caller_network"] == "bh_telecom_fixed"
    charges = data["charges"]
    assert isinstance(charges, list)
    assert all(set(charge) >= CHARGE_KEYS for charge in charges)
    assert [
        (c["payer"], c["per_minute"], c["billed_seconds"], c["cost"], c["vat"], c["total"])
        for c in charges
    ] == [
        ("caller", "0.042", 90, "0.0630", "0.0107", "0.0737"),
        ("called", "0.02", 90, "0.0300", "0.0051", "0.0351"),
    ]


@pytest.mark.parametrize(
    ("caller", "payers"),
    [
        ("061 234 567", [("caller", "bih_fixed", "0.0440")]),
        ("+38736123456", [("called", "unique_access_other_fixed", "0.0770")]),
    ],
)
def test_rate_with_a_caller_of_another_network(
    caller: str, payers: list[tuple[str, str, str]]
) -> None:
    """--caller decides the unique access split: BH Telecom mobile, or another fixed network."""
    charges = rate_json("081920123", "--caller", caller)["charges"]
    assert isinstance(charges, list)
    assert [(c["payer"], c["tariff"], c["cost"]) for c in charges] == payers


def test_rate_json_of_an_international_mobile_and_of_an_emergency_number() -> None:
    """Croatian mobiles at 0.55 KM/min (95 s), 112 free for everyone with no E.164 form."""
    croatia = rate_json("+385 91 123 4567", "--seconds", "95")
    assert (croatia["class"], croatia["zone"], croatia["barring"]) == (
        "croatia",
        "croatia",
        ["international"],
    )
    assert croatia["charges"] == [
        {
            "payer": "caller",
            "tariff": "croatia_mobile",
            "per_minute": "0.55",
            "billed_units": 95,
            "billed_seconds": 95,
            "cost": "0.8708",
            "vat": "0.1480",
            "total": "1.0188",
            "currency": "KM",
        }
    ]
    emergency = rate_json("112")
    assert (emergency["number_e164"], emergency["kind"]) == (None, "emergency")
    charges = emergency["charges"]
    assert isinstance(charges, list) and [c["total"] for c in charges] == ["0.0000"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("abc",), "callserver rate: 'abc' is not a telephone number"),
        (("0999999999999999999",), "callserver rate: '0999999999999999999' has more than"),
        (("081920123", "--caller", "x1"), "callserver rate: caller: 'x1' is not a telephone"),
        (("033100200", "--seconds", "-5"), "callserver rate: --seconds must be 0 or more"),
    ],
)
def test_rate_refuses_what_it_cannot_parse(args: tuple[str, ...], message: str) -> None:
    """A number, caller or length it cannot read exits 1 with one clear line, nothing on stdout."""
    result = callserver("rate", *args)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1, result.stderr


def test_rate_reads_the_tariffs_file_of_the_settings_given(tmp_path: Path) -> None:
    """--config points at settings whose tariffs file the quote uses, warn_before included."""
    tariffs = tmp_path / "tariffs.yaml"
    text = (ROOT / "config" / "tariffs.yaml").read_text(encoding="utf-8")
    tariffs.write_text(
        text.replace(
            "premium_call_099: {per_call: 0.99}", "premium_call_099: {per_call: 1.10}"
        ).replace(
            '    max_duration: 180\n    patterns: ["090 292',
            '    max_duration: 10\n    warn_before: 5\n    patterns: ["090 292',
        ),
        encoding="utf-8",
    )
    settings = tmp_path / "callserver.yaml"
    settings.write_text(f"tariffs: {tariffs}\n", encoding="utf-8")
    data = rate_json("094 292 000", "--config", str(settings))
    assert (data["max_duration"], data["warn_before"]) == (10, 5)
    charges = data["charges"]
    assert isinstance(charges, list) and charges[0]["per_call"] == "1.1"
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"tariffs: {tmp_path / 'missing.yaml'}\n", encoding="utf-8")
    result = callserver("rate", "033100200", "--config", str(broken))
    assert result.returncode == 1 and "missing.yaml: cannot read" in result.stderr
