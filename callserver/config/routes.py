"""The outbound sections of config/trunks.yaml: the routes (where calls go out, and the number
prefixes each carries) and the emergency numbers with their route (``policy.outbound``)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from callserver.config.digest import DigestCredentials
from callserver.config.settings import check_host
from callserver.policy.numbering import normalise
from callserver.policy.outbound import DEFAULT_EMERGENCY_NUMBERS, route_prefix

__all__ = ["EmergencyConfig", "Prefixes", "RouteConfig", "check_route"]

_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


def _once_each(keys: list[str]) -> list[str]:
    for index, key in enumerate(keys):
        if key in keys[:index]:
            raise ValueError(f"prefix {key} is listed twice (written differently, perhaps)")
    return keys


Prefixes = Annotated[list[Annotated[str, AfterValidator(route_prefix)]], AfterValidator(_once_each)]
"""A route's prefixes as ``policy.outbound.route_prefix`` keys, each once."""


class RouteConfig(BaseModel):
    """An outbound route: where forwarded numbers and calls out are sent (a gateway or
    carrier).

    ``host`` is an IP address or a host name. A name is located as RFC 3263 says: with a
    ``port``, through its A/AAAA records; without one, through NAPTR and SRV records (the
    transport too, unless ``transport`` is set). An IP address without a port means 5060.
    ``prefixes`` are the numbers it carries for calls of phones and PBXs, normalised
    (``"+387 33"`` is ``+38733``, ``"+"`` every number): the longest prefix that matches a
    number wins, and the routes of that same prefix are tried in the order of the file.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    host: Annotated[str, AfterValidator(check_host)]
    port: int | None = Field(None, ge=1, le=65535)
    transport: Literal["udp", "tcp"] | None = None
    digest: DigestCredentials | None = None
    prefixes: Prefixes = Field(default_factory=list)


def _emergency_numbers(numbers: list[str]) -> list[str]:
    keys = [normalise(number) for number in numbers]  # ValueError names the bad number
    if not keys:
        raise ValueError("list the emergency numbers (112, 122, 123, 124), or leave it out")
    return keys


class EmergencyConfig(BaseModel):
    """Emergency numbers, never barred, and the route their calls go to (None: the routes of
    their prefix, as any number)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    numbers: Annotated[list[str], AfterValidator(_emergency_numbers)] = Field(
        default_factory=lambda: list(DEFAULT_EMERGENCY_NUMBERS)
    )
    route: _Id | None = None

    @field_validator("route")
    @classmethod
    def _route_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked here when loading (``load_trunks`` passes the route names as context), so
        the error names the ``route`` line itself."""
        check_route(value, (info.context or {}).get("routes"))
        return value


def check_route(route: str | None, routes: Collection[str] | None) -> None:
    """Refuse ``route`` when it is set and not one of ``routes`` (None: not known here).

    Raises:
        ValueError: the message names the route and the routes there are.
    """
    if route is not None and routes is not None and route not in routes:
        known = ", ".join(routes) or "none"
        raise ValueError(f"route {route!r} is not one of the routes ({known})")
