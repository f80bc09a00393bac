"""config/trunks.yaml: who may call in, and how many channels and calls a second they bought.

Trunks are identified by the source address of the INVITE (an IP or CIDR, optionally with a
port), longest prefix first, a port-specific match before a match on any port. Customers
(Centrex groups, call-centre packages) hold a channel pool shared by their trunks; called
numbers may have a pool of their own. Every limit is optional: absent means unlimited.

    customers:
      acme:                       # call-centre package: 3 channels included
        channels: 3
    trunks:
      acme-pbx:
        match: [192.0.2.10, 198.51.100.0/24:5060]
        customer: acme
        channels: 2               # a trunk includes 2 channels
        cps: 5
    numbers:
      "38733123456": {channels: 2}

Validated on load like every operator file: errors name file, line and field, and a bad file
on reload leaves the previous table in force.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callserver.config import ConfigError, read_yaml
from callserver.yamlpos import describe_errors

__all__ = [
    "DEFAULT_TRUNKS",
    "CustomerConfig",
    "OverLimit",
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
    """The answer to a call over a channel or CPS limit (default: 503, Q.850 cause 34)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    status: int = Field(503, ge=400, le=699)
    retry_after: int = Field(30, ge=0, le=3600)


class CustomerConfig(BaseModel):
    """A customer or Centrex group: a channel pool shared by its trunks."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    channels: int | None = Field(None, ge=0)


class TrunkConfig(BaseModel):
    """A trunk: where its calls come from, whose it is, and its limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    match: list[SourceMatch] = Field(min_length=1)
    customer: _Id | None = None
    channels: int | None = Field(None, ge=0)
    cps: float | None = Field(None, gt=0, description="new calls a second (token bucket rate)")
    cps_burst: float | None = Field(None, ge=1)

    @field_validator("match", mode="before")
    @classmethod
    def _matches(cls, value: object) -> object:
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            return [parse_match(item) if isinstance(item, str) else item for item in value]
        return value


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
    customers: dict[_Id, CustomerConfig] = Field(default_factory=dict)
    trunks: dict[_Id, TrunkConfig] = Field(default_factory=dict)
    numbers: dict[Annotated[str, Field(pattern=r"^\+?[0-9]{3,15}$")], NumberConfig] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _customers_exist(self) -> TrunksFile:
        for name, trunk in self.trunks.items():
            if trunk.customer is not None and trunk.customer not in self.customers:
                raise ValueError(f"trunk {name!r}: customer {trunk.customer!r} is not defined")
        return self


class TrunkTable:
    """Identifies the trunk of a source address and lists the limits that apply to a call."""

    def __init__(self, config: TrunksFile) -> None:
        self.config = config
        rows = [
            (match.network, match.port, name)
            for name, trunk in config.trunks.items()
            for match in trunk.match
        ]
        # Longest prefix first; a port-specific entry before an any-port one of equal length.
        rows.sort(key=lambda row: (-row[0].prefixlen, row[1] is None))
        self._rows = rows

    def identify(self, host: str, port: int) -> str | None:
        """The name of the trunk ``host``:``port`` belongs to, None when no trunk matches."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        for network, match_port, name in self._rows:
            same_family = address.version == network.version
            if same_family and address in network and match_port in (None, port):
                return name
        return None

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


def load_trunks(path: Path) -> TrunksFile:
    """Load and validate ``path`` (config/trunks.yaml); a missing file means no trunks.

    Raises:
        ConfigError: every error as ``file:line: field: message``.
    """
    if not path.exists():
        return TrunksFile()
    data, lines = read_yaml(path)
    try:
        return TrunksFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_errors(str(path), exc, lines)) from exc
