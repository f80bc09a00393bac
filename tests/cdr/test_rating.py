"""Rating: increments, per-minute, per-call and free tariffs, Centrex calls, exact Decimal money."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.cdr.rating import (
    DISPLAY_QUANTUM,
    INSIDE_GROUP_TARIFF,
    INTERNAL_QUANTUM,
    PER_SECOND,
    VAT_RATE,
    Increment,
    Payer,
    Rating,
    Tariff,
    TariffKind,
    rate,
    rate_shares,
    to_display,
)

MOBILE = Tariff(name="bih_mobile_other", kind=TariffKind.PER_MINUTE, price=Decimal("0.177"))
PER_CALL = Tariff(name="premium_call_049", kind=TariffKind.PER_CALL, price=Decimal("0.49"))
FREE_PHONE = Tariff(name="free_phone", kind=TariffKind.FREE, payer=Payer.CALLED)


def amounts(rating: Rating) -> tuple[Decimal, Decimal, Decimal]:
    return rating.cost, rating.vat, rating.total


def test_61_s_at_60_60_on_0_177_is_two_units_and_0_354_plus_vat() -> None:
    """The worked example: 2 started minutes, 0.354 KM net, 17 % VAT 0.0602, total 0.4142."""
    rating = rate(MOBILE, 61, increment=Increment(60, 60))
    assert (rating.billed_units, rating.billed_seconds) == (2, 120)
    assert amounts(rating) == (Decimal("0.3540"), Decimal("0.0602"), Decimal("0.4142"))
    assert (rating.tariff, rating.payer, rating.billsec) == ("bih_mobile_other", Payer.CALLER, 61)


@pytest.mark.parametrize(
    ("increment", "billsec", "units", "seconds", "cost"),
    [
        (Increment(1, 1), 61, 61, 61, "0.1800"),  # 0.177 * 61 / 60 = 0.17995
        (Increment(1, 1), 1, 1, 1, "0.0030"),  # 0.00295 rounds half up
        (Increment(60, 60), 1, 1, 60, "0.1770"),
        (Increment(60, 60), 60, 1, 60, "0.1770"),
        (Increment(60, 60), 121, 3, 180, "0.5310"),
        (Increment(30, 6), 1, 1, 30, "0.0885"),
        (Increment(30, 6), 30, 1, 30, "0.0885"),
        (Increment(30, 6), 31, 2, 36, "0.1062"),
        (Increment(30, 6), 61, 7, 66, "0.1947"),
        (Increment(60, 1), 75, 16, 75, "0.2213"),  # 0.22125 rounds half up
    ],
)
def test_per_minute_increments(
    increment: Increment, billsec: int, units: int, seconds: int, cost: str
) -> None:
    """First/next blocks meter the call; the net cost is price * billed seconds / 60."""
    rating = rate(MOBILE, billsec, increment=increment)
    assert (rating.billed_units, rating.billed_seconds, rating.cost) == (
        units,
        seconds,
        Decimal(cost),
    )
    assert rating.vat == (rating.cost * VAT_RATE).quantize(INTERNAL_QUANTUM)
    assert rating.total == rating.cost + rating.vat


def test_the_tariffs_own_increment_applies_unless_overridden() -> None:
    """A tariff's increment is used by default; the argument overrides it."""
    tariff = Tariff(
        name="t", kind=TariffKind.PER_MINUTE, price=Decimal("0.6"), increment=Increment(60, 60)
    )
    assert rate(tariff, 5).cost == Decimal("0.6000")
    assert rate(tariff, 5, increment=PER_SECOND).cost == Decimal("0.0500")


def test_per_call_tariff_charges_the_flat_price_once() -> None:
    """0.49 KM per call whatever its length (0.57 KM with VAT, as the price list says)."""
    for billsec in (1, 60, 180):
        rating = rate(PER_CALL, billsec)
        assert rating.billed_units == 1
        assert amounts(rating) == (Decimal("0.4900"), Decimal("0.0833"), Decimal("0.5733"))
        assert to_display(rating.total) == Decimal("0.57")


