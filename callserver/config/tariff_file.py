"""config/tariffs.yaml as a file: its schema (pydantic) and its compiler.

Prices are ``Decimal`` from the start: YAML reads ``0.044`` as a binary float, which is turned
back into the decimal written through its shortest ``repr`` (exact for any price of up to 15
significant digits; only trailing zeros are lost, 0.300 becoming 0.3), so no binary rounding
ever reaches an amount. Quoted prices work too and keep their trailing zeros.

What needs the whole file (a tariff a class names, a network a class prices, overlapping
patterns, a zone a surcharge names) is checked by ``compile_file``, which collects every error
as ``(location, message)`` for ``callserver.config.tariffs.load_tariffs`` to report with its line.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from types import MappingProxyType
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from callserver.cdr.rating import Increment, Payer, Tariff, TariffKind
from callserver.policy.barring import BarringClass, default_barring
from callserver.policy.caps import DEFAULT_MAX_DURATION
from callserver.policy.numbering import (
    AmbiguousPatterns,
    NumberClass,
    NumberingPlan,
    NumberKind,
    Pattern,
    PatternTable,
    parse_pattern,
)

__all__ = [
    "ClassSchema",
    "CompiledFile",
    "ShareSchema",
    "TariffSchema",
    "TariffsFile",
    "compile_file",
    "dotted",
]

Loc = tuple[str | int, ...]
_KIND_TARIFF = {
    NumberKind.PREMIUM_PER_MINUTE: TariffKind.PER_MINUTE,
    NumberKind.PREMIUM_PER_CALL: TariffKind.PER_CALL,
    NumberKind.FREE_PHONE: TariffKind.FREE,
    NumberKind.EMERGENCY: TariffKind.FREE,
}
_MOBILE_KINDS = {NumberKind.INTERNATIONAL, NumberKind.SATELLITE}
_Table = TypeVar("_Table", bound=PatternTable[Any])


def _exact_decimal(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("a price is a number of KM, not true or false")
    if isinstance(value, float):
        return Decimal(repr(value))  # the decimal written in the file (module docstring)
    return value


def _increment(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str):
        Increment.parse(value)
    return value


def _quoted(value: Any) -> Any:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, int | float):
                raise ValueError(
                    f"pattern {item!r} is not quoted: YAML reads a number such as 063 as "
                    'octal; write patterns in quotes ("063")'
                )
    return value


Money = Annotated[Decimal, BeforeValidator(_exact_decimal), Field(ge=0, allow_inf_nan=False)]
IncrementText = Annotated[str, BeforeValidator(_increment)]
Patterns = Annotated[list[str], BeforeValidator(_quoted), Field(min_length=1)]


class ShareSchema(BaseModel):
    """One payer's share of a split tariff: exactly one of ``per_minute`` or ``per_call``."""

    model_config = ConfigDict(extra="forbid")
    per_minute: Money | None = None
    per_call: Money | None = None
    increment: IncrementText | None = None

    @model_validator(mode="after")
    def _one_price(self) -> ShareSchema:
        if (self.per_minute is None) == (self.per_call is None):
            raise ValueError("give exactly one of per_minute or per_call")
        return self


class TariffSchema(BaseModel):
    """One price: exactly one of ``per_minute``, ``per_call`` (KM without VAT) or ``free``, or
    a share for each payer (``caller``, ``called``) when more than one pays."""

    model_config = ConfigDict(extra="forbid")
    per_minute: Money | None = None
    per_call: Money | None = None
    free: bool = False
    payer: Literal["called", "none"] | None = None
    caller: ShareSchema | None = None
    called: ShareSchema | None = None
    increment: IncrementText | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_price(self) -> TariffSchema:
        split = self.caller is not None or self.called is not None
        prices = [self.per_minute is not None, self.per_call is not None, self.free, split]
        if sum(prices) != 1:
            raise ValueError(
                "give exactly one of per_minute, per_call, free: true, or the shares of "
                "caller and called"
            )
        if self.payer is not None and not self.free:
            raise ValueError(
                "payer is only for free tariffs; a priced tariff another party pays is a "
                "share (called: {per_minute: ...})"
            )
        return self


class ClassSchema(BaseModel):
    """One number class: its patterns, kind, tariff, cap and barring membership."""

    model_config = ConfigDict(extra="forbid")
    kind: NumberKind
    tariff: str
    tariff_from: dict[str, str] | None = None
    mobile_tariff: str | None = None
    zone: str | None = None
    max_duration: float | None = Field(None, gt=0, allow_inf_nan=False)
    warn_before: float | None = Field(None, gt=0, allow_inf_nan=False)
    barring: list[BarringClass] | None = None
    patterns: Patterns
    description: str = ""


