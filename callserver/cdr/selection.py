"""Which CDRs a query picks (customer, number, disposition) and their totals per customer.

Theory of operation
-------------------
``CdrStore.records`` picks the records of a period (by ``start_stamp``, ``since`` inclusive,
``until`` exclusive) in the order ``callserver cdr export`` writes them; with a ``CdrFilter``
the store picks only those of a customer, with a number, of a disposition (in SQL, so a page
or a count reads only what it needs), and a list, an export and the totals of one query see
the same records in the same order.

``number`` matches the caller or the called number, as received or as E.164, with or without
a leading ``+`` (``+38733100200``, ``38733100200`` and ``033100200`` as it was received).

``customer_totals`` adds up what the records already say, reading only the store's columns and
each record's ``currency`` and ``charges`` (``CdrStore.legs``; no record is decoded whole).
Each leg was rated when it ended (``calls.reporting`` with ``config.tariffs.Tariffs.charges``,
i.e. ``cdr.rating.rate``), and a leg's price is the sum of its ``charges`` (every payer's
share: "Who pays what" in docs/operations.md). Nothing is priced again here. ``calls`` counts
legs (as ``cdr stats`` does), ``answered`` the answered ones, ``seconds`` their billsec;
``cost`` and ``vat`` are exact sums of the 0.0001 KM amounts, ``total`` their sum.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from callserver.cdr.charge import Charge
from callserver.cdr.record import Disposition

__all__ = ["CdrFilter", "CustomerTotals", "LegRow", "customer_totals"]

# One leg as the totals read it: customer, disposition, billsec, currency, charges (JSON text).
LegRow = tuple[str | None, str, int, str | None, str | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrFilter:
    """What a record must be to be picked; None: anything."""

    customer: str | None = None
    number: str | None = None
    disposition: Disposition | None = None

    def sql(self) -> tuple[list[str], list[object]]:
        """The conditions on ``CdrStore``'s table (joined by AND) and their parameters."""
        clauses, params = [], list[object]()
        if self.customer is not None:
            clauses.append("customer = ?")
            params.append(self.customer)
        if self.disposition is not None:
            clauses.append("disposition = ?")
            params.append(self.disposition.value)
        if self.number is not None:
            clauses.append(f"? IN ({_NUMBERS})")
            params.append(self.number.lstrip("+"))
        return clauses, params


_NUMBERS = ", ".join(  # a record's numbers (in its JSON), each without a leading "+"
    f"ltrim(COALESCE(json_extract(record, '$.{name}'), ''), '+')"
    for name in ("caller_raw", "caller_e164", "called_raw", "called_e164")
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerTotals:
    """One customer's legs of a period and what they cost (see the module docstring)."""

    customer: str | None
    calls: int
    answered: int
    seconds: int
    cost: Decimal
    vat: Decimal
    currency: str | None

    @property
    def total(self) -> Decimal:
        """Cost and VAT."""
        return self.cost + self.vat

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: money as decimal strings (as in the CDRs), never floats."""
        return {
            "customer": self.customer,
            "calls": self.calls,
            "answered": self.answered,
            "seconds": self.seconds,
            "cost": str(self.cost),
            "vat": str(self.vat),
            "total": str(self.total),
            "currency": self.currency,
        }


def customer_totals(legs: Iterable[LegRow]) -> list[CustomerTotals]:
    """The totals of ``legs`` (``CdrStore.legs``) per customer, by name (none's first).

    Raises:
        ValueError: a charge that is not one (a damaged store).
    """
    sums: dict[str | None, CustomerTotals] = {}
    for customer, disposition, billsec, currency, charges in legs:
        before = sums.get(customer) or CustomerTotals(
            customer=customer,
            calls=0,
            answered=0,
            seconds=0,
            cost=Decimal("0.0000"),
            vat=Decimal("0.0000"),
            currency=None,
        )
        priced = [Charge.from_dict(item) for item in json.loads(charges or "[]")]
        sums[customer] = replace(
            before,
            calls=before.calls + 1,
            answered=before.answered + (disposition == Disposition.ANSWERED.value),
            seconds=before.seconds + billsec,
            cost=before.cost + sum((c.cost for c in priced), Decimal(0)),
            vat=before.vat + sum((c.vat for c in priced), Decimal(0)),
            currency=before.currency or currency,
        )
    return sorted(sums.values(), key=lambda t: (t.customer is not None, t.customer or ""))
