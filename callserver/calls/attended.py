"""Attended transfer (RFC 5589 §7): the consultation call a REFER's Replaces names, and the
join of its far party with the transferee, whichever side of each call the transferor is on.

Theory of operation
-------------------
The transferor (a Centrex phone) has two calls through the server: the first, whose far
party is the *transferee*, and the consultation, whose far party is the *target*. In each
the transferor either placed the call (its dialog with us is a ``Call``, the far party a
``Leg`` we placed) or answered it (its dialog is the ``Leg`` that rang it, the far party the
``Call`` that came in). ``Replaces`` names the transferor's dialog of the consultation
(RFC 3891 §3: to-tag our local tag; a phone that sends them the other way round is matched
too). ``consultation`` finds it among calls and legs, and says why not (481 when we hold no
such dialog, 403 when it is another phone's, not bridged, or a combination we cannot join):

======================  ==========================  =========================================
first call              consultation                the join
======================  ==========================  =========================================
answered (side ``b``)   placed (``Call``)           the target's leg takes the transferor's
                                                    leg's place in the transferee's call
                                                    (``calls.transfer``, ``Transfers._join``)
placed (side ``a``)     placed (``Call``)           the two far legs are bridged to each
                                                    other (``calls.handover``, ``join``)
placed (side ``a``)     answered (``Leg``)          the transferee's leg takes the
                                                    transferor's leg's place in the target's
                                                    call (``Attended.into_target``)
answered (side ``b``)   answered (``Leg``)          both far parties called in: their calls
                                                    are bridged to each other as a caller to a
                                                    phone that picked its leg up
                                                    (``calls.pickup``; ``between_calls``)
======================  ==========================  =========================================

Each way, both of the transferor's calls end ``transferred`` (NOTIFY 200, then BYE on each),
and the leg that moved gets ``transferred_from``: the Call-ID of the transferor's record it
replaced (between two inbound calls, the target's call gets it: the transferor's leg in the
first call).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from callserver.calls.bridge import Side
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.handover import Handover
from callserver.calls.leg import Leg, PickedUp
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.config.centrex import Subscriber
from callserver.sip.dialog import DialogId
from callserver.sip.refer import Notify, ReferSubscription, Replaces

__all__ = ["Attended", "Consultation", "consultation", "named"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Consultation:
    """The transferor's consultation call: its own dialog with us and the far party's side."""

    own: Call | Leg  # a Call: the transferor placed it; a Leg: the leg that rang it
    far: Leg | Call  # the target: the leg we placed for it, or the call that came in


def named(calls: Calls, replaces: Replaces) -> Call | Leg | None:
    """The call or answered leg whose dialog ``replaces`` names (RFC 3891 §3, either way)."""
    for dialog in (
        DialogId(replaces.call_id, replaces.to_tag, replaces.from_tag),
        DialogId(replaces.call_id, replaces.from_tag, replaces.to_tag),
    ):
        found = calls.by_dialog(dialog) or calls.leg_by_dialog(dialog)
        if found is not None:
            return found
    return None


def consultation(
    calls: Calls, replaces: Replaces, transferor: Subscriber, leg: Leg
) -> Consultation | tuple[int, str]:
    """The consultation call ``replaces`` names for a REFER from ``transferor`` in
    ``leg``'s call, or the status and reason of its refusal (module docstring)."""
    own = named(calls, replaces)
    if own is None:
        return 481, "Replaced Dialog Does Not Exist"
    if isinstance(own, Call):
        return _placed(calls, own, transferor, leg)
    if own.forks is None or own.picked is not None or own.facts.called != transferor.number:
        return 403, "Replaced Call Is Not The Transferor's"
    if own is leg or own.bridge is None or own.transfer is not None or own.detached:
        return 403, "Replaced Call Not Bridged"
    if own.a.task is None or not own.a.phase.in_dialog:
        return 403, "Replaced Call Not Bridged"
    return Consultation(own=own, far=own.a)


