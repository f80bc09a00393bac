"""Tariffs: config/tariffs.yaml, the numbering plan, number classes, caps and price lists.

The file is read with line numbers, validated and compiled (``tariff_file``; nothing is
validated mid-call) into a ``Tariffs``: the ``NumberingPlan`` with its number classes, the
``Tariff`` of each price, the callers' networks, the forwarding surcharges, the VAT rate and
the global cap. Every error names the file, the line and the field, and the whole file is
refused (``config/tariffs.yaml:12: classes.premium_call.max_duration: ...``), as for the
settings.

Who pays what. A call is rated with its class's tariff, or with the tariff its class names for
the caller's network (``tariff_from``: the unique access number costs the caller and its
subscriber different amounts depending on where the call comes from); a tariff may charge more
than one payer, and ``charges`` gives every payer's ``Rating``. A forwarded leg is paid by the
subscriber whose number forwarded (payer ``called``) at its destination's own tariff, plus the
surcharge of the destination's zone (``forwarding_surcharges``) when the forwarded number is a
free-phone or unique-access one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from callserver.cdr.rating import Payer, Rating, Tariff, rate, rate_shares
from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors, line_of
from callserver.config.settings import read_yaml
from callserver.config.tariff_file import (
    ClassSchema,
    TariffSchema,
    TariffsFile,
    compile_file,
    dotted,
)
from callserver.policy.caps import CreditTimer, duration_cap
from callserver.policy.numbering import NumberClass, NumberingPlan, NumberKind, PatternTable

__all__ = [
    "DEFAULT_TARIFFS",
    "SURCHARGED_KINDS",
    "ClassSchema",
    "TariffSchema",
    "Tariffs",
    "TariffsFile",
    "load_tariffs",
]

DEFAULT_TARIFFS = Path("config/tariffs.yaml")
# The inbound numbers whose forwarded legs abroad carry the zone surcharge.
SURCHARGED_KINDS = frozenset({NumberKind.FREE_PHONE, NumberKind.UNIQUE_ACCESS})


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Tariffs:
    """config/tariffs.yaml compiled: classify numbers, look up tariffs, rate, cap."""

    plan: NumberingPlan
    tariffs: Mapping[str, Tariff]
    vat_rate: Decimal
    default_max_duration: float
    currency: str = "KM"
    cap_warning: float | None = None  # seconds before a cap the caller is warned
    cap_warning_prompt: str = "time_warning"
    networks: PatternTable[str] | None = None  # callers' numbers to their network
    surcharges: Mapping[str, str] = field(default_factory=dict)  # destination zone -> tariff

    def classify(self, number: str) -> NumberClass:
        """The class of ``number`` (see ``NumberingPlan.classify``).

        Raises:
            ValueError: not a telephone number, or no class matches it.
        """
        return self.plan.classify(number)

    def tariff_of(self, number_class: NumberClass, network: str | None = None) -> Tariff:
        """The tariff of a call to ``number_class`` from a caller of ``network``."""
        return self.tariffs[number_class.tariff_for(network)]

    def network_of(self, caller: str | None) -> str | None:
        """The network of a caller's number (``caller_networks``); None for none or junk."""
        if self.networks is None or not caller:
            return None
        try:
            return self.networks.lookup(caller)
        except ValueError:  # anonymous, a SIP user name: no network
            return None

    def charges(
        self,
        number_class: NumberClass,
        billsec: int,
        *,
        caller: str | None = None,
        inside_group: bool = False,
    ) -> tuple[Rating, ...]:
        """Every payer's price of a call from ``caller`` to ``number_class``, first the first
        share of its tariff (see the module docstring).

        Raises:
            ValueError: ``billsec`` is negative.
        """
        tariff = self.tariff_of(number_class, self.network_of(caller))
        return rate_shares(tariff, billsec, inside_group=inside_group, vat_rate=self.vat_rate)

    def forwarded_charges(
        self,
        number_class: NumberClass,
        billsec: int,
        *,
        forwarded_from: str | None,
        inside_group: bool = False,
    ) -> tuple[Rating, ...]:
        """The price of a forwarded leg to ``number_class``, paid by the subscriber of
        ``forwarded_from``, with the zone surcharge when that number is free phone or unique
        access and the destination's zone has one (see the module docstring).

        Raises:
            ValueError: ``billsec`` is negative.
        """
        if inside_group:
            return self.charges(number_class, billsec, inside_group=True)
        tariff = self.tariff_of(number_class)
        out = [self._rate_for_subscriber(share, billsec) for share in tariff.shares]
        surcharge = self.surcharges.get(number_class.zone or "")
        if surcharge is not None and self._surcharged(forwarded_from):
            out.append(self._rate_for_subscriber(self.tariffs[surcharge], billsec))
        return tuple(out)

    def _rate_for_subscriber(self, tariff: Tariff, billsec: int) -> Rating:
        # What the caller would pay on a direct call, the forwarding subscriber pays here.
        payer = Payer.CALLED if tariff.payer is Payer.CALLER else None
        return rate(tariff, billsec, vat_rate=self.vat_rate, payer=payer)

    def _surcharged(self, forwarded_from: str | None) -> bool:
        try:
            return self.classify(forwarded_from or "").kind in SURCHARGED_KINDS
        except ValueError:
            return False

    def duration_cap(self, number_class: NumberClass, dialplan_cap: float | None = None) -> float:
        """The cap of a call to ``number_class`` (see ``caps.duration_cap``).

        Raises:
            ValueError: the dialplan's cap would lengthen or remove the cap.
        """
        return duration_cap(number_class, dialplan_cap, self.default_max_duration)

    def warn_before(
        self, number_class: NumberClass | None, dialplan_cap: float | None = None
    ) -> float | None:
        """Seconds before a call's cap the warning prompt plays; None: no warning.

        The class's own ``warn_before`` wins; else the global ``cap_warning`` when the call
        has a cap of its own (the class's ``max_duration`` or the dialplan's); else None: the
        global default cap alone warns nobody.
        """
        if number_class is not None and number_class.warn_before is not None:
            return number_class.warn_before
        capped = dialplan_cap is not None or (
            number_class is not None and number_class.max_duration is not None
        )
        return self.cap_warning if capped else None

    def credit_timer(
        self, number_class: NumberClass | None, answer_rtime: float, dialplan_cap: float | None
    ) -> CreditTimer:
        """The credit timer of a call answered at ``answer_rtime`` (``caps.CreditTimer``).

        ``number_class`` is None for a called number no class matches (only the default cap
        and the dialplan's apply). A dialplan cap longer than the class allows is ignored: the
        class's cap wins (``callserver check`` refuses such a plan before it gets here).
        """
        if number_class is None:
            limit = self.default_max_duration
            cap = limit if dialplan_cap is None else min(dialplan_cap, limit)
            warn = self.warn_before(None, dialplan_cap)
            return CreditTimer(answer_rtime=answer_rtime, cap=cap, warn_before=warn)
        try:
            self.duration_cap(number_class, dialplan_cap)
        except ValueError:
            dialplan_cap = None
        return CreditTimer.arm(
            number_class,
            answer_rtime,
            dialplan_cap=dialplan_cap,
            default_cap=self.default_max_duration,
            warn_before=self.warn_before(number_class, dialplan_cap),
        )


