"""PlanTransfers: which transfers run a plan here, and the hand-off to it after the forward."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import structlog

from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase
from callserver.calls.plan_transfer import PlanTransfers
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.policy.caller import CallerId

ROOM = "+38733100600"
BRIDGED = ForwardOutcome(result="answered", sip_code=200)


def _call(phase: CallPhase = CallPhase.BRIDGED) -> Call:
    """A trunk caller's call to 201 run by a session, in ``phase``."""
    call = Call(call_id="a1", key=None, offered_at=0.0, log=structlog.get_logger())
    called = "+38733100201"
    call.facts = CallFacts(call_id="a1", caller="38761000000", called=called, offered_at=0.0)
    call.session = CallSession(
        cast(Any, None),
        call_id="a1",
        caller=CallerId(raw="38761000000", e164="38761000000"),
        called="+38733100201",
        language="en",
        voicemail_dir=Path("unused"),
    )
    call.phase = phase
    return call


def _leg(call: Call) -> Leg:
    """The leg 201 answered, bridged to ``call`` (only what PlanTransfers reads)."""
    facts = SimpleNamespace(call_id="b1")
    ended = asyncio.Event()
    leg = SimpleNamespace(a=call, bridge=object(), facts=facts, end_reason="", ended=ended)
    return cast(Leg, leg)


def _plans(ran: list[str]) -> PlanTransfers:
    """PlanTransfers whose only plan is the room's; its router notes the number it ran."""
    plans = PlanTransfers()
    plans.hosts = lambda number: number == ROOM

    async def run(session: CallSession) -> None:
        ran.append(session.called)

    plans.router = run
    return plans


def test_a_bridged_session_caller_transferred_to_a_plan_number_is_taken() -> None:
    """The room's number is taken for a session's bridged caller; another number, a call
    not bridged, or a server without plans is not."""
    plans, call = _plans([]), _call()
    assert plans.takes(_leg(call), ROOM)
    assert not plans.takes(_leg(call), "+38733100202")
    assert not plans.takes(_leg(_call(CallPhase.ANSWERED)), ROOM)
    assert not PlanTransfers().takes(_leg(call), ROOM)


def test_the_plan_runs_on_the_transferees_session_after_its_forward() -> None:
    """hand_over ends the leg ``transferred``; follow then runs the room's plan with the room
    as the called number, notes the replaced leg for the CDR and reports the call answered."""
    ran: list[str] = []
    plans, call = _plans(ran), _call()
    leg = _leg(call)
    plans.hand_over(leg, ROOM)
    assert leg.end_reason == "transferred" and leg.ended.is_set()
    busy = ForwardOutcome(result="busy", sip_code=486)
    outcome = asyncio.run(plans.follow(call, busy))
    assert outcome == BRIDGED and ran == [ROOM]
    assert call.session is not None and call.session.variables["called"] == ROOM
    assert call.facts is not None and call.facts.extra["transferred_from"] == "b1"
    assert asyncio.run(plans.follow(call, busy)) == busy, "a hand-off is followed once"


def test_a_forward_without_a_hand_off_or_a_dropped_one_returns_as_it_ended() -> None:
    """follow returns the forward's own outcome when no transfer handed the call over, or
    when the call ended first (discard)."""
    ran: list[str] = []
    plans, call = _plans(ran), _call()
    assert asyncio.run(plans.follow(call, BRIDGED)) is BRIDGED
    plans.hand_over(_leg(call), ROOM)
    plans.discard(call)
    assert asyncio.run(plans.follow(call, BRIDGED)) is BRIDGED and ran == []


def test_a_mailbox_noted_by_a_transfers_forwarding_takes_the_call_instead_of_a_plan() -> None:
    """boxing notes the mailbox the forwarding chose (for a session's bridged call only);
    hand_over then gives the call to that box, whose recording runs on the transferee's
    session, not the plan's router."""
    ran: list[str] = []
    boxes: list[tuple[str, str]] = []
    plans, call = _plans(ran), _call()
    assert plans.boxing(call) is None, "no boxes wired: a diversion to VM is refused"

    async def leave(session: CallSession, mailbox: str) -> None:
        boxes.append((session.call_id, mailbox))

    plans.voicemail = leave
    assert plans.boxing(_call(CallPhase.ENDED)) is None, "no session's bridged call: refused"
    note = plans.boxing(call)
    assert note is not None and call.session is not None
    asyncio.run(note(call.session, "38733100202"))
    assert plans.boxed(call)
    plans.hand_over(_leg(call), "202")
    assert asyncio.run(plans.follow(call, BRIDGED)) == BRIDGED
    assert boxes == [("a1", "38733100202")] and ran == [] and not plans.boxed(call)


def test_a_forwards_diversion_into_a_plan_runs_it_with_the_diversion_on_the_cdr() -> None:
    """diverts notes the room for the ringing caller; follow runs the room's plan and the
    caller's CDR carries the diversion, not a transfer; the same plan twice is a loop."""
    ran: list[str] = []
    plans, call = _plans(ran), _call(CallPhase.RINGING)
    assert plans.diverts(call, ROOM, "unconditional", "+38733100201")
    outcome = asyncio.run(plans.follow(call, BRIDGED))
    assert outcome == BRIDGED and ran == [ROOM]
    assert call.facts is not None
    extra = call.facts.extra
    assert (extra["diversion_reason"], extra["diverted_from"]) == ("unconditional", "+38733100201")
    assert "transferred_from" not in extra
    assert not plans.diverts(call, ROOM, "no-answer", "+38733100202"), "a loop is refused"
    plans.discard(call)
    assert plans.diverts(call, ROOM, "no-answer", "+38733100202"), "a new call starts afresh"


def test_a_transfers_diversion_into_a_plan_hands_the_transferee_to_that_plan() -> None:
    """diverting (a session's bridged caller only) notes the room a transfer target's
    forwarding chose; hand_over gives the call to the room, not the transfer's target, and
    the CDR carries both the replaced leg and the diversion."""
    ran: list[str] = []
    plans, call = _plans(ran), _call()
    assert plans.diverting(_call(CallPhase.ENDED)) is None
    note = plans.diverting(call)
    assert note is not None and note(call, ROOM, "user-busy", "+38733100202")
    assert plans.boxed(call)
    plans.hand_over(_leg(call), "+38733100202")
    assert asyncio.run(plans.follow(call, BRIDGED)) == BRIDGED and ran == [ROOM]
    assert call.facts is not None
    extra = call.facts.extra
    assert extra["transferred_from"] == "b1" and extra["diverted_from"] == "+38733100202"
    assert extra["diversion_reason"] == "user-busy" and not plans.boxed(call)
