"""Outbound barring classes: which forwarded legs a trunk or customer may not place.

Theory of operation
-------------------
A trunk or customer (config/trunks.yaml) lists the barring classes it is barred from. Before a
forwarded (B2BUA) leg is placed, ``check_outbound`` looks at the target number and its number
class and either allows it (None) or returns a ``BarringRefusal``: the call gets
``403 Forbidden`` (RFC 3261 §21.4.4: the server understood the request but refuses to fulfil
it) and the CDR records ``refusal.reason``.

The checks, in this order:

1. Emergency numbers are never barred (the regulator's rule; a class of kind ``emergency``
   cannot even be given barring classes in config/tariffs.yaml).
2. A number of the caller's own Centrex group is never barred: the group is one PBX.
3. ``outside_group`` bars every other number.
4. Each barring class the number's class belongs to, in the order of ``BarringClass``.
   ``long_distance`` only bars a number outside the caller's own area (the two digits of a
   BiH area code, 30-39 and 49-59); with no caller in the same area, every such number counts.

A class belongs to the barring classes ``config/tariffs.yaml`` lists for it, or when it lists
none, to the defaults of its kind (``DEFAULT_MEMBERSHIP``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from callserver.policy.numbering import (
    BIH_COUNTRY_CODE,
    NumberClass,
    NumberKind,
    national_number,
    normalise,
)

__all__ = [
    "DEFAULT_MEMBERSHIP",
    "BarringClass",
    "BarringRefusal",
    "check_outbound",
    "default_barring",
    "parse_barring",
]

_AREA_DIGITS = 2  # BiH area codes are two digits after the trunk prefix 0 (033, 051, ...)


class BarringClass(StrEnum):
    """The outbound barring classes; a refusal's reason is ``barred_<value>``."""

    OUTSIDE_GROUP = "outside_group"
    PREMIUM = "premium"
    INTERNATIONAL = "international"
    MOBILE = "mobile"
    LONG_DISTANCE = "long_distance"
    SHORT = "short"


DEFAULT_MEMBERSHIP: Mapping[NumberKind, frozenset[BarringClass]] = MappingProxyType(
    {
        NumberKind.PREMIUM_PER_MINUTE: frozenset({BarringClass.PREMIUM}),
        NumberKind.PREMIUM_PER_CALL: frozenset({BarringClass.PREMIUM}),
        NumberKind.INTERNATIONAL: frozenset({BarringClass.INTERNATIONAL}),
        NumberKind.SATELLITE: frozenset({BarringClass.INTERNATIONAL}),
        NumberKind.MOBILE: frozenset({BarringClass.MOBILE}),
        NumberKind.GEOGRAPHIC: frozenset({BarringClass.LONG_DISTANCE}),
        NumberKind.NATIONAL_OTHER: frozenset({BarringClass.LONG_DISTANCE}),
        NumberKind.SHORT: frozenset({BarringClass.SHORT}),
        NumberKind.FREE_PHONE: frozenset(),
        NumberKind.UNIQUE_ACCESS: frozenset(),
        NumberKind.EMERGENCY: frozenset(),
    }
)
"""The barring classes a number class belongs to when config/tariffs.yaml lists none."""


def default_barring(kind: NumberKind) -> frozenset[BarringClass]:
    """The barring classes of a number class of ``kind`` that lists none of its own."""
    return DEFAULT_MEMBERSHIP[kind]


def parse_barring(names: Iterable[str]) -> frozenset[BarringClass]:
    """Barring classes from their names in a config file (``["premium", "international"]``).

    Raises:
        ValueError: a name is not a barring class; the message lists the valid ones.
    """
    valid = {member.value: member for member in BarringClass}
    out: set[BarringClass] = set()
    for name in names:
        if name not in valid:
            raise ValueError(
                f"unknown barring class {name!r}; the barring classes are {', '.join(valid)}"
            )
        out.add(valid[name])
    return frozenset(out)


@dataclass(frozen=True, slots=True, kw_only=True)
class BarringRefusal:
    """A forwarded leg refused by barring: answer ``status`` and record ``reason`` in the CDR."""

    barring_class: BarringClass
    number: str
    number_class: str
    status: int = 403  # RFC 3261 §21.4.4 Forbidden

    @property
    def reason(self) -> str:
        """The CDR reason: ``barred_`` and the barring class (``barred_premium``)."""
        return f"barred_{self.barring_class.value}"


def check_outbound(
    number: str,
    number_class: NumberClass,
    barred: AbstractSet[BarringClass],
    *,
    group_numbers: AbstractSet[str] = frozenset(),
    caller: str | None = None,
    country_code: str = BIH_COUNTRY_CODE,
) -> BarringRefusal | None:
    """Whether a forwarded leg to ``number`` may be placed, by the rules of the module docstring.

    Args:
        number: the target as dialled (any form ``numbering.normalise`` accepts).
        number_class: its class (``NumberingPlan.classify(number)``).
        barred: the barring classes of the trunk or customer placing the leg.
        group_numbers: the caller's Centrex group, as ``numbering.normalise`` keys.
        caller: the calling number, for ``long_distance``.
        country_code: the national country code (for areas and normalising).

    Returns:
        None when the leg may be placed, else the refusal.

    Raises:
        ValueError: ``number`` is not a telephone number.
    """
    key = normalise(number, country_code=country_code)
    if number_class.kind is NumberKind.EMERGENCY or key in group_numbers:
        return None
    for barring_class in BarringClass:
        if barring_class not in barred:
            continue
        if barring_class is BarringClass.OUTSIDE_GROUP or (
            barring_class in number_class.barring
            and not _local(barring_class, key, caller, country_code)
        ):
            return BarringRefusal(
                barring_class=barring_class, number=key, number_class=number_class.name
            )
    return None


def _local(barring_class: BarringClass, key: str, caller: str | None, country_code: str) -> bool:
    """Whether a long-distance-barred number is in the caller's own area, so allowed."""
    if barring_class is not BarringClass.LONG_DISTANCE or caller is None:
        return False
    try:
        caller_key = normalise(caller, country_code=country_code)
    except ValueError:
        return False
    target_area = _area(key, country_code)
    return target_area is not None and target_area == _area(caller_key, country_code)


def _area(key: str, country_code: str) -> str | None:
    national = national_number(key, country_code=country_code)
    return national[:_AREA_DIGITS] if national and len(national) > _AREA_DIGITS else None
