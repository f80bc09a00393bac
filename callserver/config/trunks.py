"""config/trunks.yaml: who may call in, and how many channels and calls a second they bought.

Trunks are identified by the source address of the INVITE (an IP or CIDR, optionally with a
port), longest prefix first, a port-specific match before a match on any port, or by digest
credentials (``digest: {username, password}``; RFC 3261 §22, see ``calls.authentication``). A
trunk with both is identified by its credentials and must also call from its addresses. Customers
(Centrex groups, call-centre packages) hold a channel pool shared by their trunks; called
numbers may have a pool of their own. Every limit is optional: absent means unlimited.

    customers:
      acme:                       # call-centre package: 3 channels included
        channels: 3
        agents: 2                 # 2 agents logged in at once
    trunks:
      acme-pbx:
        match: [192.0.2.10, 198.51.100.0/24:5060]
        customer: acme
        channels: 2               # a trunk includes 2 channels
        cps: 5
      branch-office:              # a PBX behind a changing address: digest credentials
        digest: {username: branch7, password: "s3cret"}
    digest: {realm: callserver, challenge: 407, algorithms: [SHA-256, MD5], nonce_lifetime: 300}
    numbers:
      "38733123456": {channels: 2}
    routes:
      carrier-a: {host: 192.0.2.50, prefixes: ["+"]}          # every number ...
      carrier-b: {host: 192.0.2.60, prefixes: ["+", "+387"]}  # ... failing over to this one
    emergency: {numbers: ["112", "122", "123", "124"], route: carrier-b}

A trunk's ``number`` is its main number (E.164), presented toward a carrier when the PBX
presents one that is not its customer's (CLI screening, ``policy.cli``). A route's
``prefixes`` are the numbers it carries for originating calls: the longest matching prefix
wins, and routes with that same prefix are tried in the order they are written
(``policy.outbound``). Emergency numbers are never barred and go to ``emergency.route``.

Validated on load like every operator file: errors name file, line and field, and a bad file
on reload leaves the previous table in force.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from itertools import chain
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from callserver.cdr.retention import DEFAULT_RETENTION_DAYS
from callserver.config.digest import (
    DigestAlgorithm,
    DigestCredentials,
    DigestSettings,
    LockoutSettings,
)
from callserver.config.errors import OperatorFileError
from callserver.config.positions import describe_errors
from callserver.config.routes import EmergencyConfig, RouteConfig, check_route
from callserver.config.settings import read_yaml
from callserver.policy.barring import parse_barring
from callserver.policy.numbering import e164, normalise, possible_e164

__all__ = [
    "DEFAULT_TRUNKS",
    "CallRecordingConfig",
    "CustomerConfig",
    "DigestAlgorithm",
    "DigestCredentials",
    "DigestSettings",
    "EmergencyConfig",
    "LockoutSettings",
    "OverLimit",
    "RouteConfig",
    "SourceMatch",
    "TrunkConfig",
    "TrunkTable",
    "TrunksFile",
    "load_trunks",
    "parse_match",
]

DEFAULT_TRUNKS = Path("config/trunks.yaml")
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class SourceMatch(BaseModel):
    """One ``match`` entry: a network and an optional port (None: any port)."""

    model_config = ConfigDict(frozen=True)
    network: Network
    port: int | None = Field(None, ge=1, le=65535)


def parse_match(text: str) -> SourceMatch:
    """Parse ``IP``, ``IP/prefix``, ``IP:port``, ``IP/prefix:port`` or ``[IPv6]/prefix:port``.

    Raises:
        ValueError: not an address, network or port.
    """
    rest, port = text.strip(), None
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        rest = host + tail.split(":", 1)[0]
        port = tail.split(":", 1)[1] if ":" in tail else None
    elif rest.count(":") == 1:
        rest, port = rest.split(":")
    try:
        network = ipaddress.ip_network(rest, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address or network (CIDR)") from None
    if port is not None and not port.isdigit():
        raise ValueError(f"{text!r}: the port must be a number")
    return SourceMatch(network=network, port=None if port is None else int(port))


class OverLimit(BaseModel):
    """The answer to a call over a channel or CPS limit (default: 503, Q.850 cause 34),
    optionally after an announcement played as early media (183 with SDP, RFC 3960)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    status: int = Field(503, ge=400, le=699)
    retry_after: int = Field(30, ge=0, le=3600)
    announcement: str | None = Field(None, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")


def _barring(names: list[str]) -> list[str]:
    parse_barring(names)  # ValueError names the valid classes
    return names


Barring = Annotated[list[str], AfterValidator(_barring)]
"""Outbound barring classes of forwarded legs (``policy.barring``): premium, international, ..."""


def _prompts(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _prompt_found(name: str, info: ValidationInfo) -> str:
    """With a ``missing_prompt`` check in the context (``callserver check``), the prompt
    must be among the prompts."""
    missing_prompt = (info.context or {}).get("missing_prompt")
    missing = missing_prompt(name) if missing_prompt is not None else []
    if missing:
        raise ValueError(f"prompt {name!r} is missing for language {', '.join(missing)}")
    return name


_PromptName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_/.-]{0,127}$"),
    AfterValidator(_prompt_found),
]


