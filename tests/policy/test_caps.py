"""Duration caps: class/dialplan/default caps, deadlines from the answer rtime, warnings."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from callserver.config.tariffs import load_tariffs
from callserver.policy.caps import (
    DEFAULT_MAX_DURATION,
    MAX_DURATION_CAUSE,
    CreditTimer,
    cap_deadline,
    duration_cap,
    warning_time,
)
from callserver.policy.numbering import NumberClass, NumberKind

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "tariffs.yaml"
PREMIUM = NumberClass(
    name="premium_call_049",
    kind=NumberKind.PREMIUM_PER_CALL,
    tariff="premium_call_049",
    max_duration=180,
    warn_before=30,
)
GEOGRAPHIC = NumberClass(name="bih_geographic", kind=NumberKind.GEOGRAPHIC, tariff="bih_fixed")


def test_defaults_are_four_hours_and_the_max_duration_cause() -> None:
    """The global default cap is 4 h and a capped call ends with cause max_duration."""
    assert DEFAULT_MAX_DURATION == 4 * 3600
    assert MAX_DURATION_CAUSE == "max_duration"


@pytest.mark.parametrize(
    ("number_class", "dialplan", "default", "cap"),
    [
        (PREMIUM, None, 14400, 180),
        (PREMIUM, 120, 14400, 120),
        (PREMIUM, 180, 14400, 180),
        (PREMIUM, None, 60, 60),
        (GEOGRAPHIC, None, 14400, 14400),
        (GEOGRAPHIC, 3600, 14400, 3600),
        (GEOGRAPHIC, 0.5, 14400, 0.5),
    ],
)
def test_duration_cap_is_the_least_of_class_dialplan_and_default(
    number_class: NumberClass, dialplan: float | None, default: float, cap: float
) -> None:
    """The cap is the smallest of the caps that apply; a dialplan may shorten any of them."""
    assert duration_cap(number_class, dialplan, default) == cap


@pytest.mark.parametrize(
    ("number_class", "dialplan", "message"),
    [
        (PREMIUM, 181, "exceeds the class cap of 180 s for class 'premium_call_049'"),
        (PREMIUM, 3600, "a dialplan may only shorten it"),
        (GEOGRAPHIC, 20000, "exceeds the default cap of 14400 s"),
        (PREMIUM, math.inf, "would remove the 180 s cap of class 'premium_call_049'"),
        (PREMIUM, 0, "would remove"),
        (PREMIUM, -1, "would remove"),
        (PREMIUM, math.nan, "would remove"),
        (GEOGRAPHIC, math.inf, "would remove the 14400 s cap"),
    ],
)
def test_a_dialplan_cannot_lengthen_or_remove_a_cap(
    number_class: NumberClass, dialplan: float, message: str
) -> None:
    """Longer, infinite, zero, negative or NaN dialplan caps are refused with a clear message."""
    with pytest.raises(ValueError, match=message):
        duration_cap(number_class, dialplan)


def test_a_class_cap_above_the_default_is_held_to_the_default() -> None:
    """The default caps even a class whose own cap is longer, and a dialplan cannot exceed it."""
    long = NumberClass(name="long", kind=NumberKind.GEOGRAPHIC, tariff="t", max_duration=20000)
    assert duration_cap(long, None, 14400) == 14400
    with pytest.raises(ValueError, match="exceeds the default cap"):
        duration_cap(long, 15000, 14400)


def test_the_default_cap_must_be_a_positive_number() -> None:
    """A zero or infinite default is a programming error, refused."""
    for default in (0, math.inf):
        with pytest.raises(ValueError, match="default cap"):
            duration_cap(GEOGRAPHIC, None, default)


def test_deadline_and_warning_are_absolute_times_from_the_answer_rtime() -> None:
    """The deadline is answer rtime + cap; the warning comes warn_before seconds earlier."""
    assert cap_deadline(1000.25, 180) == 1180.25
    assert warning_time(1180.25, 30) == 1150.25
    assert warning_time(1180.25, None) is None
    assert warning_time(1180.25, 0) is None
    with pytest.raises(ValueError, match="positive"):
        cap_deadline(1000.0, 0)


def test_credit_timer_armed_for_a_premium_call() -> None:
    """Armed at the answer rtime, the timer warns at 150 s and expires exactly at 180 s."""
    timer = CreditTimer.arm(PREMIUM, 500.0, warn_before=30)
    assert (timer.cap, timer.deadline, timer.warning_at) == (180, 680.0, 650.0)
    assert timer.next_deadline(warned=False) == 650.0
    assert timer.next_deadline(warned=True) == 680.0
    assert not timer.expired(679.999) and timer.expired(680.0)
    assert timer.remaining(600.0) == 80.0 and timer.remaining(700.0) == 0.0


def test_credit_timer_with_a_shorter_dialplan_cap_and_no_room_to_warn() -> None:
    """A 20 s dialplan cap leaves no room for a 30 s warning, so none is scheduled."""
    timer = CreditTimer.arm(PREMIUM, 10.0, dialplan_cap=20, warn_before=30)
    assert (timer.deadline, timer.warning_at) == (30.0, None)
    assert timer.next_deadline(warned=False) == 30.0


def test_credit_timer_refuses_a_bad_cap() -> None:
    """A timer cannot be built with an infinite or non-positive cap."""
    for cap in (0.0, -5.0, math.inf):
        with pytest.raises(ValueError):
            CreditTimer(answer_rtime=0.0, cap=cap)
    with pytest.raises(ValueError, match="only shorten"):
        CreditTimer.arm(PREMIUM, 0.0, dialplan_cap=600)


def test_shipped_per_call_premium_cap_is_180_s() -> None:
    """A call to 092 291 123 under the shipped tariffs gets BYE 180 s after the answer."""
    tariffs = load_tariffs(SHIPPED)
    number_class = tariffs.classify("092 291 123")
    timer = CreditTimer.arm(number_class, 42.0, default_cap=tariffs.default_max_duration)
    assert timer.deadline == 222.0
    assert tariffs.duration_cap(tariffs.classify("033 123 456")) == 14400