class TariffsFile(BaseModel):
    """The schema of config/tariffs.yaml."""

    model_config = ConfigDict(extra="forbid")
    country_code: str = Field("387", pattern=r"^[1-9][0-9]{0,2}$")
    currency: str = "KM"
    vat_rate: Money = Field(Decimal("0.17"), le=1)
    default_increment: IncrementText = "1/1"
    default_max_duration: float = Field(DEFAULT_MAX_DURATION, gt=0, allow_inf_nan=False)
    cap_warning: float | None = Field(None, gt=0, description="warn this many s before a cap")
    cap_warning_prompt: str = Field("time_warning", pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
    caller_networks: dict[str, Patterns] = Field(default_factory=dict)
    forwarding_surcharges: dict[str, str] = Field(default_factory=dict)
    tariffs: dict[str, TariffSchema] = Field(min_length=1)
    classes: dict[str, ClassSchema] = Field(min_length=1)

    @field_validator("country_code", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


@dataclass(frozen=True, slots=True, kw_only=True)
class CompiledFile:
    """What ``compile_file`` builds from the file's sections (the rest is taken as validated)."""

    plan: NumberingPlan
    tariffs: Mapping[str, Tariff]
    networks: PatternTable[str] | None
    surcharges: Mapping[str, str]


def compile_file(model: TariffsFile) -> tuple[CompiledFile | None, list[tuple[Loc, str]]]:
    """Compile a validated file: its plan, tariffs and networks, or every error found."""
    compiler = _Compiler(model)
    compiled = compiler.compile()
    return compiled, compiler.errors


def dotted(loc: Loc) -> str:
    """An error location as the file's dotted key path: ``classes.geo.patterns.0``."""
    return ".".join(str(part) for part in loc)


class _Compiler:
    """Turns the validated schema into a ``CompiledFile``, collecting ``(loc, message)`` errors."""

    def __init__(self, model: TariffsFile) -> None:
        self.model = model
        self.errors: list[tuple[Loc, str]] = []

    def compile(self) -> CompiledFile | None:
        model = self.model
        tariffs = {name: self._tariff(name, schema) for name, schema in model.tariffs.items()}
        network_rules = [
            (pattern, name, loc)
            for name, texts in model.caller_networks.items()
            for pattern, loc in self._patterns(("caller_networks", name), texts)
        ]
        networks = self._table(PatternTable[str], network_rules)
        class_rules = []
        for name, schema in model.classes.items():
            number_class = self._class(name, schema, tariffs)
            for pattern, loc in self._patterns(("classes", name, "patterns"), schema.patterns):
                class_rules.append((pattern, number_class, loc))
        plan = self._table(NumberingPlan, class_rules)
        self._check_surcharges(tariffs)
        if self.errors or plan is None:
            return None
        return CompiledFile(
            plan=plan,
            tariffs=MappingProxyType(tariffs),
            networks=networks if network_rules else None,
            surcharges=MappingProxyType(dict(model.forwarding_surcharges)),
        )

    def _patterns(self, loc: Loc, texts: list[str]) -> list[tuple[Pattern, Loc]]:
        out: list[tuple[Pattern, Loc]] = []
        for index, text in enumerate(texts):
            try:
                out.append(
                    (parse_pattern(text, country_code=self.model.country_code), (*loc, index))
                )
            except ValueError as exc:
                self.errors.append(((*loc, index), str(exc)))
        return out

    def _table(
        self, make: Callable[..., _Table], rules: list[tuple[Pattern, Any, Loc]]
    ) -> _Table | None:
        try:
            return make([(p, v) for p, v, _ in rules], country_code=self.model.country_code)
        except AmbiguousPatterns as exc:
            other = dotted(rules[exc.first][2])
            self.errors.append((rules[exc.second][2], f"{exc} (at {other})"))
            return None

    def _tariff(self, name: str, schema: TariffSchema) -> Tariff:
        increment = Increment.parse(schema.increment or self.model.default_increment)
        if schema.free:
            payer = Payer(schema.payer or "none")
            return Tariff(name=name, kind=TariffKind.FREE, increment=increment, payer=payer)
        if schema.per_minute is None and schema.per_call is None:  # shares, the caller's first
            shares = [
                self._share(name, Payer(payer), share, increment)
                for payer, share in (("caller", schema.caller), ("called", schema.called))
                if share is not None
            ]
            return replace(shares[0], others=tuple(shares[1:]))
        price = ShareSchema(per_minute=schema.per_minute, per_call=schema.per_call)
        return self._share(name, Payer.CALLER, price, increment)

    def _share(self, name: str, payer: Payer, share: ShareSchema, increment: Increment) -> Tariff:
        step = Increment.parse(share.increment) if share.increment else increment
        if share.per_minute is not None:
            kind, price = TariffKind.PER_MINUTE, share.per_minute
        else:
            assert share.per_call is not None
            kind, price = TariffKind.PER_CALL, share.per_call
        return Tariff(name=name, kind=kind, price=price, increment=step, payer=payer)

    def _class(self, name: str, schema: ClassSchema, tariffs: dict[str, Tariff]) -> NumberClass:
        loc: Loc = ("classes", name)
        self._check_tariffs(loc, schema, tariffs)
        self._check_caps(loc, schema)
        barring = frozenset(schema.barring) if schema.barring is not None else None
        if barring is not None and BarringClass.OUTSIDE_GROUP in barring:
            self.errors.append(
                ((*loc, "barring"), "outside_group depends on the caller's group, not on a class")
            )
        if schema.kind is NumberKind.EMERGENCY and barring:
            self.errors.append(((*loc, "barring"), "emergency numbers must never be barred"))
        return NumberClass(
            name=name,
            kind=schema.kind,
            tariff=schema.tariff,
            max_duration=schema.max_duration,
            warn_before=schema.warn_before,
            zone=schema.zone,
            mobile_tariff=schema.mobile_tariff,
            barring=default_barring(schema.kind) if barring is None else barring,
            tariff_from=tuple((schema.tariff_from or {}).items()),
        )

    def _check_tariffs(self, loc: Loc, schema: ClassSchema, tariffs: dict[str, Tariff]) -> None:
        named: list[tuple[Loc, str | None]] = [
            ((*loc, "tariff"), schema.tariff),
            ((*loc, "mobile_tariff"), schema.mobile_tariff),
            *(((*loc, "tariff_from", net), name) for net, name in self._networks(loc, schema)),
        ]
        for where, name in named:
            if name is not None and name not in tariffs:
                known = ", ".join(sorted(tariffs))
                self.errors.append((where, f"unknown tariff {name!r}; tariffs: {known}"))
        if schema.mobile_tariff is not None and schema.kind not in _MOBILE_KINDS:
            self.errors.append(
                ((*loc, "mobile_tariff"), "only international classes have a mobile tariff")
            )
        wanted = _KIND_TARIFF.get(schema.kind)
        tariff = tariffs.get(schema.tariff)
        if wanted is not None and tariff is not None and tariff.kind is not wanted:
            self.errors.append(
                (
                    (*loc, "tariff"),
                    f"{schema.kind.value} classes need a {wanted.value} tariff; "
                    f"{schema.tariff!r} is {tariff.kind.value}",
                )
            )

    def _networks(self, loc: Loc, schema: ClassSchema) -> list[tuple[str, str]]:
        """The class's ``tariff_from`` pairs; a network the file does not list is an error."""
        pairs = list((schema.tariff_from or {}).items())
        known = self.model.caller_networks
        for network, _ in pairs:
            if network not in known:
                self.errors.append(
                    (
                        (*loc, "tariff_from", network),
                        f"unknown caller network; caller_networks: {', '.join(known) or 'none'}",
                    )
                )
        return pairs

    def _check_caps(self, loc: Loc, schema: ClassSchema) -> None:
        default = self.model.default_max_duration
        cap = schema.max_duration
        if cap is not None and cap > default:
            self.errors.append(
                (
                    (*loc, "max_duration"),
                    f"{cap:g} s exceeds default_max_duration ({default:g} s), "
                    "which caps every call",
                )
            )
        if schema.kind is NumberKind.PREMIUM_PER_CALL and cap is None:
            self.errors.append(
                ((*loc, "max_duration"), "a per-call premium class needs a max_duration")
            )
        warn = schema.warn_before
        if warn is not None and warn >= min(cap or math.inf, default):
            self.errors.append(((*loc, "warn_before"), "the warning must come before the cap"))

    def _check_surcharges(self, tariffs: dict[str, Tariff]) -> None:
        zones = {schema.zone for schema in self.model.classes.values() if schema.zone}
        for zone, name in self.model.forwarding_surcharges.items():
            loc: Loc = ("forwarding_surcharges", zone)
            if zone not in zones:
                known = ", ".join(sorted(zones))
                self.errors.append((loc, f"no class has zone {zone!r}; zones: {known}"))
            if name not in tariffs:
                self.errors.append(
                    (loc, f"unknown tariff {name!r}; tariffs: {', '.join(sorted(tariffs))}")
                )
