"""Where a forwarded leg goes: its Request-URI and the addresses to try, in order (RFC 3263).

A ``sip:`` or ``sips:`` target is its own Request-URI. A number goes through an outbound
route of config/trunks.yaml (the one a forward step names, else the emergency route for an
emergency number, else the routes of its longest prefix tried in order, else the default
one) as ``sip:<number>@<host>[:<port>][;transport=<transport>]``.
Either URI is then resolved (``transport.resolver``): an IP address is used as it is, a host
name through DNS. The leg is sent to the first target; one that does not answer, or answers
503, hands the leg to the next (RFC 3263 §4.3, in ``calls.ringing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from callserver.config.trunks import TrunksFile
from callserver.policy.outbound import OutboundPlan
from callserver.sip.uri import SipUri, parse_uri
from callserver.transport.locating import Target
from callserver.transport.resolver import ResolutionError, SipResolver

__all__ = ["Destination", "Route", "locate", "locate_first", "route_of", "routes_for"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where forwarded numbers go: a gateway or carrier (config/trunks.yaml ``routes``)."""

    name: str
    host: str
    port: int | None = None
    transport: Literal["udp", "tcp"] | None = None
    credentials: tuple[str, str] | None = None

    def uri(self, number: str) -> SipUri:
        """The Request-URI of a call to ``number`` through this route (RFC 3261 §19.1.1)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port is None else f":{self.port}"
        transport = "" if self.transport is None else f";transport={self.transport}"
        uri = parse_uri(f"sip:{number}@{host}{port}{transport}")
        assert isinstance(uri, SipUri)
        return uri


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """A leg's Request-URI, the targets to try in order, and the route's digest credentials."""

    uri: SipUri
    targets: tuple[Target, ...]
    credentials: tuple[str, str] | None = None


def route_of(config: TrunksFile, name: str | None) -> Route | None:
    """The outbound route ``name`` of config/trunks.yaml (None: the default), or None."""
    key = name or config.default_route or ""
    found = config.routes.get(key)
    if found is None:
        return None
    digest = found.digest
    return Route(
        name=key,
        host=found.host,
        port=found.port,
        transport=found.transport,
        credentials=None
        if digest is None
        else (digest.username, digest.password.get_secret_value()),
    )


def routes_for(
    config: TrunksFile, plan: OutboundPlan, target: str, route: str | None
) -> tuple[Route, ...]:
    """The outbound routes ``target`` goes through, in trying order: the one named; else, for
    an emergency number, the emergency route when one is named; else the routes of its longest
    prefix; else the default one. None of them when the route to use does not exist."""
    if route is None:
        route = plan.emergency_route(target)  # None too for an emergency number without one
    if route is None and target.lstrip("+").isdigit():
        prefixed = [route_of(config, name) for name in plan.routes_for(target)]
        if usable := tuple(r for r in prefixed if r is not None):
            return usable
    found = route_of(config, route)
    return () if found is None else (found,)


async def locate_first(
    target: str, routes: tuple[Route, ...], resolver: SipResolver
) -> tuple[Destination, tuple[Route, ...]]:
    """The destination of ``target`` through the first of ``routes`` that resolves (a
    ``sip:`` URI needs none), and the routes after it: the leg fails over to them.

    Raises:
        ResolutionError: no route leads to an address (the message says why, route by route).
    """
    errors: list[str] = []
    for index, route in enumerate(routes or (None,)):
        try:
            return await locate(target, route, resolver), routes[index + 1 :]
        except ResolutionError as exc:
            errors.append(str(exc))
    raise ResolutionError("; ".join(errors))


async def locate(target: str, route: Route | None, resolver: SipResolver) -> Destination:
    """The destination of a leg to ``target`` (a ``sip:``/``sips:`` URI, or a number sent
    through ``route``), its URI resolved as RFC 3263 §4 says.

    Raises:
        ResolutionError: the URI leads to no address (the message says why).
    """
    if target.startswith(("sip:", "sips:")):
        uri = parse_uri(target)
        credentials = None
    elif route is None:
        raise ResolutionError(f"{target}: no outbound route")
    else:
        number = "".join(ch for ch in target if ch.isdigit() or ch == "+")
        uri, credentials = route.uri(number), route.credentials
    if not isinstance(uri, SipUri):
        raise ResolutionError(f"{target}: not a SIP URI")
    return Destination(uri=uri, targets=await resolver.resolve(uri), credentials=credentials)
