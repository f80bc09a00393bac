"""Calls the server places as a customer's own call out: campaigns' calls and callbacks.

Theory of operation
-------------------
:func:`call_as_customer` places the call through the ``forward`` machinery
(``b2bua.Forwarder.place_answered``): a caller side that is no SIP call (:func:`customer_side`:
a ``Call`` with no transaction, never in the registry) stands for the customer, so the leg is
routed by its prefix, barred by the customer's classes, rated, and gets its own CDR (leg
``b``, direction outbound, with the ``extra`` fields the caller names: a campaign's name, a
callback's queue and agent). It holds one channel of the customer's pool
(``customer:<name>``) for its whole life, and the number's own pool. The answered leg is
handed to ``use`` (a campaign runs a plan on it, a callback bridges it to the agent), which
releases it; a leg that was not answered is released here and its ``ForwardOutcome`` returned
(``busy``, ``no_answer``, ``barred``: 403 with no INVITE sent, ``failed``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, TypeVar

import structlog

from callserver.calls.call import Call
from callserver.calls.leg import Leg, leg_facts
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session_host import ForwardOutcome
from callserver.policy.limits import Grant
from callserver.sip.ids import new_call_id

__all__ = ["CustomerCall", "PlacesAnswered", "call_as_customer", "customer_side"]

log = structlog.get_logger("callserver.calls")

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomerCall:
    """Call ``number`` (E.164) as ``customer``'s call from ``caller_id`` (E.164 with ``+``),
    ringing ``ring_timeout`` seconds (None: the server's ``calls.outbound_ring_timeout``);
    ``extra``: the leg's CDR fields, ``tags`` its log's; ``call_id``: the leg's Call-ID (its
    CDR's ``call_id``; None: a new one), for whoever must name the call before it is placed."""

    customer: str
    caller_id: str
    number: str
    ring_timeout: float | None = None
    call_id: str | None = None
    extra: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    tags: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))


class PlacesAnswered(Protocol):
    """How a leg is placed and its answer awaited (``b2bua.Forwarder.place_answered``)."""

    async def place_answered(
        self,
        call: Call,
        payer: CallFacts | None,
        facts: CallFacts,
        *,
        caller_id: str | None,
        ring_timeout: float,
    ) -> Leg | ForwardOutcome:
        """The answered leg, or how it failed."""


async def call_as_customer(
    services: CallServices,
    forwarder: PlacesAnswered,
    request: CustomerCall,
    use: Callable[[Leg], Awaitable[T]],
) -> T | ForwardOutcome:
    """Place ``request``'s call and hand the answered leg to ``use`` (module docstring); no
    channel free in the customer's pool is a ``failed`` 503."""
    admission = services.admission
    pool = admission.channels.acquire([f"customer:{request.customer}"])
    if not isinstance(pool, Grant):
        return ForwardOutcome(result="failed", sip_code=503)
    try:
        now = services.now()
        side = customer_side(request.customer, request.caller_id, request.number, now)
        side.log = side.log.bind(**request.tags)
        inside = admission.inside_group(request.customer, request.number)
        facts = leg_facts(side, request.number, now, inside)
        if request.call_id is not None:
            facts.call_id = request.call_id
        facts.originating, facts.forwarded_from = True, None
        facts.extra.update(request.extra)
        ring_timeout = request.ring_timeout
        if ring_timeout is None:
            ring_timeout = services.live.settings.calls.outbound_ring_timeout
        placed = await forwarder.place_answered(
            side, side.facts, facts, caller_id=request.caller_id, ring_timeout=ring_timeout
        )
        if isinstance(placed, ForwardOutcome):
            return placed
        return await use(placed)
    finally:
        admission.release(pool)


def customer_side(customer: str, caller: str, called: str, now: float) -> Call:
    """A caller side that stands for ``customer`` (no SIP call of its own) calling ``called``
    from ``caller`` (E.164 with ``+``)."""
    side = Call(call_id=new_call_id(), key=None, offered_at=now)
    facts = CallFacts(call_id=side.call_id, caller=caller, called=called, offered_at=now)
    facts.customer, facts.originating = customer, True
    facts.caller_e164 = caller.lstrip("+")
    side.facts = facts
    side.log = log.bind(call_id=side.call_id)
    return side