def test_free_phone_costs_the_caller_nothing_and_names_the_called_party_as_payer() -> None:
    """A free-phone call is metered but costs the caller 0; the called subscriber pays."""
    rating = rate(FREE_PHONE, 95)
    assert amounts(rating) == (Decimal(0), Decimal(0), Decimal(0))
    assert (rating.payer, rating.billed_seconds) == (Payer.CALLED, 95)


def test_calls_inside_a_centrex_group_are_free() -> None:
    """Whatever the class, a call inside the caller's group costs nothing and nobody pays."""
    for tariff in (MOBILE, PER_CALL):
        rating = rate(tariff, 300, inside_group=True)
        assert amounts(rating) == (Decimal(0), Decimal(0), Decimal(0))
        assert (rating.tariff, rating.payer) == (INSIDE_GROUP_TARIFF, Payer.NONE)


def test_a_call_of_zero_seconds_costs_nothing_on_any_tariff() -> None:
    """billsec 0 (unanswered) is 0 units and 0 KM, even per call."""
    for tariff in (MOBILE, PER_CALL, FREE_PHONE):
        rating = rate(tariff, 0)
        assert (rating.billed_units, rating.billed_seconds, rating.total) == (0, 0, Decimal(0))


def test_money_is_decimal_at_four_places_and_display_rounds_to_fening() -> None:
    """Every amount is a Decimal quantised to 0.0001; display rounds half up to 0.01 KM."""
    rating = rate(MOBILE, 61)
    for amount in amounts(rating):
        assert isinstance(amount, Decimal) and amount.as_tuple().exponent == -4
    assert to_display(Decimal("0.4142")) == Decimal("0.41")
    assert to_display(Decimal("0.0050")) == Decimal("0.01")
    assert to_display(Decimal("1")).as_tuple().exponent == DISPLAY_QUANTUM.as_tuple().exponent


def test_vat_rate_can_be_set() -> None:
    """The VAT rate comes from the tariffs file; 0 % gives total == cost."""
    rating = rate(PER_CALL, 10, vat_rate=Decimal(0))
    assert amounts(rating) == (Decimal("0.4900"), Decimal("0.0000"), Decimal("0.4900"))


def test_rate_refuses_negative_billsec_and_vat() -> None:
    """A negative duration or VAT rate is a caller bug, refused."""
    with pytest.raises(ValueError, match="billsec"):
        rate(MOBILE, -1)
    with pytest.raises(ValueError, match="VAT"):
        rate(MOBILE, 1, vat_rate=Decimal("-0.1"))


@pytest.mark.parametrize(
    ("text", "increment"),
    [
        ("60/60", Increment(60, 60)),
        ("30/6", Increment(30, 6)),
        (" 1 / 1 ", PER_SECOND),
        ("60", Increment(60, 60)),
    ],
)
def test_increment_parse(text: str, increment: Increment) -> None:
    """FIRST/NEXT in seconds, or one number for both."""
    assert Increment.parse(text) == increment
    assert str(increment) == f"{increment.first}/{increment.next}"


@pytest.mark.parametrize("text", ["", "60/", "a/b", "0/60", "60/0", "-1/1", "1.5/1", "1/1/1"])
def test_increment_parse_refuses_bad_text(text: str) -> None:
    """Empty, non-integer, zero or negative blocks are refused."""
    with pytest.raises(ValueError):
        Increment.parse(text)


def test_tariff_checks_price_and_payer() -> None:
    """Prices are not negative; a priced tariff has a payer; free tariffs have no price."""
    with pytest.raises(ValueError, match="0 KM or more"):
        Tariff(name="t", kind=TariffKind.PER_MINUTE, price=Decimal("-0.1"))
    with pytest.raises(ValueError, match="0 KM or more"):
        Tariff(name="t", kind=TariffKind.PER_MINUTE, price=Decimal("NaN"))
    with pytest.raises(ValueError, match="paid by caller or called"):
        Tariff(name="t", kind=TariffKind.PER_CALL, price=Decimal(1), payer=Payer.NONE)
    with pytest.raises(ValueError, match="a free tariff has no price"):
        Tariff(name="t", kind=TariffKind.FREE, price=Decimal(1), payer=Payer.NONE)
    with pytest.raises(ValueError, match="a free tariff has no price"):
        Tariff(name="t", kind=TariffKind.FREE)


