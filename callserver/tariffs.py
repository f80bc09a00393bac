"""Tariffs: config/tariffs.yaml, the numbering plan, number classes, caps and price lists.

The file is read with line numbers, validated by the pydantic schema below, then compiled (the
dialplan rule of STYLE §7: nothing is validated mid-call) into a ``Tariffs``: the
``NumberingPlan`` with its number classes, the ``Tariff`` of each price, the VAT rate and the
global cap. Every error names the file, the line and the field, and the whole file is refused
(``config/tariffs.yaml:12: classes.premium_call.max_duration: ...``), as for the settings.

Prices are ``Decimal`` from the start: YAML reads ``0.044`` as a binary float, which is turned
back into the decimal written through its shortest ``repr`` (exact for any price of up to 15
significant digits; only trailing zeros are lost, 0.300 becoming 0.3), so no binary rounding
ever reaches an amount. Quoted prices work too and keep their trailing zeros.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callserver.cdr.rating import Increment, Payer, Rating, Tariff, TariffKind, rate
from callserver.config import ConfigError, read_yaml
from callserver.policy.barring import BarringClass, default_barring
from callserver.policy.caps import DEFAULT_MAX_DURATION, duration_cap
from callserver.policy.numbering import (
    AmbiguousPatterns,
    NumberClass,
    NumberingPlan,
    NumberKind,
    Pattern,
    parse_pattern,
)
from callserver.yamlpos import describe_errors, line_of

__all__ = [
    "DEFAULT_TARIFFS",
    "ClassSchema",
    "TariffSchema",
    "Tariffs",
    "TariffsFile",
    "load_tariffs",
]

DEFAULT_TARIFFS = Path("config/tariffs.yaml")
_Loc = tuple[str | int, ...]
_KIND_TARIFF = {
    NumberKind.PREMIUM_PER_MINUTE: TariffKind.PER_MINUTE,
    NumberKind.PREMIUM_PER_CALL: TariffKind.PER_CALL,
    NumberKind.FREE_PHONE: TariffKind.FREE,
    NumberKind.EMERGENCY: TariffKind.FREE,
}
_MOBILE_KINDS = {NumberKind.INTERNATIONAL, NumberKind.SATELLITE}


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


Money = Annotated[Decimal, BeforeValidator(_exact_decimal), Field(ge=0, allow_inf_nan=False)]
IncrementText = Annotated[str, BeforeValidator(_increment)]


class TariffSchema(BaseModel):
    """One price: exactly one of ``per_minute``, ``per_call`` (KM without VAT) or ``free``."""

    model_config = ConfigDict(extra="forbid")
    per_minute: Money | None = None
    per_call: Money | None = None
    free: bool = False
    payer: Literal["called", "none"] | None = None
    increment: IncrementText | None = None
    description: str = ""

    @model_validator(mode="after")
    def _one_price(self) -> TariffSchema:
        prices = [self.per_minute is not None, self.per_call is not None, self.free]
        if sum(prices) != 1:
            raise ValueError("give exactly one of per_minute, per_call or free: true")
        if self.payer is not None and not self.free:
            raise ValueError("payer is only for free tariffs (someone other than the caller pays)")
        return self


class ClassSchema(BaseModel):
    """One number class: its patterns, kind, tariff, cap and barring membership."""

    model_config = ConfigDict(extra="forbid")
    kind: NumberKind
    tariff: str
    mobile_tariff: str | None = None
    zone: str | None = None
    max_duration: float | None = Field(None, gt=0, allow_inf_nan=False)
    warn_before: float | None = Field(None, gt=0, allow_inf_nan=False)
    barring: list[BarringClass] | None = None
    patterns: list[str] = Field(min_length=1)
    description: str = ""

    @field_validator("patterns", mode="before")
    @classmethod
    def _quoted(cls, value: Any) -> Any:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, int | float):
                    raise ValueError(
                        f"pattern {item!r} is not quoted: YAML reads a number such as 063 as "
                        'octal; write patterns in quotes ("063")'
                    )
        return value


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
    tariffs: dict[str, TariffSchema] = Field(min_length=1)
    classes: dict[str, ClassSchema] = Field(min_length=1)

    @field_validator("country_code", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


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

    def classify(self, number: str) -> NumberClass:
        """The class of ``number`` (see ``NumberingPlan.classify``).

        Raises:
            ValueError: not a telephone number, or no class matches it.
        """
        return self.plan.classify(number)

    def tariff_of(self, number_class: NumberClass) -> Tariff:
        """The tariff of a class of this plan (its mobile tariff for a mobile number)."""
        return self.tariffs[number_class.tariff]

    def rate(
        self, number_class: NumberClass, billsec: int, *, inside_group: bool = False
    ) -> Rating:
        """Price a call to ``number_class`` with this file's tariffs and VAT rate."""
        tariff = self.tariff_of(number_class)
        return rate(tariff, billsec, inside_group=inside_group, vat_rate=self.vat_rate)

    def duration_cap(self, number_class: NumberClass, dialplan_cap: float | None = None) -> float:
        """The cap of a call to ``number_class`` (see ``caps.duration_cap``).

        Raises:
            ValueError: the dialplan's cap would lengthen or remove the cap.
        """
        return duration_cap(number_class, dialplan_cap, self.default_max_duration)


