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
answered (side ``b``)   answered (``Leg``)          refused: both far parties called in, and
                                                    two inbound calls are not bridged to each
                                                    other (403)
======================  ==========================  =========================================

Each way, both of the transferor's calls end ``transferred`` (NOTIFY 200, then BYE on each),
and the leg that moved gets ``transferred_from``: the Call-ID of the transferor's record it
replaced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from callserver.calls.bridge import Side
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.handover import Handover
from callserver.calls.leg import Leg
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
    calls: Calls, replaces: Replaces, transferor: Subscriber, side: Side, leg: Leg
) -> Consultation | tuple[int, str]:
    """The consultation call ``replaces`` names for a REFER from ``side`` of ``leg``'s
    call, or the status and reason of its refusal (module docstring)."""
    own = named(calls, replaces)
    if own is None:
        return 481, "Replaced Dialog Does Not Exist"
    if isinstance(own, Call):
        return _placed(calls, own, transferor, leg)
    if own.forks is None or own.picked is not None or own.facts.called != transferor.number:
        return 403, "Replaced Call Is Not The Transferor's"
    if own is leg or own.bridge is None or own.transfer is not None or own.detached:
        return 403, "Replaced Call Not Bridged"
    if side.leg == "b":
        return 403, "Transferee And Target Both Called In: Not Supported"
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
    """The joins of attended transfers from the calling side of the first call (module doc).

    Args:
        handover: bridges two legs to each other (``calls.handover``).
        bridges: opens and closes bridges.
        notify: sends a NOTIFY in a side's dialog.
    """

    def __init__(
        self,
        services: CallServices,
        handover: Handover,
        bridges: Bridges,
        notify: Callable[[Side, Notify], None],
    ) -> None:
        self.services = services
        self.handover = handover
        self._close_bridge = bridges.close
        self._notify = notify

    def join(
        self, side: Side, leg: Leg, found: Consultation, subscription: ReferSubscription
    ) -> None:
        """Join the transferee's ``leg`` (the first call's far party, the transferor on
        ``side`` ``a``) with the consultation's far party."""
        if isinstance(found.own, Call):
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
