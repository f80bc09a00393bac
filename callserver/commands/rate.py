"""``callserver rate``: what a call to a number is, under the tariffs the server uses.

``quote`` answers for a call to NUMBER from CALLER lasting SECONDS: the number's class, kind,
zone and barring classes, its cap (None when only the global default applies) and warning
time (``Tariffs.warn_before``, as the running server arms it), and every payer's charge: the
tariff, its price per minute or per call, the units and seconds billed, the cost without VAT,
the VAT and the total, as exact decimals (strings in JSON). The amounts are those the CDR of
such a call carries (``Tariffs.charges``).
"""

from __future__ import annotations

import json
from typing import TextIO

from callserver.cdr.rating import Rating, TariffKind
from callserver.config.tariffs import Tariffs
from callserver.policy.numbering import normalise

__all__ = ["DEFAULT_CALLER", "format_quote", "quote"]

DEFAULT_CALLER = "+38733123456"  # a BiH fixed number (Sarajevo, BH Telecom's fixed network)


def quote(
    tariffs: Tariffs, number: str, *, seconds: int = 60, caller: str = DEFAULT_CALLER
) -> dict[str, object]:
    """What a call to ``number`` from ``caller`` lasting ``seconds`` is and costs.

    Returns:
        The JSON object of the module docstring: ``number_e164`` (E.164 digits, None for a
        short code), ``class``, ``kind``, ``zone``, ``barring``, ``max_duration``,
        ``warn_before``, ``caller_e164``, ``caller_network``, ``seconds`` and ``charges``.

    Raises:
        ValueError: ``number`` or ``caller`` is not a telephone number, no class matches
            ``number``, or ``seconds`` is negative.
    """
    if seconds < 0:
        raise ValueError(f"--seconds must be 0 or more, not {seconds}")
    number_class = tariffs.classify(number)
    try:
        caller_key = normalise(caller, country_code=tariffs.plan.country_code)
    except ValueError as exc:
        raise ValueError(f"caller: {exc}") from None
    ratings = tariffs.charges(number_class, seconds, caller=caller)
    return {
        "number_e164": _e164(normalise(number, country_code=tariffs.plan.country_code)),
        "class": number_class.name,
        "kind": number_class.kind.value,
        "zone": number_class.zone,
        "barring": sorted(number_class.barring),
        "max_duration": _seconds(number_class.max_duration),
        "warn_before": _seconds(tariffs.warn_before(number_class)),
        "caller_e164": _e164(caller_key),
        "caller_network": tariffs.network_of(caller),
        "seconds": seconds,
        "charges": [_charge(rating, tariffs.currency) for rating in ratings],
    }


def format_quote(data: dict[str, object], fmt: str, out: TextIO) -> None:
    """Write a ``quote`` as one JSON object (``json``) or as aligned lines (``text``)."""
    if fmt == "json":
        out.write(json.dumps(data, indent=2) + "\n")
        return
    caller = f"+{data['caller_e164']}" if data["caller_e164"] else "-"
    lines = [
        ("number", f"+{data['number_e164']}" if data["number_e164"] else "short code"),
        ("class", f"{data['class']} ({data['kind']}), zone {data['zone'] or '-'}"),
        ("barring", ", ".join(_strings(data["barring"])) or "none"),
        ("max_duration", _text_seconds(data["max_duration"], "none (the default cap)")),
        ("warn_before", _text_seconds(data["warn_before"], "none")),
        ("caller", f"{caller} (network {data['caller_network'] or 'none listed'})"),
        ("seconds", str(data["seconds"])),
    ]
    text = [f"{name:<13} {value}" for name, value in lines]
    text += [_charge_line(charge) for charge in _charges(data)]
    out.write("\n".join(text) + "\n")


def _charge(rating: Rating, currency: str) -> dict[str, object]:
    price = "per_call" if rating.kind is TariffKind.PER_CALL else "per_minute"
    return {
        "payer": rating.payer.value,
        "tariff": rating.tariff,
        price: str(rating.price),
        "billed_units": rating.billed_units,
        "billed_seconds": rating.billed_seconds,
        "cost": str(rating.cost),
        "vat": str(rating.vat),
        "total": str(rating.total),
        "currency": currency,
    }


def _charge_line(charge: dict[str, object]) -> str:
    if "per_call" in charge:
        price = f"{charge['per_call']} {charge['currency']}/call"
    else:
        price = f"{charge['per_minute']} {charge['currency']}/min"
    return (
        f"{'payer ' + str(charge['payer']):<13} {charge['tariff']}: {price}, "
        f"{charge['billed_seconds']} s billed ({_units(charge['billed_units'])}), "
        f"cost {charge['cost']} + VAT {charge['vat']} = {charge['total']} {charge['currency']}"
    )


def _units(count: object) -> str:
    return "1 unit" if count == 1 else f"{count} units"


def _charges(data: dict[str, object]) -> list[dict[str, object]]:
    charges = data["charges"]
    assert isinstance(charges, list)
    return charges


def _strings(value: object) -> list[str]:
    assert isinstance(value, list)
    return [str(item) for item in value]


def _e164(key: str) -> str | None:
    return key[1:] if key.startswith("+") else None


def _seconds(value: float | None) -> int | float | None:
    """Seconds as JSON: a whole number without ``.0``."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def _text_seconds(value: object, missing: str) -> str:
    return missing if value is None else f"{value} s"
