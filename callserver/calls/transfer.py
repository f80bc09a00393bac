"""Call transfer on a bridged call: REFER (RFC 3515, RFC 5589 §6 blind transfer).

Theory of operation
-------------------
``Transfers`` takes every REFER the endpoint passes up. A REFER outside a bridged call gets
403. Inside one, its sender is the *transferor*, the party across the bridge the
*transferee*, and ``Refer-To`` names the target. A blind transfer is accepted (202, then the
first NOTIFY, "100 Trying", ``sip.refer.ReferSubscription``) when the transferor is a
Centrex phone on the forwarded leg and the target a number or an extension: a new leg to it
is placed for the transferee's call as if the transferor had dialled it (routed, barred,
channelled and rated as the transferor's call: ``b2bua.Forwarder.place_answered`` with the
transferor as payer). While it is attempted the transferee stays bridged as it was (the
music on hold when the transferor held it). The final NOTIFY carries the new leg's final
response: a failure leaves the original call as it was; on 2xx the transferor's leg ends
with ``transferred`` and the forward puts the new leg in its place (``transferred_to``):
the transferee is bridged to the target. A transferor that hangs up after the 202 does not
stop the transfer.

CDRs: the new leg's record is leg ``b`` linked to the original call (``linked_id``), paid
by the transferor (``subscriber``, ``payer`` caller), with ``transferred_from`` the Call-ID
of the transferor's leg it replaced.

Not taken (403, the call stays): a REFER from the calling side of the bridge, from a leg
that is not one of our phones, with a Replaces (attended transfer), to something that is not
a number; a second REFER while one is attempted gets 491.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from callserver.calls.bridge import Bridge, Side
from callserver.calls.call import Call, dialog_of
from callserver.calls.leg import Leg
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.config.centrex import Subscriber
from callserver.sip.dialog import DialogId
from callserver.sip.errors import SipParseError
from callserver.sip.events import RequestReceived
from callserver.sip.ids import new_call_id
from callserver.sip.names import reason_phrase
from callserver.sip.refer import Notify, Refer, ReferSubscription, Replaces, parse_refer
from callserver.sip.uri import AbsoluteUri, SipUri, unescape

__all__ = ["PlaceLeg", "Transfers", "abandon", "transferred_to"]

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
    ) -> Awaitable[Leg | ForwardOutcome]: ...


class Transfers:
    """The REFERs of the bridged calls in ``calls``; see the module docstring.

    Args:
        place: places and rings a leg, returning it answered or the outcome of its failure.
        close_bridge: stops a bridge (``bridges.Bridges.close``).
    """

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        place: PlaceLeg,
        close_bridge: Callable[[Bridge], None],
    ) -> None:
        self.services = services
        self.calls = calls
        self._place = place
        self._close_bridge = close_bridge

    def handle_request(self, event: RequestReceived) -> bool:
        """Answer a REFER (module docstring); False for any other request."""
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
            self._respond(event, exc.status_hint, str(exc)[:60])
            return True
        leg = self.calls.leg_by_dialog(bridge.b.dialog_id)
        refusal = self._refusal(side, leg, refer)
        if refusal is not None or leg is None:
            status, reason = refusal or (403, "Transfer Not Possible")
            log.info("call.transfer_refused", status=status, reason=reason)
            self._respond(event, status, reason)
            return True
        self._accept(event, bridge, side, leg, refer)
        return True

    def _refusal(self, side: Side, leg: Leg | None, refer: Refer) -> tuple[int, str] | None:
        if leg is None or side.leg != "b":
            return 403, "Transfer From The Calling Side Not Supported"
        if leg.transfer is not None:
            return 491, "Transfer Pending"
        transferor = self._transferor(leg)
        if transferor is None:
            return 403, "Transferor Not A Subscriber"
        if refer.replaces is not None:
            consult = self._consultation(refer.replaces, transferor, leg)
            return consult if isinstance(consult, tuple) else None
        if target_number(refer) is None:
            return 403, "Transfer Target Not A Number"
        return None

    def _consultation(
        self, replaces: Replaces, transferor: Subscriber, leg: Leg
    ) -> Leg | tuple[int, str]:
        """The far leg of the transferor's other call that ``replaces`` names (RFC 3891 §3:
        to-tag our local tag; a phone that sends them the other way round is matched too)."""
        call = self.calls.by_dialog(
            DialogId(replaces.call_id, replaces.to_tag, replaces.from_tag)
        ) or self.calls.by_dialog(DialogId(replaces.call_id, replaces.from_tag, replaces.to_tag))
        if call is None or call.dialog_id is None:
            return 481, "Replaced Dialog Does Not Exist"
        if call.facts is None or call.facts.subscriber != transferor.number:
            return 403, "Replaced Call Is Not The Transferor's"
        found = self.calls.side_by_dialog(call.dialog_id)
        far = None if found is None else self.calls.leg_by_dialog(found[0].b.dialog_id)
        if far is None or far is leg or far.transfer is not None:
            return 403, "Replaced Call Not Bridged"
        return far

    def _transferor(self, leg: Leg) -> Subscriber | None:
        """The Centrex subscriber whose phone answered ``leg``, or None for a routed leg."""
        if leg.destination is not None:
            return None
        return self.services.admission.centrex.subscriber(leg.facts.called)

    def _accept(
        self, event: RequestReceived, bridge: Bridge, side: Side, leg: Leg, refer: Refer
    ) -> None:
        transferor = self._transferor(leg)
        assert transferor is not None
        subscription = ReferSubscription(event.request.cseq().seq)
        self._respond(event, 202, None)
        self._notify(side, subscription.trying())
        if refer.replaces is not None:
            far = self._consultation(refer.replaces, transferor, leg)
            assert isinstance(far, Leg)
            self._join(leg, side, far, subscription)
            return
        target = target_number(refer)
        assert target is not None
        leg.a.log.info(
            "call.transfer_accepted",
            target=target,
            transferor=transferor.number,
            leg_call_id=leg.facts.call_id,
        )
        blind = self._blind(leg, side, transferor, target, subscription)
        leg.transfer = self.services.loop.create_task(blind)

    async def _blind(
        self,
        leg: Leg,
        side: Side,
        transferor: Subscriber,
        target: str,
        subscription: ReferSubscription,
    ) -> Leg | None:
        """Place the transferee's new leg; on its answer, release the transferor's leg."""
        a = leg.a
        facts = transfer_facts(self.services, a, leg, transferor, target)
        timeout = self.services.live.settings.calls.ring_timeout
        try:  # the target is shown the transferor's number: its call, as if it dialled
            placed = await self._place(a, facts, facts, caller_id=None, ring_timeout=timeout)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug here must not take the original call with it
            a.log.exception("call.transfer_error")
            placed = ForwardOutcome(result="failed", sip_code=500)
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


def transfer_facts(
    services: CallServices, a: Call, leg: Leg, transferor: Subscriber, target: str
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
    facts.extra["transferred_from"] = leg.facts.call_id
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
