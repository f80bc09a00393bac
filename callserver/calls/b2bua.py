"""Forwarding as a B2BUA: a new UAC leg for a ``forward`` step, bridged to the caller.

Theory of operation
-------------------
``Forwarder.forward`` runs inside the call's dialplan task. In order, each refusing with its
own outcome and a CDR for the leg that was not placed:

1. loop protection: the new INVITE carries the inbound Max-Forwards less one; an inbound
   value of 1 or less means a forwarding loop (RFC 3261 §16.6 step 3: 483 Too Many Hops);
2. outbound barring of the caller's trunk, customer, phone and group (``policy.barring``;
   an emergency number never is): 403, ``barred``;
3. the route (``calls.destination``): for a number the one a step names, else the emergency
   route, else its prefix's routes in order, else the default one; the URI's own host for a
   ``sip:`` target. A Centrex phone (``calls.phones``: a subscriber's number, or an
   extension of the call's group) needs none and is not barred: its registered contacts
   are the destination, and none is ``unavailable`` (480);
4. the destination: the URI resolved into the addresses to try (``calls.destination``,
   RFC 3263); a name that resolves to nothing is ``no_route`` (503);
5. a channel for the leg in the same pools as the inbound call (a forwarded call holds one
   channel for each leg; a diverted leg in the forwarding subscriber's: ``calls.diverted``),
   and an RTP port.

Then the INVITE goes out with our SDP offer to the first address (to a phone: one INVITE to
each registered contact at once, ``calls.branching``). No response at all within
``calls.forward_response_timeout``, or a 503, sends a new INVITE to the next address, if any
(RFC 3263 §4.3); the abandoned one is cancelled should it answer late. While it rings the
caller gets 180 Ringing, or, when audio already flows (answered, or early media), a 425 Hz
ringback tone (ETSI TR 101 041); ``calls.ringing`` does both.
A 2xx answers the caller if needed and bridges the two streams in the media engine (relay,
transcoding, DTMF); from then on a ``bridge.Bridge`` answers the in-dialog requests of both
legs (hold with music, new offers, UPDATE, INFO digits). A 486/600 is ``busy``, no answer
within ``ring_timeout`` CANCELs the leg (``no_answer``), anything else is ``failed``. A
bridged call lasts until either side hangs up: the caller's BYE cancels the dialplan task,
whose cleanup sends BYE to the leg; the leg's BYE returns ``answered`` and the plan ends,
which hangs the caller up. Every path releases the leg's channel and stream once and writes
its CDR (leg ``b``, linked to the inbound call's Call-ID).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from callserver.calls.branching import (
    cancel,
    outcome_of,
    ring_all,
    send_invite,
    settled,
    take_response,
)
from callserver.calls.bridge import bridge_of
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.customer_calls import CustomerCall, call_as_customer
from callserver.calls.diverted import OVER_CHANNEL_LIMIT, Diverted, channelled_by
from callserver.calls.leg import Leg, leg_facts
from callserver.calls.leg_target import Target, leg_target
from callserver.calls.originating import leg_from
from callserver.calls.phase import CallPhase
from callserver.calls.phones import COMPLETED_ELSEWHERE, PhoneBook
from callserver.calls.pickup import bridge_picked
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.ringing import ring_caller, ringing
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.calls.session_host import Shown
from callserver.calls.transfer import Transfers, abandon, transferred_to
from callserver.media.engine import PortsExhausted
from callserver.media.stream import MediaStream
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
)
from callserver.sip.headers import parse_address
from callserver.sip.offer_answer import AnswerConfig, build_offer
from callserver.transport.resolver import SipResolver

__all__ = ["ForwardOutcome", "Forwarder"]  # ForwardOutcome: calls.session's, for the verbs

T = TypeVar("T")


class Forwarder:
    """The forwarded legs of the calls in ``calls``; see the module docstring."""

    def __init__(self, services: CallServices, calls: Calls) -> None:
        self.services = services
        self.calls = calls
        self.bridges = Bridges(calls)
        self.resolver = SipResolver(clock=services.loop.time)  # the app's, from dns settings
        self.phones: PhoneBook | None = None  # Centrex phones and their contacts (app.py)
        self.transfers = Transfers(
            services, calls, self.place_answered, self._teardown, self.bridges
        )

    async def forward(
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
        """Place the leg, ring it, bridge it; returns when it ends (or could not be placed).
        ``originating``: the caller's own call out, presented and paid as the caller's;
        ``diverted``: a subscriber's forwarding placed it (``calls.diverted``). A transfer
        (``calls.transfer``) may put another leg in its place; the call goes on."""
        now, admission = self.services.now(), self.services.admission
        customer = call.facts.customer if call.facts else None
        facts = leg_facts(call, target, now, admission.inside_group(customer, target))
        facts.originating = originating
        who = call.facts if diverted is None else diverted.barring_facts(target, now)
        if diverted is not None:
            diverted.mark(facts, inside_group=admission.inside_group(diverted.customer, target))
        to = await self._target(call, who, facts, route)
        if isinstance(to, ForwardOutcome):
            return to
        leg = self._place(call, call.facts, facts, to, caller_id, diverted)
        if isinstance(leg, ForwardOutcome):
            return leg
        try:
            outcome = await self._run(leg, ring_timeout)
            while (successor := await transferred_to(leg)) is not None:
                self._teardown(leg)
                leg = successor
                await self._connect(leg, 200)
            return outcome
        finally:
            if leg.detached:  # a transfer from the caller's side holds it (calls.handover)
                leg.orphaned = True
            elif leg.a is call:  # else an attended transfer gave it to another call
                abandon(leg, self._teardown)
                self._teardown(leg)

    async def place_answered(
        self,
        call: Call,
        payer: CallFacts | None,
        facts: CallFacts,
        *,
        caller_id: str | None,
        ring_timeout: float,
        diverted: Diverted | None = None,
        shown: Shown | None = None,
        lost: Callable[[], bool] | None = None,
    ) -> Leg | ForwardOutcome:
        """Place a leg of ``call`` to ``facts.called`` as ``payer``'s call (routed, barred and
        channelled as its, ``calls.transfer``; ``diverted``: its Diversion entries; ``shown``:
        a display name and headers for the called phone) and wait for its answer; the
        answered leg is the caller's to bridge (a forward tears it down), a failed one is
        released here. Cancelled while it rings, its CANCEL says "Call completed elsewhere"
        when ``lost`` says so (RFC 3326 §2)."""
        to = await self._target(call, payer, facts, None)
        if isinstance(to, ForwardOutcome):
            return to
        leg = self._place(call, payer, facts, to, caller_id, diverted, shown)
        if isinstance(leg, ForwardOutcome):
            return leg
        try:
            status = await ringing(self.services, self.calls, self.resolver, leg, ring_timeout)
        except BaseException:
            if lost is not None and lost():
                leg.cancel_headers = COMPLETED_ELSEWHERE
            self._teardown(leg)
            raise
        if status >= 300:
            self._teardown(leg)
            return outcome_of(status, leg.cancelled)
        return leg

    async def place_agent(
        self,
        call: Call,
        target: str,
        ring_timeout: float,
        shown: Shown,
        lost: Callable[[], bool],
    ) -> Leg | None:
        """Ring a queue agent's phones (``calls.queue_calls``) as the caller's call inside its
        customer's group, without the agent's forwarding; the answered leg, else None.
        ``lost``: the ring was cancelled because another agent answered."""
        facts = leg_facts(call, target, self.services.now(), True)
        leg = await self.place_answered(
            call,
            call.facts,
            facts,
            caller_id=None,
            ring_timeout=ring_timeout,
            shown=shown,
            lost=lost,
        )
        return leg if isinstance(leg, Leg) else None

    async def bridge_agent(self, leg: Leg) -> None:
        """Bridge the caller with a queue agent's answered leg until one of them hangs up."""
        await self._connect(leg, 200)

    async def call_out(
        self, request: CustomerCall, use: Callable[[Leg], Awaitable[T]]
    ) -> T | ForwardOutcome:
        """Place ``request`` as its customer's own call out and hand the answered leg to
        ``use`` (``customer_calls.call_as_customer``); else how it failed."""
        return await call_as_customer(self.services, self, request, use)

    async def join_legs(self, one: Leg, other: Leg) -> None:
        """Bridge two answered legs of no SIP call to each other (a queue's callback: the
        agent and the number called) until either hangs up or the server stops
        (``handover.Handover.hold``); both are then to be released."""
        await self.transfers.handover.hold(one, other)

    async def transferred(self, leg: Leg) -> Leg | None:
        """After an agent's ``leg`` ended: the leg its transfer put in its place, or None."""
        return await transferred_to(leg)

    def release(self, leg: Leg) -> None:
        """End a leg ``place_answered`` gave: BYE it, release its channel and stream, write
        its CDR (``calls.originated``: a leg whose caller side is no SIP call); a transfer
        of it still attempted is stopped."""
        abandon(leg, self._teardown)
        self._teardown(leg)

    async def _target(
        self, call: Call, payer: CallFacts | None, facts: CallFacts, route: str | None
    ) -> Target | ForwardOutcome:
        services, phones = self.services, self.phones
        return await leg_target(services, phones, self.resolver, call, payer, facts, route)

    def _place(
        self,
        call: Call,
        payer: CallFacts | None,
        facts: CallFacts,
        to: Target,
        caller_id: str | None,
        diverted: Diverted | None = None,
        shown: Shown | None = None,
    ) -> Leg | ForwardOutcome:
        services = self.services
        grant = services.admission.acquire_leg(channelled_by(payer, diverted, facts), facts.called)
        if grant is None:  # the pools are full: the leg's CDR and the caller's say so
            facts.extra["end_detail"] = OVER_CHANNEL_LIMIT
            services.reporter.ended(facts, "channel_limit", sip_code=503)
            return ForwardOutcome(result="failed", sip_code=503, detail=OVER_CHANNEL_LIMIT)
        try:
            stream = services.media.open_stream()
        except (PortsExhausted, OSError):
            services.admission.release(grant)
            services.reporter.ended(facts, "rejected", sip_code=503)
            return ForwardOutcome(result="failed", sip_code=503)
        offer = build_offer(self._offer_config(stream))
        host = services.endpoint.config.host
        from_header, identity = leg_from(payer, caller_id, services.admission, host, facts)
        if shown is not None and shown.display is not None:
            from_header = f"{shown.display_name()}{from_header}"
        services.reporter.opened(facts)
        setup, ended = services.loop.create_future(), asyncio.Event()
        destination = to.destination
        from_addr = parse_address(from_header)
        leg = Leg(call, None, stream, offer, facts, grant, setup, ended, destination, from_addr)
        leg.later_routes = to.later
        if destination is not None:  # the identity goes toward a carrier, not to our phones
            leg.headers = identity
        leg.headers += () if diverted is None else diverted.headers
        leg.headers += () if shown is None else shown.headers
        call.log.info(
            "call.forwarding", target=facts.called, leg_call_id=facts.call_id, rtp_port=stream.port
        )
        if destination is not None:
            send_invite(self.services, self.calls, leg)
        else:
            leg.branches, leg.forks = to.branches, {}
            ring_all(self.services, self.calls, leg)
        return leg

    async def _run(self, leg: Leg, ring_timeout: float) -> ForwardOutcome:
        ring_caller(self.services, leg)
        status = await ringing(self.services, self.calls, self.resolver, leg, ring_timeout)
        if status >= 300:
            return outcome_of(status, leg.cancelled)
        return await self._connect(leg, status)

    async def _connect(self, leg: Leg, status: int) -> ForwardOutcome:
        """Bridge the caller with the answered leg, or with the phone that picked it up."""
        if leg.picked is not None:  # another phone picked the ringing leg up (calls.pickup)
            return await bridge_picked(self.services, self.bridges, leg)
        return await self._bridged(leg, status)

    async def _bridged(self, leg: Leg, status: int) -> ForwardOutcome:
        """Answer the caller if need be, bridge it with the answered ``leg``, wait its end."""
        a = leg.a
        if a.session is not None and not a.session.answered:
            await a.session.answer()
        if a.stream is None or not a.phase.in_dialog:
            return ForwardOutcome(result="failed", sip_code=status)
        self.services.media.bridge(a.stream, leg.stream)
        assert leg.dialog_id is not None
        bridge = bridge_of(self.services, a, leg.dialog_id, leg.stream, leg.sdp_version)
        leg.bridge = self.bridges.open(bridge)
        if a.phase is CallPhase.ANSWERED:  # else it is ending already
            a.enter(CallPhase.BRIDGED)
        a.log.info("call.bridged", leg_call_id=leg.facts.call_id)
        await leg.ended.wait()
        return ForwardOutcome(result="answered", sip_code=status)

    def _teardown(self, leg: Leg) -> None:
        services = self.services
        now = services.now()
        self.calls.remove_leg(leg)
        if leg.picked is not None:  # the picking phone's call is hung up too
            leg.picked.over.set()
        if leg.bridge is not None:
            self.bridges.close(leg.bridge)
            leg.a.sdp_version = leg.bridge.a.version  # our SDP on the caller's leg moved on
            if leg.a.phase is CallPhase.BRIDGED:
                leg.a.enter(CallPhase.ANSWERED)
        # leg.setup is cancelled with the forward's task when the caller hangs up first.
        answered_or_refused = leg.setup.done() and not leg.setup.cancelled()
        if leg.dialog_id is not None:
            services.endpoint.bye(leg.dialog_id, now)
        elif not answered_or_refused:  # still ringing: CANCEL it (RFC 3261 §9.1)
            cancel(self.services, leg, leg.cancel_headers)
        if leg.a.stream is not None and services.media.is_open(leg.a.stream):
            services.media.stop_playback(leg.a.stream)
        services.media.unbridge(leg.stream)
        services.media.close_stream(leg.stream)
        if leg.grant is not None:
            services.admission.release(leg.grant)
            leg.grant = None
        code = leg.setup.result() if answered_or_refused else 487
        if leg.facts.answered_at is not None:
            # A cap or an RTP timeout that ended the caller's leg ended this one too.
            reason = leg.a.cause if leg.a.cause in _SHARED_CAUSES else leg.end_reason
        else:
            reason = outcome_of(code, leg.cancelled).result
        services.reporter.ended(leg.facts, reason, sip_code=code)
        services.wake()

    # Endpoint events ----------------------------------------------------------------------

    def handle_event(self, event: SipEvent) -> bool:
        """Take the events of forwarded legs and bridges; False for everything else."""
        if isinstance(event, RequestReceived) and event.request.method == "REFER":
            return self.transfers.handle_request(event)  # a transfer (calls.transfer)
        if self.bridges.handle_event(event, self.services.loop.time()):
            return True
        if isinstance(event, ResponseReceived):
            leg = self.calls.leg_by_handle(event.key)
            if leg is None or event.response.cseq().method != "INVITE":
                return False
            take_response(self.services, self.calls, leg, event)
            return True
        if isinstance(event, TransactionTimedOut):
            leg = self.calls.leg_by_handle(event.key)
            status = None if leg is None else settled(leg, event.key, 408)
            if leg is not None and status is not None and not leg.setup.done():
                leg.setup.set_result(status)
            return leg is not None
        if isinstance(event, DialogConfirmed | DialogTerminated):
            leg = self.calls.leg_by_dialog(event.dialog_id)
            if leg is None:
                return False
            if isinstance(event, DialogTerminated):
                self.calls.leg_dialog_ended(leg)
                if leg.end_reason != "transferred":
                    leg.end_reason = event.reason
                leg.ended.set()
            return True
        return False

    # Helpers ------------------------------------------------------------------------------

    def _offer_config(self, stream: MediaStream) -> AnswerConfig:
        return self.services.answer_config(stream.port, stream.stream_id, 1)  # as bridge_of reads


_SHARED_CAUSES = ("max_duration", "rtp_timeout")
