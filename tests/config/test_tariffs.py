"""config/tariffs.yaml: the shipped file and its seed values, and errors that name file:line."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from callserver.cdr.rating import Increment, Payer, TariffKind
from callserver.config.errors import OperatorFileError
from callserver.config.tariffs import Tariffs, load_tariffs
from callserver.policy.barring import BarringClass
from callserver.policy.numbering import NumberKind

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "tariffs.yaml"

MINIMAL = """\
vat_rate: 0.17
tariffs:
  fixed: {per_minute: 0.044}
  call: {per_call: 0.49, increment: 60/60}
  free: {free: true, payer: called}
classes:
  geo:
    kind: geographic
    tariff: fixed
    patterns: ["03"]
  premium_call:
    kind: premium_per_call
    tariff: call
    max_duration: 180
    patterns: ["092 291 xxx"]
"""


@pytest.fixture(scope="module")
def shipped() -> Tariffs:
    return load_tariffs(SHIPPED)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tariffs.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def errors_of(path: Path) -> list[str]:
    with pytest.raises(OperatorFileError) as info:
        load_tariffs(path)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


# -- the shipped file ---------------------------------------------------------------------------


def test_shipped_file_loads(shipped: Tariffs) -> None:
    """config/tariffs.yaml loads, with 17 % VAT in KM and the 4 h default cap."""
    assert shipped.vat_rate == Decimal("0.17")
    assert shipped.currency == "KM"
    assert shipped.default_max_duration == 14400
    assert shipped.plan.country_code == "387"


def test_shipped_per_call_premium_seed_values(shipped: Tariffs) -> None:
    """092 291 123 costs 0.49 KM a call (0.57 with VAT) and is capped at 180 s."""
    number_class = shipped.classify("092 291 123")
    assert number_class.max_duration == 180 and shipped.duration_cap(number_class) == 180
    tariff = shipped.tariff_of(number_class)
    assert (tariff.kind, tariff.price) == (TariffKind.PER_CALL, Decimal("0.49"))
    (rating,) = shipped.charges(number_class, 179)
    assert (rating.cost, rating.total) == (Decimal("0.4900"), Decimal("0.5733"))
    assert shipped.tariff_of(shipped.classify("090 292 100")).price == Decimal("0.99")
    assert shipped.tariff_of(shipped.classify("090 293 100")).price == Decimal("1.25")


@pytest.mark.parametrize(
    ("name", "price"),
    [
        ("bih_fixed", "0.044"),
        ("bih_mobile_ht_eronet", "0.14"),
        ("bih_mobile_other", "0.177"),
        ("croatia_fixed", "0.300"),
        ("croatia_mobile", "0.550"),
        ("serbia_montenegro_mobile", "0.550"),
        ("slovenia_macedonia_mobile", "0.400"),
        ("europe_fixed", "0.550"),
        ("europe_mobile", "0.690"),
        ("world_fixed", "0.690"),
        ("world_mobile", "0.890"),
        ("satellite", "7.99"),
        ("premium_t1", "0.120"),
        ("premium_t2", "0.450"),
        ("premium_t3", "0.604"),
        ("premium_t4", "0.805"),
        ("premium_t5", "1.210"),
        ("premium_t6", "1.610"),
        ("premium_t7", "2.420"),
        ("premium_t8", "3.020"),
    ],
)
def test_shipped_per_minute_seed_prices_are_exact_decimals(
    shipped: Tariffs, name: str, price: str
) -> None:
    """Each seed price is the exact Decimal written in the file, billed per second."""
    tariff = shipped.tariffs[name]
    assert (tariff.kind, tariff.price, tariff.increment) == (
        TariffKind.PER_MINUTE,
        Decimal(price),
        Increment(1, 1),
    )
    assert tariff.price == tariff.price.quantize(Decimal("0.001"))  # no binary fraction crept in


def test_shipped_croatian_mobile_and_free_phone(shipped: Tariffs) -> None:
    """Croatian mobiles rate at 0.550 KM/min; free phone costs the caller nothing."""
    croatia = shipped.classify("00385 98 123 4567")
    assert shipped.tariff_of(croatia).price == Decimal("0.550")
    assert [r.cost for r in shipped.charges(croatia, 60)] == [Decimal("0.5500")]
    (free,) = shipped.charges(shipped.classify("080 050 050"), 600)
    assert (free.total, free.payer) == (Decimal(0), Payer.CALLED)
    (inside,) = shipped.charges(croatia, 60, inside_group=True)
    assert inside.total == Decimal(0)


def test_shipped_file_names_the_sources_of_its_values() -> None:
    """The seed values carry comments naming the service they come from."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert "# BH Telecom CMC price list: outgoing calls" in text
    assert "Business Trunking price list" not in text  # the outgoing list's name is CMC's
    assert "# per-call premium numbers: regulator rule, max 3 minutes" in text


