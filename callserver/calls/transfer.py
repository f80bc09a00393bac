"""Call transfer on a bridged call: REFER (RFC 3515), blind (RFC 5589 §6) and attended
(RFC 5589 §7, Replaces: RFC 3891).

Theory of operation
-------------------
``Transfers`` takes every REFER the endpoint passes up. A REFER outside a bridged call gets
403. Inside one, its sender is the *transferor* (a Centrex phone: the caller's, or the one
that answered the forwarded leg; any other party gets 403), the party across the bridge the
*transferee*, and ``Refer-To`` the target. An accepted REFER gets 202 and at once the first
NOTIFY, "100 Trying" (``sip.refer.ReferSubscription``); the last NOTIFY carries the final
response of the new call; a second REFER while one is attempted gets 491.

Blind transfer (Refer-To: a number or an extension; anything else is 403): a new leg to the
target is placed for the transferee's call as if the transferor had dialled it (an extension
of its group, else the number in E.164: routed, barred, channelled and rated as the
transferor's call, ``Transfers.attempt``); the target is shown the transferor's number.
While it is attempted the transferee stays bridged as it was (with the music on hold when
the transferor held it). A failure leaves the call as it was. A subscriber target gets its
services as any call to it (``calls.transfer_services``: forwarding, do-not-disturb, call
waiting); a number with a dialplan here takes a transferee that is a session's caller into
that plan, with no leg placed (``calls.plan_transfer``). On 2xx:

- from the forwarded leg's phone: its leg ends ``transferred`` and the forward puts the new
  leg in its place (``transferred_to``): the caller is bridged to the target. A transferor
  that hangs up after the 202 does not stop the transfer;
- from the caller's phone: ``calls.handover`` bridges the forwarded leg to the new one and
  the caller's call ends ``transferred``.

Attended transfer (Refer-To with Replaces): Replaces names the transferor's consultation
call (``calls.attended``: placed or answered by the transferor, 481 when no call matches, 403
when it is not the transferor's or not bridged). From the forwarded leg's phone, the leg of a
consultation call it placed moves to the transferee's call in the transferor's place and the
consultation call ends ``transferred``; from the caller's phone ``calls.attended`` joins them.

A call answered by pickup (``calls.pickup``) is transferred by the picking phone as by the
phone that answered: the picked leg is the one replaced.

CDRs: a transfer's new leg is leg ``b`` linked (``linked_id``) to the call it was placed for,
paid by the transferor (``subscriber``, ``payer`` caller), and its ``transferred_from`` is
the Call-ID of the transferor's leg it replaced; a leg moved by an attended transfer keeps
its own call's ``linked_id`` and gets ``transferred_from`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from callserver.calls.attended import Attended, Consultation, consultation
from callserver.calls.bridge import Bridge, Side
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call, dialog_of
from callserver.calls.diverted import Diverted
from callserver.calls.handover import Handover
from callserver.calls.leg import Leg
from callserver.calls.plan_transfer import PlanTransfers
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.config.centrex import Subscriber
from callserver.policy.numbering import normalise
from callserver.sip.errors import SipParseError
from callserver.sip.events import RequestReceived
from callserver.sip.ids import new_call_id
from callserver.sip.names import reason_phrase
from callserver.sip.refer import Notify, Refer, ReferSubscription, parse_refer
from callserver.sip.uri import AbsoluteUri, SipUri, unescape

__all__ = ["PlaceLeg", "SubscriberLeg", "Transfers", "abandon", "transferred_to"]

log = structlog.get_logger("callserver.calls.transfer")

_DIALLABLE = frozenset("0123456789+*#")


class PlaceLeg(Protocol):
    """``b2bua.Forwarder.place_answered``: a leg of ``call`` as ``payer``'s, answered."""

    def __call__(
        self,
        call: Call,
        payer: CallFacts | None,
        facts: CallFacts,
        *,
        caller_id: str | None,
        ring_timeout: float,
        diverted: Diverted | None = None,
    ) -> Awaitable[Leg | ForwardOutcome]: ...


SubscriberLeg = Callable[[Call, CallFacts, float], Awaitable[Leg | ForwardOutcome | None]]
"""A transfer's leg to a subscriber with its services applied, or None for any other target
(``calls.transfer_services``)."""


