"""The seed price lists of config/tariffs.yaml, pinned: every range, every price, every payer.

A change to a range or a price of the shipped file must change this file too: the tables
below are what the price lists say (BH Telecom's CMC list for outgoing calls, its premium rate
list, its free phone and unique access list), written out rather than read from the file.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from callserver.cdr.rating import Increment, Payer, TariffKind
from callserver.config.tariffs import Tariffs, load_tariffs
from callserver.policy.numbering import NumberClass, NumberKind, normalise

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "tariffs.yaml"
MIN, CALL, FREE = TariffKind.PER_MINUTE, TariffKind.PER_CALL, TariffKind.FREE

# tariff: every payer's (payer, kind, price in KM without VAT)
PRICES: dict[str, tuple[tuple[Payer, TariffKind, str], ...]] = {
    "bih_fixed": ((Payer.CALLER, MIN, "0.044"),),
    "bih_mobile_ht_eronet": ((Payer.CALLER, MIN, "0.14"),),
    "bih_mobile_other": ((Payer.CALLER, MIN, "0.177"),),
    "croatia_fixed": ((Payer.CALLER, MIN, "0.300"),),
    "croatia_mobile": ((Payer.CALLER, MIN, "0.550"),),
    "serbia_montenegro_fixed": ((Payer.CALLER, MIN, "0.300"),),
    "serbia_montenegro_mobile": ((Payer.CALLER, MIN, "0.550"),),
    "slovenia_macedonia_fixed": ((Payer.CALLER, MIN, "0.300"),),
    "slovenia_macedonia_mobile": ((Payer.CALLER, MIN, "0.400"),),
    "europe_fixed": ((Payer.CALLER, MIN, "0.550"),),
    "europe_mobile": ((Payer.CALLER, MIN, "0.690"),),
    "world_fixed": ((Payer.CALLER, MIN, "0.690"),),
    "world_mobile": ((Payer.CALLER, MIN, "0.890"),),
    "satellite": ((Payer.CALLER, MIN, "7.99"),),
    "premium_t1": ((Payer.CALLER, MIN, "0.120"),),
    "premium_t2": ((Payer.CALLER, MIN, "0.450"),),
    "premium_t3": ((Payer.CALLER, MIN, "0.604"),),
    "premium_t4": ((Payer.CALLER, MIN, "0.805"),),
    "premium_t5": ((Payer.CALLER, MIN, "1.210"),),
    "premium_t6": ((Payer.CALLER, MIN, "1.610"),),
    "premium_t7": ((Payer.CALLER, MIN, "2.420"),),
    "premium_t8": ((Payer.CALLER, MIN, "3.020"),),
    "premium_call_049": ((Payer.CALLER, CALL, "0.49"),),
    "premium_call_099": ((Payer.CALLER, CALL, "0.99"),),
    "premium_call_125": ((Payer.CALLER, CALL, "1.25"),),
    "free_phone": ((Payer.CALLED, FREE, "0"),),
    "emergency": ((Payer.NONE, FREE, "0"),),
    "unique_access_bh_telecom_fixed": ((Payer.CALLER, MIN, "0.042"), (Payer.CALLED, MIN, "0.020")),
    "unique_access_other_fixed": ((Payer.CALLED, MIN, "0.077"),),
    "forwarded_abroad_zone_1": ((Payer.CALLER, MIN, "0.300"),),
    "forwarded_abroad_zone_2": ((Payer.CALLER, MIN, "0.550"),),
    "forwarded_abroad_zone_3": ((Payer.CALLER, MIN, "0.690"),),
}

EUROPE = (
    *("+30", "+31", "+32", "+33", "+34", "+350", "+351", "+352", "+353", "+354", "+355"),
    *("+356", "+357", "+358", "+359", "+36", "+370", "+371", "+372", "+373", "+375", "+376"),
    *("+377", "+378", "+380", "+383", "+39", "+40", "+41", "+420", "+421", "+423", "+43"),
    *("+44", "+45", "+46", "+47", "+48", "+49", "+298"),
)


def _tiers(digit: int) -> tuple[str, ...]:
    return tuple(f"{prefix} 2{digit}" for prefix in ("090", "092", "094"))


# class: (kind, tariff, mobile tariff, zone, max_duration, patterns)
RANGES: dict[str, tuple[NumberKind, str, str | None, str | None, float | None, tuple[str, ...]]] = {
    "bih_geographic": (NumberKind.GEOGRAPHIC, "bih_fixed", None, "bih", None, ("03", "049", "05")),
    "bih_mobile_ht_eronet": (
        NumberKind.MOBILE,
        "bih_mobile_ht_eronet",
        None,
        "bih",
        None,
        ("063", "0644"),
    ),
    "bih_mobile": (NumberKind.MOBILE, "bih_mobile_other", None, "bih", None, ("06",)),
    "free_phone": (NumberKind.FREE_PHONE, "free_phone", None, "bih", None, ("080", "088")),
    "unique_access": (NumberKind.UNIQUE_ACCESS, "bih_fixed", None, "bih", None, ("081 92x xxx",)),
    "bih_other": (NumberKind.NATIONAL_OTHER, "bih_fixed", None, "bih", None, ("0",)),
    **{
        f"premium_t{d}": (
            NumberKind.PREMIUM_PER_MINUTE,
            f"premium_t{d}",
            None,
            "premium",
            None,
            _tiers(d),
        )
        for d in range(1, 9)
    },
    "premium_other": (NumberKind.PREMIUM_PER_MINUTE, "premium_t8", None, "premium", None, ("09",)),
    "premium_call_049": (
        NumberKind.PREMIUM_PER_CALL,
        "premium_call_049",
        None,
        "premium",
        180,
        ("090 291 1xx", "092 291 xxx", "094 291 xxx"),
    ),
    "premium_call_099": (
        NumberKind.PREMIUM_PER_CALL,
        "premium_call_099",
        None,
        "premium",
        180,
        ("090 292 1xx", "092 292 xxx", "094 292 xxx"),
    ),
    "premium_call_125": (
        NumberKind.PREMIUM_PER_CALL,
        "premium_call_125",
        None,
        "premium",
        180,
        ("090 293 1xx", "092 293 xxx", "094 293 xxx"),
    ),
    "emergency": (
        NumberKind.EMERGENCY,
        "emergency",
        None,
        None,
        None,
        ("112", "122", "123", "124"),
    ),
    "short": (NumberKind.SHORT, "bih_fixed", None, None, None, ("x",)),
    "croatia": (
        NumberKind.INTERNATIONAL,
        "croatia_fixed",
        "croatia_mobile",
        "croatia",
        None,
        ("+385",),
    ),
    "serbia_montenegro": (
        NumberKind.INTERNATIONAL,
        "serbia_montenegro_fixed",
        "serbia_montenegro_mobile",
        "serbia_montenegro",
        None,
        ("+381", "+382"),
    ),
    "slovenia_macedonia": (
        NumberKind.INTERNATIONAL,
        "slovenia_macedonia_fixed",
        "slovenia_macedonia_mobile",
        "slovenia_macedonia",
        None,
        ("+386", "+389"),
    ),
    "europe": (NumberKind.INTERNATIONAL, "europe_fixed", "europe_mobile", "europe", None, EUROPE),
    "satellite": (
        NumberKind.SATELLITE,
        "satellite",
        None,
        "satellite",
        None,
        ("+870", "+881", "+882"),
    ),
    "world": (NumberKind.INTERNATIONAL, "world_fixed", "world_mobile", "world", None, ("+",)),
}
NETWORKS = {
    "bh_telecom_fixed": ("030", "032", "033", "035", "037", "038"),
    "bh_telecom_mobile": ("061", "062"),
    "other_fixed": ("03", "049", "05"),
}
UNIQUE_ACCESS_FROM = {
    "bh_telecom_fixed": "unique_access_bh_telecom_fixed",
    "bh_telecom_mobile": "bih_fixed",
    "other_fixed": "unique_access_other_fixed",
}
SURCHARGES = {
    "croatia": "forwarded_abroad_zone_1",
    "serbia_montenegro": "forwarded_abroad_zone_1",
    "slovenia_macedonia": "forwarded_abroad_zone_2",
    "europe": "forwarded_abroad_zone_2",
    "world": "forwarded_abroad_zone_3",
}


@pytest.fixture(scope="module")
def shipped() -> Tariffs:
    return load_tariffs(SHIPPED)


def _classes(tariffs: Tariffs) -> dict[str, NumberClass]:
    return {number_class.name: number_class for number_class in tariffs.plan.classes}


def _number_in(pattern: str) -> str:
    """A number of the range ``pattern``: its x digits 5, then 7s up to a full length (no
    narrower range of the file begins with a 7 where a catch-all's number continues)."""
    digits = pattern.replace(" ", "").replace("x", "5")
    if digits.startswith("+"):
        return digits + "7" * (12 - len(digits))
    if digits.startswith("0"):
        return digits + "7" * (9 - len(digits))
    return digits  # a short code: the pattern's own digits


def test_every_tariff_of_the_file_is_pinned(shipped: Tariffs) -> None:
    """The file's tariffs are exactly the pinned ones: a new price needs its row here."""
    assert sorted(shipped.tariffs) == sorted(PRICES)


@pytest.mark.parametrize(("name", "shares"), PRICES.items(), ids=list(PRICES))
def test_every_price_and_payer_of_the_seed_price_lists(
    shipped: Tariffs, name: str, shares: tuple[tuple[Payer, TariffKind, str], ...]
) -> None:
    """Each tariff charges exactly its payers the exact Decimal price, billed per second."""
    tariff = shipped.tariffs[name]
    got = [(share.payer, share.kind, share.price) for share in tariff.shares]
    assert got == [(payer, kind, Decimal(price)) for payer, kind, price in shares]
    assert all(share.increment == Increment(1, 1) for share in tariff.shares)


def test_every_class_and_range_of_the_file_is_pinned(shipped: Tariffs) -> None:
    """The plan's classes and their ranges are exactly the pinned ones, in the file's order."""
    by_class: dict[str, list[str]] = {}
    for pattern, number_class in shipped.plan.rules:
        by_class.setdefault(number_class.name, []).append(pattern.text)
    assert {name: tuple(texts) for name, texts in by_class.items()} == {
        name: row[5] for name, row in RANGES.items()
    }


RANGE_CASES = [(name, pattern) for name, row in RANGES.items() for pattern in row[5]]


@pytest.mark.parametrize(("name", "pattern"), RANGE_CASES, ids=[f"{n}:{p}" for n, p in RANGE_CASES])
def test_every_range_classifies_to_its_class_kind_tariff_zone_and_cap(
    shipped: Tariffs, name: str, pattern: str
) -> None:
    """A number of each range is in its class, with its kind, tariffs, zone and cap."""
    kind, tariff, mobile_tariff, zone, cap, _ = RANGES[name]
    number = _number_in(pattern)
    assert shipped.classify(number).name == name, number
    number_class = _classes(shipped)[name]
    assert (number_class.kind, number_class.tariff, number_class.mobile_tariff) == (
        kind,
        tariff,
        mobile_tariff,
    )
    assert (number_class.zone, number_class.max_duration) == (zone, cap)


@pytest.mark.parametrize(
    ("number", "name", "price"),
    [
        ("092 292 000", "premium_call_099", "0.99"),
        ("092 292 999", "premium_call_099", "0.99"),
        ("094 292 123", "premium_call_099", "0.99"),
        ("+38794292123", "premium_call_099", "0.99"),
        ("090 292 100", "premium_call_099", "0.99"),
        ("092 293 000", "premium_call_125", "1.25"),
        ("094 293 999", "premium_call_125", "1.25"),
        ("0038792293123", "premium_call_125", "1.25"),
        ("090 293 199", "premium_call_125", "1.25"),
    ],
)
def test_092_and_094_per_call_ranges_are_no_longer_rated_t8(
    shipped: Tariffs, number: str, name: str, price: str
) -> None:
    """092/094 292 xxx cost 0.99 KM and 092/094 293 xxx 1.25 KM a call, capped at 180 s."""
    number_class = shipped.classify(number)
    assert number_class.name == name
    (rating,) = shipped.charges(number_class, 600)
    assert (rating.kind, rating.cost, rating.billed_units) == (CALL, Decimal(price), 1)
    assert shipped.duration_cap(number_class) == 180
    assert shipped.warn_before(number_class) == 30  # the global warning: the class has a cap


def test_only_the_1xx_block_of_090_292_and_090_293_is_per_call(shipped: Tariffs) -> None:
    """090 292 2xx is no per-call number: it stays in the catch-all premium class (T8)."""
    assert shipped.classify("090 292 200").name == "premium_other"
    assert shipped.classify("090 293 999").name == "premium_other"


def test_callers_networks_and_the_unique_access_tariffs_are_pinned(shipped: Tariffs) -> None:
    """BH Telecom's fixed and mobile networks and other fixed networks, and what each pays."""
    assert shipped.networks is not None
    by_network: dict[str, list[str]] = {}
    for pattern, network in shipped.networks.rules:
        by_network.setdefault(network, []).append(pattern.text)
    assert {k: tuple(v) for k, v in by_network.items()} == NETWORKS
    assert dict(_classes(shipped)["unique_access"].tariff_from) == UNIQUE_ACCESS_FROM
    assert dict(shipped.surcharges) == SURCHARGES


@pytest.mark.parametrize(
    ("caller", "network", "charges"),
    [
        (
            "+38733123456",
            "bh_telecom_fixed",
            [("caller", "0.0420", "0.0071"), ("called", "0.0200", "0.0034")],
        ),
        (
            "035 123 456",
            "bh_telecom_fixed",
            [("caller", "0.0420", "0.0071"), ("called", "0.0200", "0.0034")],
        ),
        ("+38761123456", "bh_telecom_mobile", [("caller", "0.0440", "0.0075")]),
        ("062 123 456", "bh_telecom_mobile", [("caller", "0.0440", "0.0075")]),
        ("+38736123456", "other_fixed", [("called", "0.0770", "0.0131")]),
        ("051 123 456", "other_fixed", [("called", "0.0770", "0.0131")]),
        ("049 123 456", "other_fixed", [("called", "0.0770", "0.0131")]),
        ("+38765123456", None, [("caller", "0.0440", "0.0075")]),
        ("+385 1 234 5678", None, [("caller", "0.0440", "0.0075")]),
        ("anonymous", None, [("caller", "0.0440", "0.0075")]),
        (None, None, [("caller", "0.0440", "0.0075")]),
    ],
)
def test_unique_access_split_charge_by_the_callers_network(
    shipped: Tariffs, caller: str | None, network: str | None, charges: list[tuple[str, str, str]]
) -> None:
    """One minute to 081 92X XXX: who pays what depends on the network the caller is on."""
    assert shipped.network_of(caller) == network
    ratings = shipped.charges(shipped.classify("081 920 123"), 60, caller=caller)
    assert [(r.payer.value, str(r.cost), str(r.vat)) for r in ratings] == charges
    assert all(r.total == r.cost + r.vat and r.billed_seconds == 60 for r in ratings)


@pytest.mark.parametrize(
    ("target", "forwarded_from", "tariffs"),
    [
        ("+385 1 234 5678", "080 050 050", ["croatia_fixed", "forwarded_abroad_zone_1"]),
        ("+381 11 123 4567", "081 920 123", ["serbia_montenegro_fixed", "forwarded_abroad_zone_1"]),
        ("+386 1 123 4567", "080 050 050", ["slovenia_macedonia_fixed", "forwarded_abroad_zone_2"]),
        ("+49 30 1234 5678", "081 920 123", ["europe_fixed", "forwarded_abroad_zone_2"]),
        ("+1 212 555 1234", "088 123 456", ["world_fixed", "forwarded_abroad_zone_3"]),
        ("+870 773 112 345", "080 050 050", ["satellite"]),
        ("+49 30 1234 5678", "033 100 200", ["europe_fixed"]),
        ("033 100 300", "080 050 050", ["bih_fixed"]),
        ("+49 30 1234 5678", None, ["europe_fixed"]),
    ],
)
def test_free_phone_and_unique_access_forwarded_abroad_carry_the_zone_surcharge(
    shipped: Tariffs, target: str, forwarded_from: str | None, tariffs: list[str]
) -> None:
    """A forwarded leg is paid by the subscriber; abroad from 080/088/081 a zone surcharge too."""
    ratings = shipped.forwarded_charges(shipped.classify(target), 60, forwarded_from=forwarded_from)
    assert [r.tariff for r in ratings] == tariffs
    assert {r.payer for r in ratings} == {Payer.CALLED}
    for rating in ratings:
        price = shipped.tariffs[rating.tariff].price
        assert rating.cost == price.quantize(Decimal("0.0001"))  # one minute at that price


def test_the_price_lists_are_named_as_their_publisher_names_them() -> None:
    """Outgoing calls are BH Telecom's CMC price list, never the Business Trunking one."""
    text = SHIPPED.read_text(encoding="utf-8")
    assert "# BH Telecom CMC price list: outgoing calls" in text
    assert "(BH Telecom CMC price list zones)" in text
    assert "Business Trunking price list" not in text
    assert "free phone and unique access price list" in text


def test_a_number_of_a_range_normalises_to_its_e164_form() -> None:
    """The representative numbers of the ranges are telephone numbers (the helper is sound)."""
    assert normalise(_number_in("081 92x xxx")) == "+38781925555"
    assert normalise(_number_in("+385")) == "+38577777777"
    assert normalise(_number_in("09")) == "+38797777777"
