"""Who pays what: one payer's charge for a call leg, as its CDR carries it.

A rated leg carries one ``Charge`` per payer in ``CdrRecord.charges``: most calls have one (the
caller's, or the forwarding subscriber's on a forwarded leg), a call to the unique access
number from BH Telecom's fixed network has two (the caller's and the called subscriber's), and
a free-phone or unique-access call forwarded abroad adds the zone surcharge to its forwarded
leg. Amounts are ``Decimal`` KM without VAT (``cost``) and the VAT on it (``vat``), rounded to
0.0001 KM; in JSON they are strings, never floats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = ["Charge", "decimal_of"]

_KEYS = ("payer", "tariff", "billed_units", "billed_seconds", "cost", "vat")


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """One payer's charge: ``payer`` (caller, called or none) pays ``cost`` + ``vat`` KM.

    Raises:
        ValueError: a field of the wrong type, a negative count, or money that is not a finite
            Decimal.
    """

    payer: str
    tariff: str
    billed_units: int
    billed_seconds: int
    cost: Decimal
    vat: Decimal

    def __post_init__(self) -> None:
        if not (isinstance(self.payer, str) and isinstance(self.tariff, str)):
            raise ValueError("a charge's payer and tariff are strings")
        for count in (self.billed_units, self.billed_seconds):
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise ValueError("a charge's billed_units and billed_seconds are whole numbers")
        for money in (self.cost, self.vat):
            if not (isinstance(money, Decimal) and money.is_finite()):
                raise ValueError("a charge's cost and vat are finite Decimals")

    def to_dict(self) -> dict[str, object]:
        """The charge as JSON-ready values, money as decimal strings."""
        return {
            "payer": self.payer,
            "tariff": self.tariff,
            "billed_units": self.billed_units,
            "billed_seconds": self.billed_seconds,
            "cost": str(self.cost),
            "vat": str(self.vat),
        }

    @classmethod
    def from_dict(cls, data: object) -> Charge:
        """Build a charge from ``to_dict`` output.

        Raises:
            ValueError: not a mapping of exactly the charge's keys, or a bad value.
        """
        if not isinstance(data, Mapping) or set(data) != set(_KEYS):
            raise ValueError(f"a charge is an object with exactly {', '.join(_KEYS)}")
        cost, vat = decimal_of("cost", data["cost"]), decimal_of("vat", data["vat"])
        if cost is None or vat is None:
            raise ValueError("a charge's cost and vat are decimal strings, never null")
        return cls(
            payer=data["payer"],
            tariff=data["tariff"],
            billed_units=data["billed_units"],
            billed_seconds=data["billed_seconds"],
            cost=cost,
            vat=vat,
        )


def decimal_of(name: str, value: object) -> Decimal | None:
    """Money read back from JSON: a decimal string (or a Decimal) as a Decimal; None stays.

    Raises:
        ValueError: any other type, or a string that is not a decimal number.
    """
    if value is None or isinstance(value, Decimal):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a decimal string, not {type(value).__name__}")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(f"{name} {value!r} is not a decimal number") from None
