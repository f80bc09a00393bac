"""Where a forwarded leg goes, or why it may not be placed (steps 1-4 of ``calls.b2bua``).

``leg_target`` decides for a leg to ``target`` placed as ``payer``'s call (the inbound
caller's for a forward, the transferor's for a transfer, ``calls.transfer``): a Centrex
phone's registered contacts (a subscriber's number, or an extension of the payer's group;
not barred, no route needed), else a destination through the outbound routes after the loop
check and the payer's barring. A leg that may not be placed has its CDR written here and
its outcome returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.calls.branching import refused
from callserver.calls.call import Call
from callserver.calls.destination import Destination, Route, locate_first, routes_for
from callserver.calls.phones import Branch, PhoneBook
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.config.centrex import Subscriber
from callserver.transport.resolver import ResolutionError, SipResolver

__all__ = ["Target", "leg_target", "locate", "routes"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """A phone's contacts to ring at once, or a destination and the routes after its own."""

    branches: tuple[Branch, ...] = ()
    destination: Destination | None = None
    later: tuple[Route, ...] = ()


async def leg_target(
    services: CallServices,
    phones: PhoneBook | None,
    resolver: SipResolver,
    call: Call,
    payer: CallFacts | None,
    facts: CallFacts,
    route: str | None,
) -> Target | ForwardOutcome:
    """Where the leg of ``facts`` goes, or the outcome of a leg that may not be placed."""
    target = facts.called
    phone = _subscriber(phones, target, payer, call.facts)
    route = None if phone else route
    refusal = _refusal(services, call, payer, target, route, phone=phone is not None)
    if refusal is None and phone is not None:
        assert phones is not None
        facts.called = phone.number
        facts.inside_group = True  # a call delivered to our own phone: nothing to charge
        branches = phones.contacts(phone, services.now())
        if branches:
            return Target(branches=branches)
        refusal = "unavailable", 480, "not registered"
    elif refusal is None:
        located = await locate(resolver, call, target, routes(services, target, route))
        if not isinstance(located, str):
            return Target(destination=located[0], later=located[1])
        refusal = "no_route", 503, located
    reason, code, detail = refusal
    facts.extra["end_detail"] = detail
    services.reporter.ended(facts, reason, sip_code=code)
    return refused(reason, code)


def _subscriber(
    phones: PhoneBook | None, target: str, *whose: CallFacts | None
) -> Subscriber | None:
    """The Centrex subscriber ``target`` names: a number, or an extension of the group of the
    first called or calling number of ``whose`` (the payer's, then the call's) that has one."""
    if phones is None or target.startswith(("sip:", "sips:")):
        return None
    numbers = [n for facts in whose if facts for n in (facts.called, facts.caller)]
    return phones.subscriber(target, *numbers)


def _refusal(
    services: CallServices,
    call: Call,
    payer: CallFacts | None,
    target: str,
    route: str | None,
    *,
    phone: bool,
) -> tuple[str, int, str] | None:
    """Why the leg may not be placed: (reason, SIP code, CDR end_detail), or None. A
    phone of the operator's own needs no route and is not barred."""
    if call.max_forwards <= 1:
        call.log.warning("call.forward_loop", target=target)
        return "loop", 483, f"max_forwards {call.max_forwards}"
    if phone:
        return None
    barred = services.admission.barred(payer, target, services.live.tariffs)
    if barred is not None:  # before the route: a barred number is refused as such
        call.log.info("call.forward_barred", target=target, barring=barred)
        return "barred", 403, barred
    if not target.startswith(("sip:", "sips:")) and not routes(services, target, route):
        call.log.error("call.forward_no_route", route=route)
        return "no_route", 503, f"route {route or '(default)'}"
    return None


def routes(services: CallServices, target: str, route: str | None) -> tuple[Route, ...]:
    """The routes a leg to ``target`` takes, in order (a step's ``route``, else the number's)."""
    admission = services.admission  # its files as reloaded
    return routes_for(admission.table.config, admission.outbound, target, route)


async def locate(
    resolver: SipResolver, call: Call, target: str, routes: tuple[Route, ...]
) -> tuple[Destination, tuple[Route, ...]] | str:
    """The leg's destination and the routes after its own, or why there is none (the
    CDR's end_detail)."""
    try:
        return await locate_first(target, routes, resolver)
    except ResolutionError as exc:
        call.log.warning("call.forward_unresolved", target=target, error=str(exc))
        return f"dns: {exc}"
