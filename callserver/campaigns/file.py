"""The campaign file: what ``callserver campaign start FILE`` reads (docs/callcentre.md).

    name: spring-survey             # optional: the file's name without .yaml
    numbers: spring.csv             # beside the file; a header row, then one number a row
    customer: acme                  # of trunks.yaml: its channels cap the calls in progress
    caller_id: "+387 33 100 200"    # presented on every call (the customer's own number)
    plan: "+387 33 100 500"         # the dialplan number run on each answered call
    window:                         # an ``hours`` step's fields (dialplan.hours)
      timezone: Europe/Sarajevo
      holidays: BA
      open: {mon-fri: "09:00-17:00"}
    pacing: {calls_per_second: 1, max_in_progress: 2}
    ring_timeout: 30                # seconds a number may ring (no_answer after)
    retries: {max_attempts: 3, delay: 300, backoff: 2, when: [busy, no_answer]}

The CSV's ``number`` column holds the numbers (national or E.164: stored in E.164); every
other column is a variable the plan reads by its header (``${first_name}``). ``load_campaign``
checks everything and raises one ``OperatorFileError`` with every fault, ``file:line: field:
message``, a bad number as ``numbers.csv:LINE: number: message``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors, line_of
from callserver.config.settings import read_yaml
from callserver.config.trunks import TrunksFile
from callserver.dialplan.hours import Hours, HoursError, compile_hours
from callserver.dialplan.routing import plan_numbers
from callserver.policy.numbering import e164, number_owners, possible_e164

__all__ = [
    "Campaign",
    "CampaignFile",
    "Entry",
    "Pacing",
    "Retries",
    "load_campaign",
    "load_in_force",
]

Retryable = Literal["busy", "no_answer", "failed"]
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_Fault = Callable[[tuple[str | int, ...], str], None]  # a fault at a field path
_Message = Callable[[str], None]  # a fault of the numbers file


class Pacing(BaseModel):
    """How fast: new calls a second, and at most ``max_in_progress`` at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    calls_per_second: float = Field(1.0, gt=0, le=100)
    max_in_progress: int = Field(1, ge=1, le=1000)


class Retries(BaseModel):
    """Another attempt after ``when`` results, ``delay`` s later, times ``backoff`` each time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_attempts: int = Field(1, ge=1, le=20)
    delay: float = Field(300.0, ge=0, le=7 * 86400)
    backoff: float = Field(1.0, ge=1, le=10)
    when: tuple[Retryable, ...] = ("busy", "no_answer")


class CampaignFile(BaseModel):
    """The campaign file's fields as written (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: Annotated[str, Field(pattern=_NAME)] | None = None
    numbers: str
    customer: str
    caller_id: str
    plan: str
    window: dict[str, object]
    pacing: Pacing = Pacing()
    ring_timeout: float = Field(30.0, gt=0, le=600)
    retries: Retries = Retries()

    @field_validator("caller_id", "plan")
    @classmethod
    def _number(cls, value: str) -> str:
        return possible_e164(value)


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """One number to call (E.164), its CSV line and its variables."""

    number: str
    line: int
    variables: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Campaign:
    """A checked campaign: its file's fields, its compiled window and its numbers in order."""

    name: str
    source: Path
    numbers_file: Path
    settings: CampaignFile
    window: Hours
    entries: tuple[Entry, ...]