def _placed(
    calls: Calls, own: Call, transferor: Subscriber, leg: Leg
) -> Consultation | tuple[int, str]:
    """A consultation call the transferor placed: its far party is the leg it is bridged to."""
    if own.dialog_id is None or own.facts is None or own.facts.subscriber != transferor.number:
        return 403, "Replaced Call Is Not The Transferor's"
    found = calls.side_by_dialog(own.dialog_id)
    far = None if found is None else calls.leg_by_dialog(found[0].b.dialog_id)
    if far is None or far is leg or far.transfer is not None or far.detached:
        return 403, "Replaced Call Not Bridged"
    return Consultation(own=own, far=far)


class Attended:
    """The joins of attended transfers but the one ``calls.transfer`` makes (module doc).

    Args:
        handover: bridges two legs to each other (``calls.handover``).
        bridges: opens and closes bridges.
        notify: sends a NOTIFY in a side's dialog.
    """

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        handover: Handover,
        bridges: Bridges,
        notify: Callable[[Side, Notify], None],
    ) -> None:
        self.services = services
        self.calls = calls
        self.handover = handover
        self._close_bridge = bridges.close
        self._notify = notify

    def join(
        self, side: Side, leg: Leg, found: Consultation, subscription: ReferSubscription
    ) -> None:
        """Join the transferee on ``leg``'s call (its leg, the transferor on ``side`` ``a``;
        else the call of ``leg``) with the consultation's far party."""
        if side.leg == "b":
            assert isinstance(found.own, Leg)
            self.between_calls(side, leg, found.own, subscription)
        elif isinstance(found.own, Call):
            assert isinstance(found.far, Leg)
            self.handover.join(side, leg, found.far, subscription, found.own)
        else:
            self.into_target(side, leg, found.own, subscription)

    def into_target(self, side: Side, leg: Leg, own: Leg, subscription: ReferSubscription) -> None:
        """The target called the transferor (``own`` rang it): the transferee's ``leg`` takes
        ``own``'s place in the target's call, whose forward bridges it; the transferor's first
        call ends."""
        first, services = leg.a, self.services
        if leg.bridge is not None:
            leg.sdp_version = leg.bridge.b.version
            self._close_bridge(leg.bridge)
            leg.bridge = None
        services.media.unbridge(leg.stream)
        leg.a = own.a  # the target's forward bridges it and tears it down (b2bua)
        leg.facts.extra["transferred_from"] = own.facts.call_id
        first.log.info("call.transferred", leg_call_id=leg.facts.call_id, attended=True)
        self._notify(side, subscription.final(200, "OK"))  # in the first call, before its BYE
        first.cause = "transferred"
        if first.dialog_id is not None:
            services.endpoint.bye(first.dialog_id, services.now())
        done: asyncio.Future[Leg | None] = services.loop.create_future()
        done.set_result(leg)
        own.transfer, own.end_reason = done, "transferred"
        own.ended.set()
        services.wake()

    def between_calls(
        self, side: Side, leg: Leg, own: Leg, subscription: ReferSubscription
    ) -> None:
        """The transferor answered both calls: ``own`` (the leg that rang it for the target's
        call) drops its dialog and stands in the transferee's forward for the target's call,
        bridged as a picked-up leg (``pickup.bridge_picked``) until either call ends."""
        services, target, now = self.services, own.a, self.services.now()
        old = own.dialog_id
        if own.bridge is not None:
            target.sdp_version = own.bridge.a.version
            self._close_bridge(own.bridge)
            own.bridge = None
        services.media.unbridge(own.stream)
        self.calls.leg_dialog_ended(own)  # the transferor's dialog no longer speaks for it
        if old is not None:
            services.endpoint.bye(old, now)
        own.picked = PickedUp(call=target, subscriber=leg.facts.called, over=asyncio.Event())
        own.a, own.end_reason = leg.a, "transferred"
        if target.facts is not None:
            target.facts.extra["transferred_from"] = leg.facts.call_id
        for call in (leg.a, target):  # either call's end ends the other's wait on the join
            if call.task is not None:
                call.task.add_done_callback(lambda _: own.ended.set())
        leg.a.log.info("call.transferred", leg_call_id=own.facts.call_id, attended=True)
        self._notify(side, subscription.final(200, "OK"))
        done: asyncio.Future[Leg | None] = services.loop.create_future()
        done.set_result(own)
        leg.transfer, leg.end_reason = done, "transferred"
        leg.ended.set()
        services.wake()