class CallRecordingConfig(BaseModel):
    """Whether the calls to a customer's numbers are recorded (``all``/``none``), as one mixed
    channel or two (``stereo``: the caller left, the other party right), and the prompts the
    caller hears before the recording starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    calls: Literal["all", "none"] = "none"
    mode: Literal["mixed", "stereo"] = "mixed"
    announcement: Annotated[list[_PromptName], BeforeValidator(_prompts)] = Field(
        default_factory=list
    )


class CustomerConfig(BaseModel):
    """A customer or Centrex group: a channel pool shared by its trunks, its outbound barring,
    its own numbers (forwarded legs to them stay inside the group: never barred as
    outside_group, and rated free), its call-centre agent licences (``agents``: how many of
    its agents may be logged in at once; 0, the default, for none), the recording of the calls
    to its numbers and how many days their recordings are kept (90 by default; at most ten
    years)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: int | None = Field(None, ge=0)
    agents: int = Field(0, description="call-centre agent licences")

    @field_validator("agents", mode="before")
    @classmethod
    def _licences(cls, value: object) -> object:
        if type(value) is not int or value < 0:
            raise ValueError(
                f"{value!r} is not a number of agent licences: write a whole number, "
                "0 or more (agents: 2 lets two agents be logged in at once)"
            )
        return value

    barring: Barring = Field(default_factory=list)
    numbers: list[Annotated[str, AfterValidator(possible_e164)]] = Field(default_factory=list)
    recording: CallRecordingConfig = Field(default_factory=CallRecordingConfig)
    recording_retention_days: int = Field(DEFAULT_RETENTION_DAYS, ge=1, le=3650)


class TrunkConfig(BaseModel):
    """A trunk: where its calls come from or its credentials, whose it is, and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    match: list[SourceMatch] = Field(default_factory=list)
    digest: DigestCredentials | None = None
    customer: _Id | None = None
    channels: int | None = Field(None, ge=0)
    cps: float | None = Field(None, gt=0, description="new calls a second (token bucket rate)")
    cps_burst: float | None = Field(None, ge=1)
    barring: Barring = Field(default_factory=list)
    number: Annotated[str, AfterValidator(e164)] | None = Field(
        None, description="the main number (E.164) presented when the PBX's is not its own"
    )

    @field_validator("match", mode="before")
    @classmethod
    def _matches(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [parse_match(item) if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _identified(self) -> TrunkConfig:
        if not self.match and self.digest is None:
            raise ValueError("a trunk needs a match (source addresses) or digest credentials")
        return self


class NumberConfig(BaseModel):
    """Limits of one called number."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: int | None = Field(None, ge=0)