def test_every_shipped_class_has_its_default_barring(shipped: Tariffs) -> None:
    """Shipped classes use the barring classes of their kind."""
    premium = shipped.classify("090 211 234")
    assert premium.barring == {BarringClass.PREMIUM}
    assert shipped.classify("112").barring == frozenset()


# -- a minimal file -----------------------------------------------------------------------------


def test_minimal_file_defaults(tmp_path: Path) -> None:
    """country code 387, per-second increments and the 4 h cap are the defaults."""
    tariffs = load_tariffs(write(tmp_path, MINIMAL))
    assert tariffs.tariffs["fixed"].increment == Increment(1, 1)
    assert tariffs.tariffs["call"].increment == Increment(60, 60)
    assert tariffs.tariffs["free"].payer is Payer.CALLED
    assert tariffs.classify("+38733123456").kind is NumberKind.GEOGRAPHIC
    assert tariffs.default_max_duration == 14400


def test_quoted_prices_and_explicit_barring(tmp_path: Path) -> None:
    """Prices may be quoted strings; a class's own barring list replaces the default."""
    text = MINIMAL.replace("per_minute: 0.044", 'per_minute: "0.0440"').replace(
        'patterns: ["03"]', 'patterns: ["03"]\n    barring: [premium, short]'
    )
    tariffs = load_tariffs(write(tmp_path, text))
    assert tariffs.tariffs["fixed"].price == Decimal("0.0440")
    assert tariffs.classify("033 1").barring == {BarringClass.PREMIUM, BarringClass.SHORT}


# -- errors -------------------------------------------------------------------------------------

CASES = [
    # (replace this, with this, expected error)
    (
        "    max_duration: 180\n",
        "    max_duration: 20000\n",
        ":14: classes.premium_call.max_duration: 20000 s exceeds default_max_duration",
    ),
    ("    max_duration: 180\n", "", ":11: classes.premium_call.max_duration: a per-call"),
    (
        "    max_duration: 180\n",
        "    max_duration: -5\n",
        ":14: classes.premium_call.max_duration: Input should be greater than 0",
    ),
    (
        "    max_duration: 180\n",
        "    max_duration: 180\n    warn_before: 180\n",
        ":15: classes.premium_call.warn_before: the warning must come before the cap",
    ),
    ("    tariff: fixed\n", "    tariff: fixd\n", ":9: classes.geo.tariff: unknown tariff 'fixd'"),
    (
        "    tariff: call\n",
        "    tariff: fixed\n",
        ":13: classes.premium_call.tariff: premium_per_call classes need a per_call tariff",
    ),
    (
        '    patterns: ["03"]\n',
        "    patterns: [03]\n",
        ":10: classes.geo.patterns: pattern 3 is not quoted",
    ),
    (
        '    patterns: ["03"]\n',
        '    patterns: ["0 3", "03"]\n',
        ":10: classes.geo.patterns.1: pattern '03' is the same as '0 3' "
        "(at classes.geo.patterns.0)",
    ),
    (
        '    patterns: ["03"]\n',
        '    patterns: ["03a"]\n',
        ":10: classes.geo.patterns.0: pattern '03a': use digits",
    ),
    (
        '    patterns: ["03"]\n',
        '    patterns: ["03"]\n    mobile_tariff: fixed\n',
        ":11: classes.geo.mobile_tariff: only international classes have a mobile tariff",
    ),
    (
        '    patterns: ["03"]\n',
        '    patterns: ["03"]\n    barring: [outside_group]\n',
        ":11: classes.geo.barring: outside_group depends on the caller's group",
    ),
    (
        '    patterns: ["03"]\n',
        '    patterns: ["03"]\n    barring: [premum]\n',
        ":11: classes.geo.barring.0: Input should be",
    ),
    ("kind: geographic", "kind: geografic", ":8: classes.geo.kind: Input should be"),
    (
        "  fixed: {per_minute: 0.044}",
        "  fixed: {per_minute: 0.044, per_call: 1}",
        ":3: tariffs.fixed: give exactly one of per_minute",
    ),
    (
        "  fixed: {per_minute: 0.044}",
        "  fixed: {per_minute: -0.044}",
        ":3: tariffs.fixed.per_minute: Input should be greater than or equal to 0",
    ),
    (
        "  fixed: {per_minute: 0.044}",
        "  fixed: {per_minute: .inf}",
        ":3: tariffs.fixed.per_minute: Input should be a finite number",
    ),
    (
        "  fixed: {per_minute: 0.044}",
        "  fixed: {per_minute: true}",
        ":3: tariffs.fixed.per_minute: a price is a number of KM",
    ),
    (
        "  fixed: {per_minute: 0.044}",
        "  fixed: {per_minute: 0.044, payer: called}",
        ":3: tariffs.fixed: payer is only for free tariffs",
    ),
    (
        "increment: 60/60",
        "increment: 60/0",
        ":4: tariffs.call.increment: billing increments must be at least 1 s",
    ),
    ("vat_rate: 0.17", "vat_rate: 17", ":1: vat_rate: Input should be less than or equal to 1"),
    (
        "vat_rate: 0.17",
        "vat_rate: 0.17\nvat: 1",
        ":2: vat: unknown key (misspelt, or in the wrong place?)",
    ),
]