def load_campaign(
    source: Path,
    *,
    customers: Mapping[str, int | None],
    plans: Collection[str],
    numbers: Path | None = None,
    owners: Mapping[str, str] | None = None,
) -> Campaign:
    """Read and check the campaign file ``source`` and its CSV.

    Args:
        customers: trunks.yaml's customers and their channels (None: unlimited).
        plans: the numbers that have a dialplan (E.164).
        numbers: read the numbers from here instead of the file's ``numbers`` (a started
            campaign's copy).
        owners: the customer of each number that has one (``number_owners``): a campaign
            runs a plan of its own customer's numbers, or of a number no customer has.

    Raises:
        OperatorFileError: every fault found, ``file:line: field: message`` each.
    """
    data, lines = read_yaml(source, "a campaign's fields")
    try:
        fields = CampaignFile.model_validate(data)
    except ValidationError as exc:
        raise OperatorFileError(describe_errors(str(source), exc, lines)) from None
    errors: list[str] = []

    def fault(path: tuple[str | int, ...], message: str) -> None:
        errors.append(f"{source}:{line_of(lines, path)}: {'.'.join(map(str, path))}: {message}")

    window = _window(fields, fault)
    _check_customer(fields, customers, fault)
    if fields.plan not in plans:
        fault(("plan",), f"{fields.plan} has no dialplan; name a number of the dialplans")
    owner = (owners or {}).get(fields.plan.lstrip("+"))
    if owner is not None and fields.customer in customers and owner != fields.customer:
        mine = fields.customer
        fault(("plan",), f"{fields.plan} is customer {owner!r}'s number: run one of {mine!r}'s")
    numbers_file = numbers or source.parent / fields.numbers
    entries = _entries(numbers_file, errors, lambda message: fault(("numbers",), message))
    if errors or window is None:
        raise OperatorFileError(errors)
    name = fields.name or source.stem
    return Campaign(
        name=name,
        source=source,
        numbers_file=numbers_file,
        settings=fields,
        window=window,
        entries=entries,
    )


def load_in_force(
    source: Path, trunks: TrunksFile, dialplans: Path, numbers: Path | None = None
) -> Campaign:
    """``load_campaign`` against the customers of ``trunks`` and the plans in ``dialplans``.

    Raises:
        OperatorFileError: as ``load_campaign``.
    """
    customers = {name: customer.channels for name, customer in trunks.customers.items()}
    plans = {f"+{number}" for number in plan_numbers(dialplans)}
    owners = number_owners({name: c.numbers for name, c in trunks.customers.items()})
    return load_campaign(source, customers=customers, plans=plans, numbers=numbers, owners=owners)


def _window(fields: CampaignFile, fault: _Fault) -> Hours | None:
    try:
        return compile_hours(fields.window)
    except HoursError as exc:
        fault(("window", *exc.field_path), exc.message)
        return None


def _check_customer(
    fields: CampaignFile, customers: Mapping[str, int | None], fault: _Fault
) -> None:
    if fields.customer not in customers:
        known = ", ".join(sorted(customers)) or "none"
        fault(("customer",), f"{fields.customer!r} is not a customer of trunks.yaml ({known})")
        return
    channels = customers[fields.customer]
    if channels is not None and fields.pacing.max_in_progress > channels:
        message = (
            f"{fields.pacing.max_in_progress} calls in progress is more than the "
            f"{channels} channels of customer {fields.customer!r}"
        )
        fault(("pacing", "max_in_progress"), message)


def _entries(path: Path, errors: list[str], fault: _Message) -> tuple[Entry, ...]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        fault(f"cannot read {path}: {exc.strerror}")
        return ()
    except UnicodeDecodeError as exc:
        fault(f"{path} is not UTF-8 text: {exc.reason}")
        return ()
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip() for name in next(reader, [])]
    if "number" not in header:
        errors.append(f"{path}:1: number: the header row has no 'number' column")
        return ()
    for name in header:
        if name != "number" and not _VARIABLE.fullmatch(name):
            errors.append(f"{path}:1: {name}: a column name is a variable name (letters, _)")
    entries: list[Entry] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        entry = _entry(path, header, row, line, errors)
        if entry is None:
            continue
        if entry.number in seen:
            message = f"{entry.number} is listed twice (first at line {seen[entry.number]})"
            errors.append(f"{path}:{line}: number: {message}")
            continue
        seen[entry.number] = line
        entries.append(entry)
    if not entries and not errors:
        fault(f"{path} lists no numbers")
    return tuple(entries)


def _entry(
    path: Path, header: list[str], row: list[str], line: int, errors: list[str]
) -> Entry | None:
    if len(row) != len(header):
        message = f"{len(row)} columns where the header has {len(header)}"
        errors.append(f"{path}:{line}: row: {message}")
        return None
    cells = dict(zip(header, (cell.strip() for cell in row), strict=True))
    try:
        number = e164(cells.pop("number"))
    except ValueError as exc:
        errors.append(f"{path}:{line}: number: {exc}")
        return None
    return Entry(number=number, line=line, variables=MappingProxyType(cells))