def load_tariffs(path: Path | None = None) -> Tariffs:
    """Read, validate and compile ``path`` (default config/tariffs.yaml).

    Raises:
        ConfigError: the file is unreadable, not YAML, or has invalid values; every error is
            listed as ``file:line: field: message``, in line order.
    """
    source = path if path is not None else DEFAULT_TARIFFS
    data, lines = read_yaml(source, "a mapping (tariffs, classes, ...)")
    try:
        model = TariffsFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(str(source), exc, lines)) from exc
    compiler = _Compiler(model)
    tariffs = compiler.compile()
    if compiler.errors or tariffs is None:
        found = sorted(
            ((line_of(lines, loc), loc, message) for loc, message in compiler.errors),
            key=lambda item: item[0],
        )
        raise ConfigError([f"{source}:{line}: {_dotted(loc)}: {msg}" for line, loc, msg in found])
    return tariffs


def _dotted(loc: _Loc) -> str:
    return ".".join(str(part) for part in loc)


class _Compiler:
    """Turns the validated schema into a ``Tariffs``, collecting ``(loc, message)`` errors."""

    def __init__(self, model: TariffsFile) -> None:
        self.model = model
        self.errors: list[tuple[_Loc, str]] = []

    def compile(self) -> Tariffs | None:
        tariffs = {name: self._tariff(name, schema) for name, schema in self.model.tariffs.items()}
        rules: list[tuple[Pattern, NumberClass]] = []
        where: list[_Loc] = []
        for name, schema in self.model.classes.items():
            number_class = self._class(name, schema, tariffs)
            for index, text in enumerate(schema.patterns):
                try:
                    pattern = parse_pattern(text, country_code=self.model.country_code)
                except ValueError as exc:
                    self.errors.append((("classes", name, "patterns", index), str(exc)))
                    continue
                rules.append((pattern, number_class))
                where.append(("classes", name, "patterns", index))
        plan = self._plan(rules, where)
        if self.errors or plan is None:
            return None
        return Tariffs(
            plan=plan,
            tariffs=MappingProxyType(tariffs),
            vat_rate=self.model.vat_rate,
            default_max_duration=self.model.default_max_duration,
            currency=self.model.currency,
            cap_warning=self.model.cap_warning,
            cap_warning_prompt=self.model.cap_warning_prompt,
        )

    def _tariff(self, name: str, schema: TariffSchema) -> Tariff:
        increment = Increment.parse(schema.increment or self.model.default_increment)
        if schema.free:
            payer = Payer(schema.payer or "none")
            return Tariff(name=name, kind=TariffKind.FREE, increment=increment, payer=payer)
        kind = TariffKind.PER_MINUTE if schema.per_minute is not None else TariffKind.PER_CALL
        price = schema.per_minute if schema.per_minute is not None else schema.per_call
        assert price is not None
        return Tariff(name=name, kind=kind, price=price, increment=increment)

    def _class(self, name: str, schema: ClassSchema, tariffs: dict[str, Tariff]) -> NumberClass:
        loc: _Loc = ("classes", name)
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
        )

    def _check_tariffs(self, loc: _Loc, schema: ClassSchema, tariffs: dict[str, Tariff]) -> None:
        for field in ("tariff", "mobile_tariff"):
            name = getattr(schema, field)
            if name is not None and name not in tariffs:
                known = ", ".join(sorted(tariffs))
                self.errors.append(((*loc, field), f"unknown tariff {name!r}; tariffs: {known}"))
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

    def _check_caps(self, loc: _Loc, schema: ClassSchema) -> None:
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

    def _plan(
        self, rules: list[tuple[Pattern, NumberClass]], where: list[_Loc]
    ) -> NumberingPlan | None:
        try:
            return NumberingPlan(rules, country_code=self.model.country_code)
        except AmbiguousPatterns as exc:
            other = _dotted(where[exc.first])
            self.errors.append((where[exc.second], f"{exc} (at {other})"))
            return None
