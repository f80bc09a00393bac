"""Rating: the price of a call from its tariff and billsec, in Decimal KM, VAT shown apart.

Theory of operation
-------------------
A tariff (config/tariffs.yaml ``tariffs.<name>``) is one of three kinds:

- ``per_minute``: a price per minute, metered in increments ``first/next`` seconds (``1/1``
  per second, the default; ``60/60`` per started minute; ``30/6`` a first block of 30 s, then
  blocks of 6 s). A call of ``billsec`` > 0 is billed ``first`` seconds, then as many ``next``
  blocks as cover the rest: 61 s at 60/60 is 2 units, 120 billed seconds.
- ``per_call``: a flat price per answered call, whatever its length (1 unit).
- ``free``: nothing for the caller. ``payer`` says who pays instead: ``called`` for free phone
  (080: the number's subscriber pays under its free-phone contract, billed from the CDR's
  billed seconds, not here) or ``none`` (emergency numbers).

A call inside the caller's own Centrex group costs nothing (tariff ``centrex_group``, payer
``none``), whatever the number's class. A call with ``billsec`` 0 (unanswered, or shorter than
the CDR's one-second resolution) costs nothing on any tariff.

Money is ``Decimal`` from the YAML file to the CDR, never ``float``: prices are Decimal, the
net cost is ``price * billed_seconds / 60`` (or the flat price) rounded once, half up, to
0.0001 KM (``INTERNAL_QUANTUM``); VAT is the net cost times the VAT rate, rounded the same way,
and shown apart; the total is their sum. Displays round to 0.01 KM (``DISPLAY_QUANTUM``, see
``to_display``) only at the end, so sums of many calls are made from the 0.0001 values. Every
step is monotonic, so a longer call never costs less.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

__all__ = [
    "DISPLAY_QUANTUM",
    "INSIDE_GROUP_TARIFF",
    "INTERNAL_QUANTUM",
    "PER_SECOND",
    "VAT_RATE",
    "Increment",
    "Payer",
    "Rating",
    "Tariff",
    "TariffKind",
    "rate",
    "to_display",
]

INTERNAL_QUANTUM = Decimal("0.0001")  # KM: every stored amount
DISPLAY_QUANTUM = Decimal("0.01")  # KM (one fening): invoices and screens
VAT_RATE = Decimal("0.17")  # BiH VAT (PDV), 17 %
INSIDE_GROUP_TARIFF = "centrex_group"
_SECONDS_PER_MINUTE = 60


class TariffKind(StrEnum):
    """How a tariff prices a call."""

    PER_MINUTE = "per_minute"
    PER_CALL = "per_call"
    FREE = "free"


class Payer(StrEnum):
    """Who pays for a call."""

    CALLER = "caller"
    CALLED = "called"  # free phone: the subscriber of the 080 number
    NONE = "none"  # emergency numbers, calls inside a Centrex group


@dataclass(frozen=True, slots=True)
class Increment:
    """Billing increments in seconds: the first block, then each next block (``60/60``).

    Raises:
        ValueError: a block is shorter than one second.
    """

    first: int = 1
    next: int = 1

    def __post_init__(self) -> None:
        if self.first < 1 or self.next < 1:
            raise ValueError(f"billing increments must be at least 1 s, not {self}")

    def __str__(self) -> str:
        return f"{self.first}/{self.next}"

    @classmethod
    def parse(cls, text: str) -> Increment:
        """``"30/6"`` -> ``Increment(30, 6)``; a single number ``"60"`` means ``60/60``.

        Raises:
            ValueError: not one or two whole numbers of seconds, or a block under 1 s.
        """
        first, sep, rest = text.strip().partition("/")
        parts = (first.strip(), rest.strip() if sep else first.strip())
        if not all(part.isascii() and part.isdigit() for part in parts):
            raise ValueError(f"increment {text!r} is not FIRST/NEXT in whole seconds (60/60)")
        return cls(int(parts[0]), int(parts[1]))

    def units(self, billsec: int) -> int:
        """How many blocks bill ``billsec`` seconds: 0 for 0 s, else the first plus the rest."""
        if billsec <= 0:
            return 0
        return 1 + -(-max(0, billsec - self.first) // self.next)

    def billed_seconds(self, billsec: int) -> int:
        """The seconds charged for ``billsec``: the length of its ``units`` blocks."""
        units = self.units(billsec)
        return 0 if units == 0 else self.first + (units - 1) * self.next


PER_SECOND = Increment(1, 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Tariff:
    """One tariff: its kind, its price in KM without VAT (per minute or per call).

    Raises:
        ValueError: a negative price, a free tariff with a price, or a payer that does not fit
            the kind (only a free tariff is paid by someone other than the caller).
    """

    name: str
    kind: TariffKind
    price: Decimal = Decimal(0)
    increment: Increment = PER_SECOND
    payer: Payer = Payer.CALLER

    def __post_init__(self) -> None:
        if not self.price.is_finite() or self.price < 0:
            raise ValueError(f"tariff {self.name!r}: the price must be 0 KM or more")
        if self.kind is TariffKind.FREE and (self.price != 0 or self.payer is Payer.CALLER):
            raise ValueError(f"tariff {self.name!r}: a free tariff has no price and no caller pays")
        if self.kind is not TariffKind.FREE and self.payer is not Payer.CALLER:
            raise ValueError(f"tariff {self.name!r}: only a free tariff is paid by another party")


@dataclass(frozen=True, slots=True, kw_only=True)
class Rating:
    """The price of one call, every amount a Decimal of KM rounded to 0.0001.

    ``cost`` is net of VAT and ``total`` is ``cost + vat``; all three are what the caller pays
    (0 when ``payer`` is not the caller). ``billed_units`` and ``billed_seconds`` are the
    metered blocks and their length under the tariff's increment (1 unit for a per-call tariff).
    """

    tariff: str
    payer: Payer
    billsec: int
    billed_units: int
    billed_seconds: int
    cost: Decimal
    vat: Decimal
    total: Decimal


def to_display(amount: Decimal) -> Decimal:
    """``amount`` rounded half up to 0.01 KM, for invoices and screens only."""
    return amount.quantize(DISPLAY_QUANTUM, rounding=ROUND_HALF_UP)


def _round(amount: Decimal) -> Decimal:
    return amount.quantize(INTERNAL_QUANTUM, rounding=ROUND_HALF_UP)


def rate(
    tariff: Tariff,
    billsec: int,
    *,
    inside_group: bool = False,
    increment: Increment | None = None,
    vat_rate: Decimal = VAT_RATE,
) -> Rating:
    """Price a call of ``billsec`` seconds (answer to end) under ``tariff``.

    Args:
        tariff: the tariff of the called number's class.
        billsec: the CDR's billed seconds, whole.
        inside_group: the call stayed inside the caller's Centrex group (free).
        increment: overrides the tariff's increment.
        vat_rate: the VAT rate as a fraction (0.17).

    Raises:
        ValueError: ``billsec`` or ``vat_rate`` is negative.
    """
    if billsec < 0:
        raise ValueError(f"billsec must not be negative, not {billsec}")
    if not vat_rate.is_finite() or vat_rate < 0:
        raise ValueError(f"the VAT rate must not be negative, not {vat_rate}")
    step = increment or tariff.increment
    if tariff.kind is TariffKind.PER_CALL:
        units = 1 if billsec > 0 else 0
        seconds = billsec if units else 0
    else:
        units, seconds = step.units(billsec), step.billed_seconds(billsec)
    name, payer, cost = tariff.name, tariff.payer, Decimal(0)
    if inside_group:
        name, payer = INSIDE_GROUP_TARIFF, Payer.NONE
    elif tariff.kind is TariffKind.PER_MINUTE:
        cost = _round(tariff.price * seconds / _SECONDS_PER_MINUTE)
    elif tariff.kind is TariffKind.PER_CALL and units:
        cost = _round(tariff.price)
    cost = _round(cost)
    vat = _round(cost * vat_rate)
    return Rating(
        tariff=name,
        payer=payer,
        billsec=billsec,
        billed_units=units,
        billed_seconds=seconds,
        cost=cost,
        vat=vat,
        total=cost + vat,
    )
