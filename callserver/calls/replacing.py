"""INVITE with Replaces (RFC 3891 §3): a phone's new call takes the place of a dialog the
server holds with a phone.

Theory of operation
-------------------
``Replacing.route`` is the first code the routing asks (``phone_services``): it takes a
phone's INVITE that carries ``Replaces`` (read from the INVITE while the call is routed) and
answers the rest of RFC 3891 §3 here. The header names one of our dialogs with a phone, to-tag
our tag (matched either way round, as for a REFER's Replaces, ``calls.attended``):

- more than one Replaces, or one that does not parse: 400; none of ours: 481;
- a leg ringing at a phone of the same subscriber (an early dialog we initiated, found by its
  Call-ID): the new call is answered and picks the leg up as ``*8`` does (``calls.pickup``):
  the phone's ringing is CANCELled and the caller is bridged to the new call;
- a leg a phone answered (confirmed): the new call is answered and takes the phone's place in
  the bridge; the phone gets BYE;
- a call a phone placed (confirmed): the new call is answered and the leg it was bridged to
  is bridged to the new call instead; the phone's call ends ``transferred`` (BYE);
- ``early-only`` and a confirmed dialog: 486; a leg moved by a transfer, a call not bridged
  (still routing, or in a plan's step): 403. A call a phone placed that we have not answered
  yet is an early dialog we did not initiate: we hold no dialog for it, so 481.

Who may replace: the subscriber whose phone holds the dialog (from any of its phones), or the
subscriber whose phone is across the bridge from it; anyone else gets 403. The new call is a
phone's own (its digest credentials): a trunk presenting a phone's number is not.

CDRs: the new call's record has ``transferred_from``, the Call-ID of the record it replaced
(the leg that rang the phone, or the phone's own call); a leg picked up this way has
``answered_by`` as after ``*8``. The log says ``call.replaced``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callserver.calls.attended import named
from callserver.calls.bridge import bridge_of
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.leg import Leg, PickedUp
from callserver.calls.phase import CallPhase
from callserver.calls.pickup import Pickup, bridge_picked
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.calls.session import CallSession
from callserver.config.centrex import Centrex
from callserver.sip.errors import SipParseError
from callserver.sip.refer import Replaces, parse_replaces

__all__ = ["Replacing", "replaces_of"]


class Replacing:
    """INVITEs with Replaces from phones; see the module docstring.

    Args:
        pickup: picks a ringing leg up for a call (an early dialog replaced).
        release: ends a leg as a forward does (BYE, stream, channel, CDR).
        bridges: opens and closes bridges.
    """

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        centrex: Callable[[], Centrex],
        pickup: Pickup,
        release: Callable[[Leg], None],
        bridges: Bridges,
    ) -> None:
        self.services = services
        self.calls = calls
        self._centrex = centrex
        self._pickup = pickup
        self._release = release
        self._bridges = bridges

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The work of a call whose INVITE carries Replaces, or None for any other call."""
        invite = session.invite
        values = [] if invite is None else invite.request.headers.values("Replaces")
        if not values:
            return None
        return self._replace(session, replaces_of(values))

    async def _replace(self, session: CallSession, replaces: Replaces | None) -> None:
        call = self.calls.by_session(session)
        number = None if call is None or call.facts is None else call.facts.subscriber
        if call is None or number is None or self._centrex().subscriber(number) is None:
            await session.hangup(code=403, cause=None, reason="rejected")
            return
        if replaces is None:
            await self._refuse(session, call, 400, "one Replaces that parses is needed")
            return
        ringing = self._ringing(replaces, number)
        if ringing is not None:
            await self._pick(session, call, ringing, number)
            return
        found = named(self.calls, replaces)
        refusal = self._refusal(found, replaces, number)
        if refusal is not None or found is None:
            await self._refuse(session, call, *(refusal or (481, "no such dialog")))
            return
        if call.facts is not None:
            call.facts.extra["transferred_from"] = _call_id(found)
        await session.answer()
        if not call.phase.in_dialog or call.dialog_id is None or _moved(found):
            await session.hangup(code=None, cause=None, reason="normal")
            return
        call.log.info("call.replaced", replaced=_call_id(found), by=number)
        if isinstance(found, Leg):
            await self._take_leg(call, found, number)
        else:
            await self._take_call(call, found)
        await session.hangup(code=None, cause=None, reason="normal")

    def _ringing(self, replaces: Replaces, number: str) -> Leg | None:
        """The leg ringing at ``number``'s phones whose early dialog ``replaces`` names: by
        its Call-ID, ours and unguessable (each contact rung has a From tag of its own, and
        a phone's tag is not kept while it rings)."""
        for leg in self.calls.ringing([number]):
            if leg.facts.call_id == replaces.call_id:
                return leg
        return None

    def _refusal(
        self, found: Call | Leg | None, replaces: Replaces, number: str
    ) -> tuple[int, str] | None:
        """Why ``found`` may not be replaced by ``number``'s call, or None (module doc)."""
        if found is None:
            return 481, "replaced dialog does not exist"
        if replaces.early_only:
            return 486, "replaced dialog is confirmed (early-only)"
        if number not in self._holders(found):
            return 403, "replaced dialog is not the caller's"
        if _moved(found):
            return 403, "replaced dialog not bridged"
        return None

    def _holders(self, found: Call | Leg) -> set[str | None]:
        """The subscribers whose phones hold ``found`` or are across the bridge from it."""
        if isinstance(found, Leg):
            return {found.facts.called if found.forks is not None else None, _placed_by(found.a)}
        leg = self._far(found)
        far = None if leg is None or leg.forks is None else leg.facts.called
        return {_placed_by(found), far}

    def _far(self, call: Call) -> Leg | None:
        """The leg ``call`` is bridged to, if it is."""
        side = None if call.dialog_id is None else self.calls.side_by_dialog(call.dialog_id)
        return None if side is None else self.calls.leg_by_dialog(side[0].b.dialog_id)

    async def _pick(self, session: CallSession, call: Call, leg: Leg, number: str) -> None:
        """An early dialog we initiated: answer, then pick the leg up (``calls.pickup``)."""
        subscriber = self._centrex().subscriber(number)
        assert subscriber is not None and call.facts is not None
        call.facts.extra["transferred_from"] = leg.facts.call_id
        await session.answer()
        if leg.setup.done() or leg.cancelled or leg.picked is not None:  # answered meanwhile
            await session.hangup(code=None, cause=None, reason="normal")
            return
        call.log.info("call.replaced", replaced=leg.facts.call_id, by=number, early=True)
        await self._pickup.take(session, leg, call, subscriber)

    async def _take_leg(self, call: Call, leg: Leg, number: str) -> None:
        """The phone that answered ``leg`` is replaced by ``call``: its dialog gets BYE and
        the caller is bridged to ``call`` as to a phone that picked the leg up."""
        services, old = self.services, leg.dialog_id
        if leg.bridge is not None:
            leg.a.sdp_version = leg.bridge.a.version
            self._bridges.close(leg.bridge)
            leg.bridge = None
        self.calls.leg_dialog_ended(leg)  # the phone's dialog no longer speaks for the leg
        if old is not None:
            services.endpoint.bye(old, services.now())
        picked = PickedUp(call=call, subscriber=number, over=asyncio.Event())
        leg.picked = picked
        try:
            await bridge_picked(services, self._bridges, leg)
        finally:
            if not leg.ended.is_set():  # the replacing phone hung up first
                leg.end_reason = "bye_received"
                leg.ended.set()

    async def _take_call(self, call: Call, replaced: Call) -> None:
        """The phone's own call ``replaced`` is replaced by ``call``: the leg it was bridged
        to is bridged to ``call`` until either ends; ``replaced`` ends ``transferred``."""
        services, leg = self.services, self._far(replaced)
        assert leg is not None and call.stream is not None and call.dialog_id is not None
        if leg.bridge is not None:
            leg.sdp_version = leg.bridge.b.version
            replaced.sdp_version = leg.bridge.a.version
            self._bridges.close(leg.bridge)
            leg.bridge = None
        leg.a = call  # the replaced call's forward no longer tears it down
        replaced.cause = "transferred"
        if replaced.dialog_id is not None and replaced.phase.in_dialog:
            services.endpoint.bye(replaced.dialog_id, services.now())
        assert leg.dialog_id is not None
        services.media.bridge(call.stream, leg.stream)
        bridge = bridge_of(services, call, leg.dialog_id, leg.stream, leg.sdp_version)
        leg.bridge = self._bridges.open(bridge)
        if call.phase is CallPhase.ANSWERED:
            call.enter(CallPhase.BRIDGED)
        try:
            await leg.ended.wait()
        finally:
            self._release(leg)

    async def _refuse(self, session: CallSession, call: Call, status: int, detail: str) -> None:
        """Refuse the INVITE with ``status``; its CDR's end_detail says why."""
        session.note("end_detail", detail)
        call.log.info("call.replace_refused", status=status, detail=detail)
        await session.hangup(code=status, cause=None, reason="rejected")


def replaces_of(values: list[str]) -> Replaces | None:
    """The one Replaces an INVITE may carry (RFC 3891 §3: more than one is a 400), or None."""
    if len(values) != 1:
        return None
    try:
        return parse_replaces(values[0])
    except SipParseError:
        return None


def _call_id(found: Call | Leg) -> str:
    return found.facts.call_id if isinstance(found, Leg) else found.call_id


def _placed_by(call: Call) -> str | None:
    return None if call.facts is None else call.facts.subscriber


def _moved(found: Call | Leg) -> bool:
    """A leg a transfer holds or moved, or picked up; a call not bridged to a leg."""
    if isinstance(found, Call):
        return not found.phase.in_dialog or found.phase is not CallPhase.BRIDGED
    return (
        found.bridge is None
        or found.transfer is not None
        or found.detached
        or found.picked is not None
        or not found.a.phase.in_dialog
    )