class TrunksFile(BaseModel):
    """The schema of config/trunks.yaml."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    allow_unknown_sources: bool = False
    cps_per_source: float | None = Field(None, gt=0, description="new calls a second a source")
    over_limit: OverLimit = Field(default_factory=OverLimit)
    digest: DigestSettings = Field(default_factory=DigestSettings)
    customers: dict[_Id, CustomerConfig] = Field(default_factory=dict)
    trunks: dict[_Id, TrunkConfig] = Field(default_factory=dict)
    numbers: dict[Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")], NumberConfig] = Field(
        default_factory=dict
    )
    routes: dict[_Id, RouteConfig] = Field(default_factory=dict)
    default_route: _Id | None = None
    emergency: EmergencyConfig = Field(default_factory=EmergencyConfig)

    @field_validator("emergency")
    @classmethod
    def _emergency_route_exists(
        cls, value: EmergencyConfig, info: ValidationInfo
    ) -> EmergencyConfig:
        check_route(value.route, info.data.get("routes"))  # built in code: no context
        return value

    @model_validator(mode="after")
    def _route_exists(self) -> TrunksFile:
        if self.default_route is not None and self.default_route not in self.routes:
            raise ValueError(f"default_route {self.default_route!r} is not one of the routes")
        return self

    @model_validator(mode="after")
    def _customers_exist(self) -> TrunksFile:
        for name, trunk in self.trunks.items():
            if trunk.customer is not None and trunk.customer not in self.customers:
                raise ValueError(f"trunk {name!r}: customer {trunk.customer!r} is not defined")
        return self

    @field_validator("trunks")
    @classmethod
    def _usernames_unique(cls, trunks: dict[str, TrunkConfig]) -> dict[str, TrunkConfig]:
        owner: dict[str, str] = {}
        for name, trunk in trunks.items():
            if trunk.digest is None:
                continue
            first = owner.setdefault(trunk.digest.username, name)
            if first != name:
                raise ValueError(
                    f"trunks {first!r} and {name!r} have the same digest username "
                    f"{trunk.digest.username!r}: each trunk needs its own"
                )
        return trunks


class TrunkTable:
    """Identifies the trunk of a source address and lists the limits that apply to a call."""

    def __init__(self, config: TrunksFile) -> None:
        self.config = config
        self._numbers: dict[str, frozenset[str]] = {}  # customer_numbers', made as asked
        self._own: frozenset[str] | None = None  # own_number's set, made at its first use
        self._recorded: dict[str, tuple[str, CallRecordingConfig]] | None = None
        rows = [
            (match.network, match.port, name)
            for name, trunk in config.trunks.items()
            if trunk.digest is None
            for match in trunk.match
        ]
        # Longest prefix first; a port-specific entry before an any-port one of equal length.
        rows.sort(key=lambda row: (-row[0].prefixlen, row[1] is None))
        self._rows = rows
        self._by_username = {
            trunk.digest.username: name
            for name, trunk in config.trunks.items()
            if trunk.digest is not None
        }

    def identify(self, host: str, port: int) -> str | None:
        """The trunk without digest credentials ``host``:``port`` belongs to, else None.

        A trunk with credentials is never identified by its address alone.
        """
        address = _address(host)
        if address is None:
            return None
        for network, match_port, name in self._rows:
            if _covers(network, match_port, address, port):
                return name
        return None

    @property
    def has_digest(self) -> bool:
        """True when some trunk is identified by digest credentials."""
        return bool(self._by_username)

    def digest_trunk(self, username: str) -> str | None:
        """The trunk whose digest username is ``username`` (case-sensitive), else None."""
        return self._by_username.get(username)

    def covers(self, trunk: str, host: str, port: int) -> bool:
        """True when ``host``:``port`` is inside ``trunk``'s match (a trunk without one: any)."""
        matches = self.config.trunks[trunk].match
        address = _address(host)
        if not matches or address is None:
            return not matches
        return any(_covers(m.network, m.port, address, port) for m in matches)

    def channel_limits(self) -> dict[str, int]:
        """Every configured channel limit by profile: ``trunk:``, ``customer:``, ``number:``."""
        out: dict[str, int] = {}
        for kind, table in (
            ("trunk", self.config.trunks),
            ("customer", self.config.customers),
            ("number", self.config.numbers),
        ):
            for name, item in table.items():
                if item.channels is not None:
                    out[f"{kind}:{name.lstrip('+')}"] = item.channels
        return out

    def profiles(self, trunk: str | None, called: str) -> list[str]:
        """The channel profiles a call takes: its trunk, the trunk's customer, the number."""
        profiles = []
        if trunk is not None:
            profiles.append(f"trunk:{trunk}")
            customer = self.config.trunks[trunk].customer
            if customer is not None:
                profiles.append(f"customer:{customer}")
        profiles.append(f"number:{called.lstrip('+')}")
        return profiles

    def customer_numbers(self, customer: str | None) -> frozenset[str]:
        """The E.164 numbers of ``customer`` (its Centrex blocks included), as a set made
        once per loaded file; empty for no customer or an unknown one."""
        numbers = self._numbers.get(customer or "")
        if numbers is None:
            config = self.config.customers.get(customer or "")
            numbers = frozenset(config.numbers if config else ())
            self._numbers[customer or ""] = numbers
        return numbers

    def recording_of(self, number: str) -> tuple[str, CallRecordingConfig] | None:
        """The customer whose number ``number`` is (any form ``normalise`` reads) and its
        recording settings, when it records its calls; else None."""
        recorded = self._recorded
        if recorded is None:
            recorded = self._recorded = {
                own: (name, customer.recording)
                for name, customer in self.config.customers.items()
                if customer.recording.calls == "all"
                for own in customer.numbers
            }
        if not recorded:
            return None
        try:
            return recorded.get(normalise(number))
        except ValueError:
            return None

    def retention_days(self, customer: str) -> int:
        """How many days ``customer``'s call recordings are kept (90 when it is not known)."""
        config = self.config.customers.get(customer)
        return DEFAULT_RETENTION_DAYS if config is None else config.recording_retention_days

    def own_number(self, number: str) -> bool:
        """True when the E.164 ``number`` is the operator's own as this file knows it: a
        customer's (Centrex blocks included) or one with limits of its own (``numbers``)."""
        own = self._own
        if own is None:
            customers = (c.numbers for c in self.config.customers.values())
            limited = (normalise(n) for n in self.config.numbers)
            own = self._own = frozenset(chain(*customers, limited))
        return number in own


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _covers(
    network: Network,
    match_port: int | None,
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
    port: int,
) -> bool:
    same_family = address.version == network.version
    return same_family and address in network and match_port in (None, port)


def load_trunks(
    path: Path, *, missing_prompt: Callable[[str], list[str]] | None = None
) -> TrunksFile:
    """Load and validate ``path`` (config/trunks.yaml); a missing file means no trunks.
    ``missing_prompt`` (``callserver check``'s): the languages a prompt name is missing
    for, which makes a customer's recording announcement that names no prompt an error.

    Raises:
        OperatorFileError: every error as ``file:line: field: message``.
    """
    if not path.exists():
        return TrunksFile()
    data, lines = read_yaml(path)
    routes = data.get("routes") or {} if isinstance(data, dict) else None
    context: dict[str, object] = {"missing_prompt": missing_prompt}
    if isinstance(routes, dict):
        context["routes"] = list(routes)
    try:
        return TrunksFile.model_validate(data, context=context)
    except ValidationError as exc:
        raise OperatorFileError(describe_errors(str(path), exc, lines)) from exc
