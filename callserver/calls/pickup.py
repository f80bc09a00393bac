"""Call pickup (call intercept): a phone answers a call ringing at another phone of its group.

Theory of operation
-------------------
A registered phone dials a pickup code (``Pickup.route``, asked by ``dialplan.routing``
before anything else):

- ``*8`` picks up a call ringing at any other subscriber of its pickup group
  (``Subscriber.pickup_group`` inside its Centrex group; by default the whole group);
- ``**EXT`` (directed pickup) picks up a call ringing at extension EXT of its Centrex group.

The legs ringing at a phone are found in the ``Calls`` registry, the one index of them
(``Calls.ringing``: a leg to a phone's contacts, not yet answered, refused, cancelled or
picked); the one that has rung longest is taken. With none, the picking phone's INVITE gets
404 (no media is needed to say "nothing to pick up": the phone shows it at once). The
picking phone's CDR has the step ``pickup`` either way. Only a phone's own call (admitted by
its digest credentials) may pick up: a customer's trunk presenting a phone's number gets 403,
and a code from a caller that names no phone is routed as any other number.

Otherwise the picking phone's call is answered (its own stream and SDP answer), the picked
leg's ringing contacts are cancelled with ``Reason: SIP;cause=200;text="Call completed
elsewhere"`` (RFC 3326) and the leg is settled as answered by the picking call (``PickedUp``):
the caller's ``forward`` (``b2bua.Forwarder``) then answers the caller as if the phone had,
and ``bridge_picked`` bridges the caller's stream to the picking phone's, with a
``bridge.Bridge`` answering both dialogs' in-dialog requests (hold with music included). The
bridge lasts until either side hangs up; the other is then hung up with BYE.

CDRs: the picked leg (leg ``b``, linked to the caller's call) is answered with
``answered_by`` the picking subscriber, as is the caller's own record; the picking phone's
call is linked to the caller's call (``linked_id``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callserver.calls.branching import cancel
from callserver.calls.bridge import Bridge, Side
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.leg import Leg, PickedUp
from callserver.calls.phase import CallPhase
from callserver.calls.phones import COMPLETED_ELSEWHERE
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.config.centrex import Centrex, Subscriber

__all__ = ["DIRECTED_PICKUP", "Pickup", "bridge_picked"]

DIRECTED_PICKUP = "**"  # followed by an extension of the picking phone's group


class Pickup:
    """Pickup codes dialled from phones; see the module docstring.

    Args:
        services: the calls layer's services (endpoint, media, reporter, clock).
        calls: the registry whose ``ringing`` legs may be picked up.
        centrex: the groups and subscribers in force.
    """

    def __init__(
        self, services: CallServices, calls: Calls, centrex: Callable[[], Centrex]
    ) -> None:
        self.services = services
        self.calls = calls
        self._centrex = centrex

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The pickup a phone's call to a pickup code asks for, or None for any other call
        (a caller that is no subscriber's phone: its code is routed as any number)."""
        called = session.called
        if called[:1] != "*" or not session.originating:  # no pickup code: at once
            return None
        centrex = self._centrex()
        directed = called.startswith(DIRECTED_PICKUP) and called[2:].isdigit()
        group = called == "*" + centrex.codes.pickup  # *8 unless service_codes says otherwise
        if not (group or directed):
            return None
        if centrex.subscriber(session.caller.e164 or session.caller.raw) is None:
            return None
        return self._pick(session, called[2:] if directed else None)

    async def _pick(self, session: CallSession, extension: str | None) -> None:
        """Pick up the call ringing longest at the phones the code names (module docstring)."""
        session.note("step", "pickup")
        call = self.calls.by_session(session)
        number = None if call is None or call.facts is None else call.facts.subscriber
        picker = None if number is None else self._centrex().subscriber(number)
        if call is None or picker is None:  # a trunk presenting a phone's number
            await session.hangup(code=403, cause=21, reason="normal")
            return
        numbers = self._group(picker) if extension is None else self._directed(picker, extension)
        if not self.calls.ringing(numbers):
            call.log.info("call.pickup_nothing_ringing", code=session.called)
            await session.hangup(code=404, cause=1, reason="normal")
            return
        await session.answer()
        ringing = self.calls.ringing(numbers)  # again: it may have been answered meanwhile
        if not ringing or call.dialog_id is None or not call.phase.in_dialog:
            await session.hangup(code=None, cause=None, reason="normal")
            return
        await self.take(session, ringing[0], call, picker)

    async def take(self, session: CallSession, leg: Leg, call: Call, picker: Subscriber) -> None:
        """Pick ``leg`` up for ``call`` (answered): the picking phone's side, until the
        caller's side ends the bridge or the phone hangs up (``calls.replacing`` too)."""
        picked = self._claim(leg, call, picker)
        try:
            await picked.over.wait()
        finally:
            if not picked.over.is_set():  # the picking phone hung up first
                leg.end_reason = "bye_received"
            leg.ended.set()
        await session.hangup(code=None, cause=None, reason="normal")

    def _group(self, picker: Subscriber) -> list[str]:
        """The other subscribers of ``picker``'s pickup group, in its Centrex group."""
        return [
            s.number
            for s in self._centrex().by_number.values()
            if s.group == picker.group
            and s.pickup_group == picker.pickup_group
            and s.number != picker.number
        ]

    def _directed(self, picker: Subscriber, extension: str) -> list[str]:
        target = self._centrex().extension(picker.group, extension)
        return [] if target is None or target.number == picker.number else [target.number]

    def _claim(self, leg: Leg, call: Call, picker: Subscriber) -> PickedUp:
        """Settle ``leg`` as answered by ``call``: its ringing contacts are cancelled."""
        services = self.services
        picked = PickedUp(call=call, subscriber=picker.number, over=asyncio.Event())
        leg.picked = picked
        for facts in (leg.facts, leg.a.facts):
            if facts is not None:
                facts.extra["answered_by"] = picker.number
        leg.facts.answered_at = services.now()
        services.reporter.answered(leg.facts)
        if call.facts is not None:
            call.facts.linked_id = leg.a.call_id
        cancel(services, leg, COMPLETED_ELSEWHERE)
        leg.setup.set_result(200)
        leg.a.log.info(
            "call.picked_up", by=picker.number, ringing_at=leg.facts.called, by_call=call.call_id
        )
        services.wake()
        return picked


