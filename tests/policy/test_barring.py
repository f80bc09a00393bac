"""Outbound barring of forwarded legs: each barring class, the group, emergency, areas."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.tariffs import load_tariffs
from callserver.policy.barring import (
    DEFAULT_MEMBERSHIP,
    BarringClass,
    BarringRefusal,
    check_outbound,
    default_barring,
    parse_barring,
)
from callserver.policy.numbering import NumberKind, normalise

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "tariffs.yaml"
PLAN = load_tariffs(SHIPPED).plan
ALL = frozenset(BarringClass)


def check(number: str, barred: frozenset[BarringClass], **kwargs: object) -> BarringRefusal | None:
    return check_outbound(number, PLAN.classify(number), barred, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("number", "barring_class"),
    [
        ("090 291 123", BarringClass.PREMIUM),
        ("092 211 234", BarringClass.PREMIUM),
        ("096 123 456", BarringClass.PREMIUM),
        ("+385 91 123 4567", BarringClass.INTERNATIONAL),
        ("00870 773 112 345", BarringClass.INTERNATIONAL),
        ("063 123 456", BarringClass.MOBILE),
        ("066 123 456", BarringClass.MOBILE),
        ("033 123 456", BarringClass.LONG_DISTANCE),
        ("070 123 456", BarringClass.LONG_DISTANCE),
        ("1282", BarringClass.SHORT),
    ],
)
def test_each_barring_class_refuses_its_numbers_with_403(
    number: str, barring_class: BarringClass
) -> None:
    """A barred class gets 403 and the reason barred_<class>; the other classes let it through."""
    refusal = check(number, frozenset({barring_class}))
    assert refusal is not None
    assert (refusal.barring_class, refusal.status) == (barring_class, 403)
    assert refusal.reason == f"barred_{barring_class.value}"
    assert refusal.number == normalise(number)
    assert check(number, ALL - {barring_class, BarringClass.OUTSIDE_GROUP}) is None


@pytest.mark.parametrize("number", ["080 012 345", "081 920 123"])
def test_free_phone_and_unique_access_numbers_belong_to_no_barring_class(number: str) -> None:
    """Only outside_group bars free phone and unique access numbers."""
    assert check(number, ALL - {BarringClass.OUTSIDE_GROUP}) is None
    refusal = check(number, ALL)
    assert refusal is not None and refusal.barring_class is BarringClass.OUTSIDE_GROUP


@pytest.mark.parametrize("number", ["112", "122", "123", "124"])
def test_emergency_numbers_are_never_barred(number: str) -> None:
    """Even a trunk barred from everything reaches the emergency numbers."""
    assert check(number, ALL) is None


def test_outside_group_bars_everything_but_the_group() -> None:
    """With outside_group barred, only the caller's Centrex group numbers are reachable."""
    group = frozenset({normalise("033 123 456"), normalise("201")})
    assert check("+387 33 123 456", ALL, group_numbers=group) is None
    assert check("201", ALL, group_numbers=group) is None
    refusal = check("033 123 457", frozenset({BarringClass.OUTSIDE_GROUP}), group_numbers=group)
    assert refusal is not None and refusal.reason == "barred_outside_group"


def test_group_numbers_pass_every_barring_class() -> None:
    """A group member on a mobile number is still inside the group, so never barred."""
    group = frozenset({normalise("061 111 222")})
    assert check("061 111 222", ALL, group_numbers=group) is None
    assert check("061 111 223", frozenset({BarringClass.MOBILE}), group_numbers=group) is not None


def test_long_distance_only_bars_numbers_outside_the_callers_area() -> None:
    """A Sarajevo (033) caller reaches 033 numbers but not Banja Luka (051) ones."""
    barred = frozenset({BarringClass.LONG_DISTANCE})
    assert check("033 999 888", barred, caller="033 123 456") is None
    assert check("+38733999888", barred, caller="0038733123456") is None
    refusal = check("051 999 888", barred, caller="033 123 456")
    assert refusal is not None and refusal.barring_class is BarringClass.LONG_DISTANCE
    assert check("033 999 888", barred) is not None  # no caller: no area
    assert check("033 999 888", barred, caller="061 123 456") is not None
    assert check("033 999 888", barred, caller="anonymous") is not None


def test_the_first_barring_class_in_order_is_reported() -> None:
    """outside_group comes first, then the class's own barring classes."""
    refusal = check("090 291 123", ALL)
    assert refusal is not None and refusal.barring_class is BarringClass.OUTSIDE_GROUP
    refusal = check("090 291 123", ALL - {BarringClass.OUTSIDE_GROUP})
    assert refusal is not None and refusal.barring_class is BarringClass.PREMIUM


def test_parse_barring_accepts_names_and_lists_the_valid_ones() -> None:
    """Config names become barring classes; an unknown name is refused with the valid list."""
    assert parse_barring(["premium", "international"]) == {
        BarringClass.PREMIUM,
        BarringClass.INTERNATIONAL,
    }
    assert parse_barring([]) == frozenset()
    with pytest.raises(ValueError, match=r"unknown barring class 'premum'; .*premium"):
        parse_barring(["premum"])


def test_every_kind_has_a_default_membership_and_emergency_has_none() -> None:
    """Each number kind maps to its default barring classes; emergency belongs to none."""
    assert set(DEFAULT_MEMBERSHIP) == set(NumberKind)
    assert default_barring(NumberKind.EMERGENCY) == frozenset()
    assert default_barring(NumberKind.PREMIUM_PER_CALL) == {BarringClass.PREMIUM}
    assert default_barring(NumberKind.SATELLITE) == {BarringClass.INTERNATIONAL}
    assert all(BarringClass.OUTSIDE_GROUP not in v for v in DEFAULT_MEMBERSHIP.values())


def test_check_outbound_refuses_what_is_no_number() -> None:
    """A target that is not a telephone number raises ValueError rather than passing."""
    with pytest.raises(ValueError, match="not a telephone number"):
        check_outbound("sip:bob", PLAN.classify("033 123 456"), ALL)
