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

A tariff may charge more than one payer: its ``others`` are the shares of the other payers,
each a per-minute or per-call price of its own under the same tariff name (the unique access
number from BH Telecom's fixed network: the caller 0.042 KM/min, the called subscriber
0.020 KM/min). ``rate_shares`` prices every share; each payer's ``Rating`` stands alone.

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
    "rate_shares",
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
    # The called number's subscriber (free phone, unique access), or on a forwarded leg the
    # subscriber whose number forwarded.
    CALLED = "called"
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
    """One tariff: its kind, its price in KM without VAT (per minute or per call), who pays.

    ``others`` are the shares of the other payers when the tariff charges more than one (see
    the module docstring): tariffs of the same name, each with its own payer and price.

    Raises:
        ValueError: a negative price, a free tariff with a price or paid by the caller, a
            priced tariff paid by nobody, or shares that repeat a payer or a name.
    """

    name: str
    kind: TariffKind
    price: Decimal = Decimal(0)
    increment: Increment = PER_SECOND
    payer: Payer = Payer.CALLER
    others: tuple[Tariff, ...] = ()

    def __post_init__(self) -> None:
        if not self.price.is_finite() or self.price < 0:
            raise ValueError(f"tariff {self.name!r}: the price must be 0 KM or more")
        if self.kind is TariffKind.FREE and (self.price != 0 or self.payer is Payer.CALLER):
            raise ValueError(f"tariff {self.name!r}: a free tariff has no price and no caller pays")
        if self.kind is not TariffKind.FREE and self.payer is Payer.NONE:
            raise ValueError(f"tariff {self.name!r}: a priced tariff is paid by caller or called")
        payers = [share.payer for share in self.shares]
        if len(set(payers)) != len(payers) or any(
            share.name != self.name or share.others for share in self.others
        ):
            raise ValueError(f"tariff {self.name!r}: each payer has one share of the same tariff")

    @property
    def shares(self) -> tuple[Tariff, ...]:
        """Every payer's share: this tariff, then ``others``."""
        return (self, *self.others)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rating:
    """One payer's price of one call, every amount a Decimal of KM rounded to 0.0001.

    ``cost`` is net of VAT and ``total`` is ``cost + vat``; all three are what ``payer`` pays
    (0 on a free tariff). ``billed_units`` and ``billed_seconds`` are the metered blocks and
    their length under the tariff's increment (1 unit for a per-call tariff); ``kind`` and
    ``price`` are the tariff's (the share's, for one payer of a split tariff).
    """

    tariff: str
    payer: Payer
    kind: TariffKind
    price: Decimal
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
    payer: Payer | None = None,
) -> Rating:
    """Price a call of ``billsec`` seconds (answer to end) under ``tariff`` (one share).

    Args:
        tariff: the tariff of the called number's class.
        billsec: the CDR's billed seconds, whole.
        inside_group: the call stayed inside the caller's Centrex group (free).
        increment: overrides the tariff's increment.
        vat_rate: the VAT rate as a fraction (0.17).
        payer: who pays instead of the tariff's payer (a forwarded leg's subscriber).

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
    name, kind, price, cost = tariff.name, tariff.kind, tariff.price, Decimal(0)
    payer = payer or tariff.payer
    if inside_group:
        name, payer, kind, price = INSIDE_GROUP_TARIFF, Payer.NONE, TariffKind.FREE, Decimal(0)
    elif tariff.kind is TariffKind.PER_MINUTE:
        cost = _round(tariff.price * seconds / _SECONDS_PER_MINUTE)
    elif tariff.kind is TariffKind.PER_CALL and units:
        cost = _round(tariff.price)
    cost = _round(cost)
    vat = _round(cost * vat_rate)
    return Rating(
        tariff=name,
        payer=payer,
        kind=kind,
        price=price,
        billsec=billsec,
        billed_units=units,
        billed_seconds=seconds,
        cost=cost,
        vat=vat,
        total=cost + vat,
    )


def rate_shares(
    tariff: Tariff,
    billsec: int,
    *,
    inside_group: bool = False,
    vat_rate: Decimal = VAT_RATE,
) -> tuple[Rating, ...]:
    """Every payer's ``Rating`` of a call under ``tariff``: one per share, the first first.

    A call inside the caller's Centrex group is one free rating whoever would have paid.

    Raises:
        ValueError: as ``rate``.
    """
    if inside_group:
        return (rate(tariff, billsec, inside_group=True, vat_rate=vat_rate),)
    return tuple(rate(share, billsec, vat_rate=vat_rate) for share in tariff.shares)