async def bridge_picked(services: CallServices, bridges: Bridges, leg: Leg) -> ForwardOutcome:
    """The caller's side of a picked-up leg (``b2bua.Forwarder``, once the leg is settled):
    answer the caller, bridge it to the picking phone's call until either side ends."""
    picked, a = leg.picked, leg.a
    assert picked is not None
    c = picked.call
    try:
        if a.session is not None and not a.session.answered:
            await a.session.answer()
        if not (_in_dialog(a) and _in_dialog(c)):
            return ForwardOutcome(result="failed", sip_code=500)
        assert a.stream is not None and c.stream is not None
        services.media.bridge(a.stream, c.stream)
        leg.bridge = bridges.open(_bridge(services, a, c))
        bridges.calls.picked_bridged(leg)  # the picking phone may transfer it
        if a.phase is CallPhase.ANSWERED:
            a.enter(CallPhase.BRIDGED)
        a.log.info("call.bridged", picked_by=picked.subscriber, by_call=c.call_id)
        await leg.ended.wait()
        return ForwardOutcome(result="answered", sip_code=200)
    finally:
        if leg.bridge is not None:
            c.sdp_version = leg.bridge.b.version  # our SDP on the picking phone's leg
        if c.stream is not None:
            services.media.unbridge(c.stream)
        picked.over.set()


def _in_dialog(call: Call) -> bool:
    return call.stream is not None and call.dialog_id is not None and call.phase.in_dialog


def _bridge(services: CallServices, a: Call, c: Call) -> Bridge:
    """The bridge between the caller's call ``a`` and the picking phone's call ``c``."""
    assert a.stream is not None and a.dialog_id is not None
    assert c.stream is not None and c.dialog_id is not None
    side_a = Side(
        leg="a", dialog_id=a.dialog_id, stream=a.stream, session_id=a.sdp_session,
        version=a.sdp_version,
    )  # fmt: skip
    side_c = Side(
        leg="b", dialog_id=c.dialog_id, stream=c.stream, session_id=c.sdp_session,
        version=c.sdp_version,
    )  # fmt: skip
    language = a.session.language if a.session else services.live.settings.media.default_language
    return Bridge(services, side_a, side_c, language=language, log=a.log)