def load_tariffs(path: Path | None = None) -> Tariffs:
    """Read, validate and compile ``path`` (default config/tariffs.yaml).

    Raises:
        OperatorFileError: the file is unreadable, not YAML, or has invalid values; every error is
            listed as ``file:line: field: message``, in line order.
    """
    source = path if path is not None else DEFAULT_TARIFFS
    data, lines = read_yaml(source, "a mapping (tariffs, classes, ...)")
    try:
        model = TariffsFile.model_validate(data)
    except ValidationError as exc:
        raise OperatorFileError(describe_errors(str(source), exc, lines)) from exc
    compiled, errors = compile_file(model)
    if errors or compiled is None:
        found = sorted(
            ((line_of(lines, loc), loc, message) for loc, message in errors),
            key=lambda item: item[0],
        )
        raise OperatorFileError(
            [f"{source}:{line}: {dotted(loc)}: {msg}" for line, loc, msg in found]
        )
    return Tariffs(
        plan=compiled.plan,
        tariffs=compiled.tariffs,
        vat_rate=model.vat_rate,
        default_max_duration=model.default_max_duration,
        currency=model.currency,
        cap_warning=model.cap_warning,
        cap_warning_prompt=model.cap_warning_prompt,
        networks=compiled.networks,
        surcharges=compiled.surcharges,
    )