@pytest.mark.parametrize(("old", "new", "error"), CASES)
def test_errors_name_file_line_and_field(tmp_path: Path, old: str, new: str, error: str) -> None:
    """Each invalid value is reported as file:line: field: message."""
    assert old in MINIMAL
    path = write(tmp_path, MINIMAL.replace(old, new, 1))
    errors = errors_of(path)
    assert any(line.startswith(f"{path}{error}") for line in errors), errors


def test_an_emergency_class_cannot_be_barred(tmp_path: Path) -> None:
    """Emergency numbers never belong to a barring class, nor take a priced tariff."""
    text = MINIMAL + (
        "  sos:\n    kind: emergency\n    tariff: fixed\n    barring: [short]\n"
        '    patterns: ["112"]\n'
    )
    errors = errors_of(write(tmp_path, text))
    assert [e.split("tariffs.yaml", 1)[1] for e in errors] == [
        ":18: classes.sos.tariff: emergency classes need a free tariff; 'fixed' is per_minute",
        ":19: classes.sos.barring: emergency numbers must never be barred",
    ]


def test_overlapping_patterns_across_classes(tmp_path: Path) -> None:
    """Two classes whose patterns tie for the same numbers are refused, naming both."""
    text = MINIMAL + '  other:\n    kind: geographic\n    tariff: fixed\n    patterns: ["0x"]\n'
    text = text.replace('patterns: ["03"]', 'patterns: ["x3"]')
    text = text.replace('patterns: ["0x"]', 'patterns: ["1x"]')
    errors = errors_of(write(tmp_path, text))
    assert any("classes.other.patterns.0: pattern '1x' overlaps 'x3'" in e for e in errors), errors


def test_file_level_errors(tmp_path: Path) -> None:
    """A missing file, bad YAML, a non-mapping, or missing sections are refused."""
    missing = tmp_path / "nope.yaml"
    assert errors_of(missing) == [f"{missing}: cannot read: No such file or directory"]
    assert errors_of(write(tmp_path, "tariffs: [\n"))[0].startswith(f"{tmp_path}/tariffs.yaml:2:")
    assert errors_of(write(tmp_path, "- 1\n")) == [
        f"{tmp_path}/tariffs.yaml:1: the file must hold a mapping (tariffs, classes, ...)"
    ]
    errors = errors_of(write(tmp_path, "vat_rate: 0.17\n"))
    assert [e.split(": ", 1)[1] for e in errors] == [
        "tariffs: Field required",
        "classes: Field required",
    ]
    (tmp_path / "latin.yaml").write_bytes(b"vat_rate: \xff\n")
    assert "not UTF-8" in errors_of(tmp_path / "latin.yaml")[0]