prices = st.decimals(min_value=0, max_value=100, places=3, allow_nan=False, allow_infinity=False)
increments = st.builds(Increment, st.integers(1, 120), st.integers(1, 120))


@given(
    price=prices,
    increment=increments,
    kind=st.sampled_from([TariffKind.PER_MINUTE, TariffKind.PER_CALL]),
    billsec=st.integers(0, 20000),
    extra=st.integers(0, 20000),
)
def test_cost_never_decreases_with_billsec(
    price: Decimal, increment: Increment, kind: TariffKind, billsec: int, extra: int
) -> None:
    """A longer call never costs less, net, in VAT or in total."""
    tariff = Tariff(name="t", kind=kind, price=price, increment=increment)
    short, long = rate(tariff, billsec), rate(tariff, billsec + extra)
    assert short.cost <= long.cost and short.vat <= long.vat and short.total <= long.total
    assert short.billed_seconds <= long.billed_seconds
    assert long.billed_seconds >= long.billsec or kind is TariffKind.PER_CALL


SUBSCRIBER = Tariff(
    name="unique_access_bh_telecom_fixed",
    kind=TariffKind.PER_MINUTE,
    price=Decimal("0.020"),
    payer=Payer.CALLED,
)
SPLIT = Tariff(
    name="unique_access_bh_telecom_fixed",
    kind=TariffKind.PER_MINUTE,
    price=Decimal("0.042"),
    others=(SUBSCRIBER,),
)


def test_a_split_tariff_rates_each_payer_on_its_own() -> None:
    """90 s at 0.042 (caller) and 0.020 (subscriber) KM/min: 0.0630 and 0.0300 KM, VAT apart."""
    caller, called = rate_shares(SPLIT, 90)
    assert (caller.payer, caller.price, caller.kind) == (
        Payer.CALLER,
        Decimal("0.042"),
        TariffKind.PER_MINUTE,
    )
    assert amounts(caller) == (Decimal("0.0630"), Decimal("0.0107"), Decimal("0.0737"))
    assert (called.payer, called.tariff, called.billed_seconds) == (
        Payer.CALLED,
        "unique_access_bh_telecom_fixed",
        90,
    )
    assert amounts(called) == (Decimal("0.0300"), Decimal("0.0051"), Decimal("0.0351"))


def test_a_split_tariff_inside_a_centrex_group_is_one_free_rating() -> None:
    """Inside the caller's group nobody pays, so the split gives one free rating."""
    (only,) = rate_shares(SPLIT, 90, inside_group=True)
    assert (only.tariff, only.payer, only.total) == (INSIDE_GROUP_TARIFF, Payer.NONE, Decimal(0))


def test_rate_for_another_payer() -> None:
    """A forwarded leg's subscriber pays what the caller would: the payer is overridden."""
    rating = rate(MOBILE, 60, payer=Payer.CALLED)
    assert (rating.payer, rating.cost) == (Payer.CALLED, Decimal("0.1770"))


def test_shares_of_a_split_tariff_are_checked() -> None:
    """Each payer has one share, of the same tariff name, and shares have no shares."""
    with pytest.raises(ValueError, match="each payer has one share"):
        Tariff(name="s", kind=TariffKind.PER_MINUTE, price=Decimal(1), others=(MOBILE,))
    twice = Tariff(name="s", kind=TariffKind.PER_MINUTE, price=Decimal(1))
    with pytest.raises(ValueError, match="each payer has one share"):
        Tariff(name="s", kind=TariffKind.PER_MINUTE, price=Decimal(1), others=(twice,))
    assert SPLIT.shares == (SPLIT, SUBSCRIBER)