class Transfers:
    """The REFERs of the bridged calls in ``calls``; see the module docstring.

    Args:
        place: places and rings a leg, returning it answered or the outcome of its failure.
        release: ends a leg as a forward does (BYE, stream, channel, CDR).
        bridges: opens and closes the bridges of ``calls``.
    """

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        place: PlaceLeg,
        release: Callable[[Leg], None],
        bridges: Bridges,
    ) -> None:
        self.services = services
        self.calls = calls
        self._place = place
        self._close_bridge = bridges.close
        self.handover = Handover(services, self.attempt, release, bridges, self._notify)
        self.plans = PlanTransfers()  # a target with a dialplan here (calls.plan_transfer)
        self.subscriber_leg: SubscriberLeg | None = None  # its services applied (app wiring)
        self.attended = Attended(services, calls, self.handover, bridges, self._notify)

    def handle_request(self, event: RequestReceived) -> bool:
        """Answer a REFER inside a dialog (RFC 3515 §2.4.2: 202 when it is taken, and its
        NOTIFYs, §2.4.4; the module docstring); False for any other request."""
        if event.request.method != "REFER":
            return False
        found = self.calls.side_by_dialog(dialog_of(event))
        if found is None:
            self._respond(event, 403, "Not In A Bridged Call")
            return True
        bridge, side = found
        try:
            refer = parse_refer(event.request)
        except SipParseError as exc:
            log.info("call.transfer_refused", status=exc.status_hint, reason=str(exc))
            self._respond(event, exc.status_hint, None)
            return True
        leg = self.calls.leg_by_dialog(bridge.b.dialog_id) or self.calls.picked(bridge)
        refusal = self._refusal(side, leg, refer)
        if refusal is not None or leg is None:
            status, reason = refusal or (403, "Transfer Not Possible")
            log.info("call.transfer_refused", status=status, reason=reason)
            self._respond(event, status, reason)
            return True
        self._accept(event, bridge, side, leg, refer)
        return True

    def _refusal(self, side: Side, leg: Leg | None, refer: Refer) -> tuple[int, str] | None:
        if leg is None:
            return 403, "Not In A Bridged Call"
        if leg.transfer is not None or leg.detached:
            return 491, "Transfer Pending"
        transferor = self._transferor(side, leg)
        if transferor is None:
            return 403, "Transferor Not A Subscriber"
        if leg.picked is not None and side.leg == "a":
            return 403, "Transfer From The Caller Of A Picked-Up Call Not Supported"
        if refer.replaces is not None:
            found = consultation(self.calls, refer.replaces, transferor, leg)
            return found if isinstance(found, tuple) else None
        if target_number(refer) is None:
            return 403, "Transfer Target Not A Number"
        return None

    def _transferor(self, side: Side, leg: Leg) -> Subscriber | None:
        """The Centrex subscriber on ``side``: the caller's phone (side ``a``), or the phone
        that answered ``leg`` or picked it up; None for a trunk's caller or a leg through a
        route."""
        centrex = self.services.admission.centrex
        if side.leg == "a":
            facts = leg.a.facts
            return None if facts is None else centrex.subscriber(facts.subscriber or "")
        if leg.picked is not None:
            return centrex.subscriber(leg.picked.subscriber)
        return None if leg.destination is not None else centrex.subscriber(leg.facts.called)

    async def attempt(self, call: Call, facts: CallFacts) -> Leg | ForwardOutcome:
        """Place the new leg of a transfer as ``facts``' payer's call: answered, or why not.
        The target is shown the transferor's number: its call, as if it dialled it."""
        timeout = self.services.live.settings.calls.ring_timeout
        try:
            if self.subscriber_leg is not None:  # a subscriber: as any call to it is placed
                placed = await self.subscriber_leg(call, facts, timeout)
                if placed is not None:
                    return placed
            return await self._place(call, facts, facts, caller_id=None, ring_timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not take the original call with it
            call.log.exception("call.transfer_error")
            return ForwardOutcome(result="failed", sip_code=500)

    def _accept(
        self, event: RequestReceived, bridge: Bridge, side: Side, leg: Leg, refer: Refer
    ) -> None:
        transferor = self._transferor(side, leg)
        assert transferor is not None
        subscription = ReferSubscription(event.request.cseq().seq)
        self._respond(event, 202, None)
        self._notify(side, subscription.trying())
        if refer.replaces is not None:
            found = consultation(self.calls, refer.replaces, transferor, leg)
            assert isinstance(found, Consultation)
            if side.leg == "a" or isinstance(found.own, Leg):
                self.attended.join(side, leg, found, subscription)
            else:
                assert isinstance(found.far, Leg)
                self._join(leg, side, found.far, subscription)
            return
        number = target_number(refer)
        assert number is not None
        target = dialled(self.services, transferor, number)
        leg.a.log.info(
            "call.transfer_accepted",
            target=target,
            transferor=transferor.number,
            side=side.leg,
            referred_by=refer.referred_by,
        )
        if side.leg == "a" and self.plans.hosts(target):
            leg.a.log.info("call.transfer_to_plan_routed", target=target, why="transferee_placed")
        if side.leg == "a":  # the caller hands its forwarded party over
            facts = transfer_facts(self.services, leg.a, leg.a.call_id, transferor, target)
            self.handover.start(side, leg, facts, subscription)
            return
        if self.plans.takes(leg, target):  # the transferee goes to the target's plan here
            self._notify(side, subscription.final(200, "OK"))
            self.plans.hand_over(leg, target)
            return
        facts = transfer_facts(self.services, leg.a, leg.facts.call_id, transferor, target)
        leg.transfer = self.services.loop.create_task(self._blind(leg, side, facts, subscription))

    async def _blind(
        self, leg: Leg, side: Side, facts: CallFacts, subscription: ReferSubscription
    ) -> Leg | None:
        """Place the transferee's new leg; on its answer, release the transferor's leg."""
        a, target = leg.a, facts.called
        placed = await self.attempt(a, facts)
        if isinstance(placed, ForwardOutcome) and self.plans.boxed(a):  # forwarded to VM
            self._notify(side, subscription.final(200, "OK"))
            self.plans.hand_over(leg, target)
            return None
        if isinstance(placed, ForwardOutcome):
            status = placed.sip_code if placed.sip_code and placed.sip_code >= 300 else 500
            a.log.info("call.transfer_failed", target=target, status=status, result=placed.result)
            self._notify(side, subscription.final(status, reason_phrase(status)))
            leg.transfer = None  # another REFER may try again; the call goes on as it was
            return None
        a.log.info("call.transferred", target=facts.called, leg_call_id=placed.facts.call_id)
        self._notify(side, subscription.final(200, "OK"))
        leg.end_reason = "transferred"
        leg.ended.set()
        return placed

    def _join(self, leg: Leg, side: Side, far: Leg, subscription: ReferSubscription) -> None:
        """Attended transfer: ``far`` (the other party of the transferor's consultation call)
        takes ``leg``'s place in the transferee's call; the consultation call ends."""
        consultation, services = far.a, self.services
        if far.bridge is not None:
            far.sdp_version = far.bridge.b.version
            self._close_bridge(far.bridge)
            far.bridge = None
        services.media.unbridge(far.stream)
        far.a = leg.a  # the transferee's forward bridges it and tears it down (b2bua)
        far.facts.extra["transferred_from"] = leg.facts.call_id
        consultation.cause = "transferred"
        if consultation.dialog_id is not None:
            services.endpoint.bye(consultation.dialog_id, services.now())
        leg.a.log.info("call.transferred", leg_call_id=far.facts.call_id, attended=True)
        self._notify(side, subscription.final(200, "OK"))
        done: asyncio.Future[Leg | None] = services.loop.create_future()
        done.set_result(far)
        leg.transfer, leg.end_reason = done, "transferred"
        leg.ended.set()

    def _respond(self, event: RequestReceived, status: int, reason: str | None) -> None:
        self.services.endpoint.respond(event.key, status, self.services.now(), reason=reason)
        self.services.wake()

    def _notify(self, side: Side, notify: Notify) -> None:
        """A NOTIFY in the REFER's dialog, while it lasts (RFC 3515 §2.4.4)."""
        endpoint = self.services.endpoint
        dialog = endpoint.dialogs.get(side.dialog_id)
        if dialog is None:
            return
        endpoint.send_in_dialog(
            dialog,
            "NOTIFY",
            self.services.now(),
            body=notify.body,
            content_type=notify.content_type,
            headers=notify.headers,
        )
        self.services.wake()


def target_number(refer: Refer) -> str | None:
    """The number or extension a Refer-To names (a SIP URI's user part, a tel: number)."""
    uri = refer.target
    if isinstance(uri, SipUri):
        user = unescape(uri.user or "")
    elif isinstance(uri, AbsoluteUri) and uri.scheme.lower() == "tel":
        user = uri.opaque.split(";", 1)[0].replace("-", "").replace(".", "")
    else:
        return None
    return user if user and set(user) <= _DIALLABLE else None


def dialled(services: CallServices, transferor: Subscriber, number: str) -> str:
    """The target as the transferor's own call would route it: an extension of its group as
    it is, any other number in E.164 (a short code stays as dialled)."""
    if services.admission.centrex.extension(transferor.group, number) is not None:
        return number
    try:
        return normalise(number)
    except ValueError:
        return number


def transfer_facts(
    services: CallServices, a: Call, replaced: str, transferor: Subscriber, target: str
) -> CallFacts:
    """The CDR facts of the new leg: the transferor's call out to ``target`` (module doc)."""
    admission = services.admission
    group = admission.centrex.groups.get(transferor.group)
    facts = CallFacts(
        call_id=new_call_id(), caller=transferor.number, called=target, offered_at=services.now()
    )
    facts.leg, facts.linked_id, facts.direction = "b", a.call_id, "outbound"
    facts.subscriber, facts.group = transferor.number, transferor.group
    facts.customer = group.customer if group else None
    facts.caller_e164 = transferor.number.lstrip("+")
    facts.originating = True  # rated as the transferor's own call
    facts.inside_group = admission.inside_group(facts.customer, target)
    facts.extra["transferred_from"] = replaced  # the Call-ID of the transferor's leg
    return facts


async def transferred_to(leg: Leg) -> Leg | None:
    """After ``leg`` ended: the leg its transfer put in its place, or None. A transfer still
    attempted when the transferor hung up is waited for."""
    task, leg.transfer = leg.transfer, None
    if task is None:
        return None
    return await task


def abandon(leg: Leg, release: Callable[[Leg], None]) -> None:
    """The call ends with ``leg``'s transfer unfinished: stop it, release a leg it placed."""
    task, leg.transfer = leg.transfer, None
    if task is None:
        return
    if not task.done():
        task.cancel()  # place_answered CANCELs or releases the leg it was ringing
        return
    with contextlib.suppress(asyncio.CancelledError, Exception):
        placed = task.result()
        if placed is not None:
            release(placed)
