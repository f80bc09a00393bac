"""Call forwarding and call waiting for every call to a Centrex subscriber.

Theory of operation
-------------------
``Forwarding.forward`` stands in front of ``b2bua.Forwarder.forward`` for every leg a call
asks for (a call to a subscriber's number from a trunk or a phone, a phone dialling an
extension, a dialplan's ``forward`` step). A leg to anything but a subscriber goes to the
forwarder as it is. A leg to a subscriber is decided by ``policy.diversion`` from the
subscriber's services in force (``settings_of``):

- forwarding always (CFU) diverts before anything rings;
- do-not-disturb, or a subscriber already in a call (``in_call``, ``registry.Calls``) with
  call waiting off, is busy: forwarding on busy (CFB) diverts, else the caller gets 486; with
  call waiting on, the second call rings its phones as any call does (they show it);
- a subscriber with no usable registration diverts when not reachable;
- otherwise its phones ring, for the no-answer forwarding's ring time when that is set, and
  a busy answer (486/600) diverts on busy, no answer in that time on no answer (CFNR).

A diversion's target is a number (E.164, or an extension of the subscriber's group), or
``VM``, the subscriber's own voicemail box (``voicemail``: the message is recorded into the
mailbox named by the subscriber's number digits). A subscriber target is decided the same way
in its turn (its own forwarding applies); any other number goes out through the outbound
routes as a leg of the forwarding subscriber (``calls.diverted``: its barring, its payment,
the ``Diversion`` and ``History-Info`` entries). A diversion the chain refuses (the sixth, or
back to a number already in it: ``policy.diversion.Chain``) is not made: the subscriber is
then treated as having no forwarding at all, so the caller gets what it would have got
without (the phones ring, 486, or 480).

A target that is a number this server runs a dialplan for (an IVR, a conference room:
``plans.hosts``) is not called through the routes: the caller is handed to that plan here
(``plan_transfer.PlanTransfers.diverts``, run by the session host's ``follow`` once the
forward returns), its CDR naming the plan and carrying the diversion. A transfer's leg
(``placing_with``) is handed over by the transfer when the transferee is a session's caller;
otherwise the diversion goes out through the routes and the log says why
(``call.diversion_to_plan_routed``).
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Protocol

from callserver.calls.call import Call
from callserver.calls.diverted import Diverted
from callserver.calls.phones import PhoneBook
from callserver.calls.plan_transfer import IntoPlan, PlanTransfers, Voicemail
from callserver.calls.session import ForwardOutcome
from callserver.config.centrex import Centrex, Subscriber
from callserver.policy.diversion import (
    MAX_DIVERSIONS,
    Chain,
    after_ringing,
    before_ringing,
    ring_time,
)
from callserver.policy.numbering import normalise
from callserver.policy.services import VOICEMAIL, DiversionReason, ServiceSettings

__all__ = ["Forwarding", "Place", "Voicemail"]


class Place(Protocol):
    """Place one leg and bridge it (``b2bua.Forwarder.forward``)."""

    def __call__(
        self,
        call: Call,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
        diverted: Diverted | None = None,
    ) -> Awaitable[ForwardOutcome]:
        """The leg's outcome once it has ended, or why it was not placed."""


