"""A transfer's new leg to a Centrex subscriber, with the subscriber's services applied.

Theory of operation
-------------------
A blind transfer to a subscriber (``calls.transfer``: ``Transfers.attempt``) is taken as any
call to it: ``SubscriberTransfers.place`` hands it to ``forwarding.Forwarding``, which
applies the subscriber's forwarding always, on busy, on no answer (with its ring time) and
when not reachable, do-not-disturb and call waiting, in the same order and with the same
chain of diversions. The only difference is how each leg is placed: a forward's legs are
bridged to the caller and awaited until they end, a transfer's are only placed and awaited
until answered (``_AnsweredLegs``, through ``b2bua.Forwarder.place_answered``), since the
transfer bridges the answered one itself.

- The leg to the subscriber's phones is the transferor's, as any transfer leg is (its CDR
  facts from ``transfer_facts``: payer the transferor's customer, ``transferred_from``).
- A diverted leg is the forwarding subscriber's, as for any forward (``calls.diverted``:
  barred by its classes, paid by it, with ``Diversion`` and ``History-Info``); it shows the
  transferor's number and keeps ``transferred_from``.
- A diversion to ``VM`` leaves the transferee's message in the box when the transferee is
  the caller of the call (``plan_transfer.PlanTransfers``: the transfer hands the call to
  the box as it would to a plan; its CDR carries the diversion). When the calling phone
  transfers, the transferee is a leg the server placed, which cannot record: 480.
- A diversion to a number with a plan here (an IVR, a conference room) hands the transferee
  to that plan the same way (``PlanTransfers.diverting``); a transferee the server placed
  is sent out through the routes instead (``call.diversion_to_plan_routed``).
- A subscriber that refuses before anything rings (do-not-disturb, busy with call waiting
  off and no forwarding on busy) gets a CDR for the transfer leg that was not placed, with
  ``end_detail`` saying why; its NOTIFY says 486.

A target that names no subscriber is None here: the transfer places it as before.
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.calls.call import Call
from callserver.calls.diverted import Diverted
from callserver.calls.forwarding import Forwarding
from callserver.calls.leg import Leg
from callserver.calls.plan_transfer import PlanTransfers
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.calls.transfer import PlaceLeg, transfer_facts
from callserver.config.centrex import Centrex, Subscriber

__all__ = ["SubscriberTransfers"]


class SubscriberTransfers:
    """Transfer legs to subscribers through their services; see the module docstring.

    Args:
        place: places a leg as a payer's call and waits for its answer (the forwarder's).
        forwarding: the subscribers' services, as every call to them gets them.
        centrex: the groups in force.
        plans: the hand-offs of transferees (to a voicemail box, here).
    """

    def __init__(
        self,
        services: CallServices,
        place: PlaceLeg,
        forwarding: Forwarding,
        centrex: Callable[[], Centrex],
        plans: PlanTransfers,
    ) -> None:
        self.services = services
        self._place = place
        self._forwarding = forwarding
        self._centrex = centrex
        self._plans = plans

    async def place(
        self, call: Call, facts: CallFacts, ring_timeout: float
    ) -> Leg | ForwardOutcome | None:
        """The transfer leg of ``facts`` (the transferor's call to ``facts.called``) as a
        call to that subscriber gets it: answered, or why not; None when it is none."""
        centrex = self._centrex()
        transferor = centrex.subscriber(facts.subscriber or "")
        if transferor is None:
            return None
        called = centrex.subscriber(facts.called) or centrex.extension(
            transferor.group, facts.called
        )
        if called is None:
            return None
        legs = _AnsweredLegs(self.services, self._place, call, facts, transferor)
        caller = call.facts is not None and call.facts.subscriber != transferor.number
        boxes = self._plans.boxing(call) if caller else None  # else the transferor's call
        into = self._plans.diverting(call) if caller else None
        outcome = await self._forwarding.placing_with(legs, boxes, into).forward(
            call, target=called.number, route=None, ring_timeout=ring_timeout, caller_id=None
        )
        if legs.answered is not None or self._plans.boxed(call):
            return legs.answered or outcome
        if not legs.placed:  # refused before anything rang: the leg's CDR says why
            call.log.info("call.transfer_target_refused", target=called.number, why=outcome.detail)
            facts.called = called.number
            facts.extra["end_detail"] = outcome.detail
            self.services.reporter.ended(facts, outcome.result, sip_code=outcome.sip_code)
        return outcome


class _AnsweredLegs:
    """``forwarding.Place`` for a transfer: each leg placed answered, none bridged here."""

    def __init__(
        self,
        services: CallServices,
        place: PlaceLeg,
        call: Call,
        facts: CallFacts,
        transferor: Subscriber,
    ) -> None:
        self._services = services
        self._place = place
        self._call = call
        self._first: CallFacts | None = facts  # the transferor's leg to the subscriber
        self._replaced = str(facts.extra.get("transferred_from", ""))
        self._transferor = transferor
        self.placed = False  # a leg was placed (its CDR is written by the forwarder)
        self.answered: Leg | None = None

    async def __call__(
        self,
        call: Call,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
        diverted: Diverted | None = None,
    ) -> ForwardOutcome:
        """Place the leg to ``target`` and wait for its answer: ``answered`` (kept in
        ``answered`` for the transfer to bridge), or the outcome of its failure."""
        del route, caller_id, originating  # a transfer's leg: the transferor's, or diverted
        facts, payer, shown = self._facts(target, diverted)
        self.placed = True
        placed = await self._place(
            call, payer, facts, caller_id=shown, ring_timeout=ring_timeout, diverted=diverted
        )
        if isinstance(placed, ForwardOutcome):
            return placed
        self.answered = placed
        return ForwardOutcome(result="answered", sip_code=200)

    def _facts(
        self, target: str, diverted: Diverted | None
    ) -> tuple[CallFacts, CallFacts, str | None]:
        """The leg's CDR facts, the facts it is barred and channelled by, and the number it
        shows (None: the transferor's own presentation)."""
        first, self._first = self._first, None
        if diverted is None and first is not None:
            first.called = target
            return first, first, None
        services, transferor = self._services, self._transferor
        facts = transfer_facts(services, self._call, self._replaced, transferor, target)
        if diverted is None:
            return facts, facts, None
        inside = services.admission.inside_group(diverted.customer, target)
        diverted.mark(facts, inside_group=inside)
        facts.subscriber = None  # paid by the forwarding subscriber, as any forward
        return facts, diverted.barring_facts(target, services.now()), transferor.number