class Forwarding:
    """The services of calls to subscribers; see the module docstring.

    Args:
        place: places a leg (the forwarder's).
        phones: the subscribers and their registered contacts.
        centrex: the groups in force.
        settings_of: a subscriber's services in force, by its number.
        in_call: True while the subscriber of a number is in an answered call.
        voicemail: records a diverted caller's message (None: a diversion to ``VM`` fails).
        outbound_ring_timeout: how long a diverted leg to an outside number may ring.
        host: our host name, for the URIs of the diversion entries.
        now: the calls layer's clock.
        plans: the numbers with a plan here and the hand-offs to them (None: every diverted
            leg is placed).
    """

    def __init__(
        self,
        place: Place,
        *,
        phones: PhoneBook,
        centrex: Callable[[], Centrex],
        settings_of: Callable[[str], ServiceSettings],
        in_call: Callable[[str], bool],
        voicemail: Voicemail | None,
        outbound_ring_timeout: Callable[[], float],
        host: str,
        now: Callable[[], float],
        plans: PlanTransfers | None = None,
    ) -> None:
        self._place = place
        self._phones = phones
        self._centrex = centrex
        self._settings_of = settings_of
        self._in_call = in_call
        self._voicemail = voicemail
        self._outbound_ring_timeout = outbound_ring_timeout
        self._host = host
        self._now = now
        self._plans = plans
        self._into_plan: IntoPlan | None = None if plans is None else plans.diverts

    def placing_with(
        self, place: Place, voicemail: Voicemail | None, into_plan: IntoPlan | None = None
    ) -> Forwarding:
        """These services with each leg placed by ``place``, a diversion to ``VM`` taken by
        ``voicemail`` and one to a number with a plan here by ``into_plan`` (a transfer's
        legs: ``calls.transfer_services``; None: placed through the routes)."""
        other = copy.copy(self)
        other._place, other._voicemail, other._into_plan = place, voicemail, into_plan
        return other

    async def forward(
        self,
        call: Call,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
    ) -> ForwardOutcome:
        """The outcome of the call's leg to ``target``, with the services of the subscriber
        it names applied (module docstring); any other target is placed as it is."""
        subscriber = None if originating else self._subscriber(call, target)
        if subscriber is None:
            return await self._place(
                call,
                target=target,
                route=route,
                ring_timeout=ring_timeout,
                caller_id=caller_id,
                originating=originating,
            )
        chain = Chain.of(
            called=subscriber.number,
            host=self._host,
            diversion=call.diversion,
            history=call.history_info,
        )
        return await self._deliver(call, subscriber, chain, None, ring_timeout, caller_id)

    async def _deliver(
        self,
        call: Call,
        subscriber: Subscriber,
        chain: Chain,
        diverted: Diverted | None,
        ring_timeout: float,
        caller_id: str | None,
    ) -> ForwardOutcome:
        """Divert, refuse or ring ``subscriber``; ``diverted``: how the call came to it."""
        settings = self._settings_of(subscriber.number)
        needed = settings.forward_unreachable or settings.forward_no_answer  # else unread
        registered = not needed or bool(self._phones.contacts(subscriber, self._now()))
        in_call = self._in_call(subscriber.number)
        first = before_ringing(settings, registered=registered, in_call=in_call)
        if first is not None and first != "busy":
            args = (call, subscriber, chain, first, settings, ring_timeout, caller_id)
            outcome = await self._divert(*args)
            if outcome is not None:
                return outcome
            settings = settings.forwarding_off()
            first = before_ringing(settings, registered=registered, in_call=in_call)
        if first == "busy":
            call.log.info("call.subscriber_busy", subscriber=subscriber.number, dnd=settings.dnd)
            detail = "do not disturb" if settings.dnd else "in a call, call waiting off"
            return ForwardOutcome(result="busy", sip_code=486, detail=detail)
        outcome = await self._place(
            call,
            target=subscriber.number,
            route=None,
            ring_timeout=ring_time(settings, ring_timeout),
            caller_id=caller_id,
            diverted=diverted,
        )
        then = after_ringing(settings, outcome.result) if registered else None
        if then is None:
            return outcome
        args = (call, subscriber, chain, then, settings, ring_timeout, caller_id)
        status = 408 if then == "no-answer" else outcome.sip_code  # no answer: timed out
        return await self._divert(*args, status=status) or outcome

    async def _divert(
        self,
        call: Call,
        subscriber: Subscriber,
        chain: Chain,
        reason: DiversionReason,
        settings: ServiceSettings,
        ring_timeout: float,
        caller_id: str | None,
        *,
        status: int | None = None,
    ) -> ForwardOutcome | None:
        """Divert the call for ``reason`` (``status``: the phones' answer that made it);
        None when the chain refuses the diversion."""
        written = settings.target_for(reason) or ""
        target = self._target(subscriber, written)
        if target is None or not chain.allows(target):
            call.log.warning(
                "call.diversion_stopped",
                subscriber=subscriber.number,
                target=written,
                reason=reason,
                diversions=chain.count,
                why=_why_stopped(target, chain),
            )
            return None
        chain = chain.diverted(
            by=subscriber.number, to=target, reason=reason, host=self._host, status=status
        )
        group = self._centrex().groups.get(subscriber.group)
        customer = None if group is None else group.customer
        diverted = Diverted(by=subscriber, customer=customer, reason=reason, chain=chain)
        call.log.info(
            "call.diverted",
            subscriber=subscriber.number,
            target=target,
            reason=reason,
            diversions=chain.count,
        )
        if target == VOICEMAIL:
            return await self._to_voicemail(call, diverted)
        following = self._centrex().subscriber(target)
        if following is not None:
            return await self._deliver(call, following, chain, diverted, ring_timeout, caller_id)
        if self._plans is not None and self._plans.hosts(target):
            if self._into_plan is None:
                why = "transferee_placed"  # a transfer's leg: its transferee runs no plan
                call.log.info("call.diversion_to_plan_routed", target=target, why=why)
            elif self._into_plan(call, target, reason, subscriber.number):
                return ForwardOutcome(result="answered", sip_code=200)
            else:
                return None
        return await self._place(
            call,
            target=target,
            route=None,
            ring_timeout=self._outbound_ring_timeout(),
            caller_id=caller_id,
            diverted=diverted,
        )

    async def _to_voicemail(self, call: Call, diverted: Diverted) -> ForwardOutcome:
        """The caller leaves a message in the forwarding subscriber's box."""
        if call.session is None:
            return ForwardOutcome(result="failed")
        if self._voicemail is None:  # a transfer's: its session is not the diverted party's
            return ForwardOutcome(result="failed", sip_code=480, detail="voicemail not reachable")
        if call.facts is not None:
            call.facts.extra["diversion_reason"] = diverted.reason
            call.facts.extra["diverted_from"] = diverted.by.number
        await self._voicemail(call.session, diverted.by.number.lstrip("+"))
        return ForwardOutcome(result="answered")

    def _subscriber(self, call: Call, target: str) -> Subscriber | None:
        facts = call.facts
        return self._phones.subscriber(
            target, facts.called if facts else None, facts.caller if facts else None
        )

    def _target(self, subscriber: Subscriber, written: str) -> str | None:
        """A forwarding target as a number to divert to (an extension of the subscriber's
        group: its subscriber's number), ``VM``, or None when it is no number."""
        if written == VOICEMAIL:
            return VOICEMAIL
        if written.isdigit() and len(written) <= _EXTENSION_DIGITS:  # as centrex.yaml reads it
            colleague = self._centrex().extension(subscriber.group, written)
            return None if colleague is None else colleague.number
        try:
            return normalise(written)
        except ValueError:
            return None


_EXTENSION_DIGITS = 6  # a target of at most this many digits is an extension of the group


def _why_stopped(target: str | None, chain: Chain) -> str:
    """Why a diversion was not made, for the log: no such target, the limit, or a loop."""
    if target is None:
        return "no_such_target"
    return "limit" if chain.count >= MAX_DIVERSIONS else "loop"
