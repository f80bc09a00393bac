"""Tests for the parts of the call layer: DurationCaps, Forwarder (with its bridge), SessionHosting.

Driven through a CallManager wired to the stand-ins of tests/calls/fakes.py, with the events
the endpoint and the media engine deliver and a clock that moves only when a test moves it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from callserver.calls.phase import CallPhase
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.cdr.record import Disposition
from callserver.media.events import PlaybackFinished
from callserver.sip.events import DialogTerminated, InviteCancelled
from callserver.sip.sdp import parse_sdp
from tests.calls.fakes import OFFER
from tests.calls.harness import Harness, answer_and_wait, dialog, leg_dialog

TARGET = "sip:bob@127.0.0.1:5090"


async def test_a_capped_call_hears_the_warning_then_gets_bye_with_max_duration(
    tmp_path: Path,
) -> None:
    """The plan's 60 s cap, warned 10 s before: the prompt at 50 s, BYE at 60 s, CDR says so."""

    async def capped(session: CallSession) -> None:
        session.max_duration = 60.0
        await answer_and_wait(session)

    harness = Harness.create(tmp_path, plan=capped)
    harness.manager.tariffs = dataclasses.replace(harness.manager.tariffs, cap_warning=10.0)
    harness.invite("c1")
    await harness.settle()
    harness.ack("c1")
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.stream is not None
    harness.loop.advance(49.0)
    assert not call.warned and harness.media.kinds("play") == []
    harness.loop.advance(1.0)
    assert call.warned and harness.media.kinds("play") == [
        ("play", call.stream.stream_id, 8000, False)
    ]
    assert harness.endpoint.byes == []
    harness.loop.advance(10.0)
    assert harness.endpoint.byes == [dialog("c1")] and call.phase is CallPhase.ENDING
    harness.ended("c1", "bye_sent")
    assert harness.sink.records[-1].end_reason == "max_duration"


async def test_a_cap_timer_of_an_ended_call_does_nothing(tmp_path: Path) -> None:
    """The caller hangs up before the cap: the cap's deadline passes without a BYE."""

    async def capped(session: CallSession) -> None:
        session.max_duration = 60.0
        await answer_and_wait(session)

    harness = Harness.create(tmp_path, plan=capped)
    harness.invite("c1")
    await harness.settle()
    harness.ack("c1")
    harness.ended("c1", "bye_received")
    harness.loop.advance(120.0)
    assert harness.endpoint.byes == [] and len(harness.sink.records) == 1


def _forwarding(tmp_path: Path, outcomes: list[ForwardOutcome]) -> Harness:
    async def forward(session: CallSession) -> None:
        outcome = await session.forward(
            target=TARGET, route=None, ring_timeout=20.0, caller_id=None
        )
        outcomes.append(outcome)

    return Harness.create(tmp_path, plan=forward)


async def test_a_forwarded_call_rings_the_caller_answers_bridges_and_ends_with_the_leg(
    tmp_path: Path,
) -> None:
    """180 to the caller, the leg's 200 answers the caller and bridges; the leg's BYE unbridges."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    key = harness.invite("c1", max_forwards=10)
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    assert (invited.uri, invited.max_forwards) == (TARGET, 9)  # RFC 3261 §16.6 step 3
    assert harness.endpoint.statuses(key) == [180]
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.phase is CallPhase.RINGING
    harness.leg_response(invited, 200)
    await harness.settle()
    assert harness.endpoint.statuses(key) == [180, 200]
    assert call.phase is CallPhase.BRIDGED and call.stream is not None
    leg_stream = harness.media.kinds("bridge")[0][2]
    assert harness.media.kinds("bridge") == [("bridge", call.stream.stream_id, leg_stream)]
    harness.deliver(
        DialogTerminated(dialog_id=leg_dialog(invited), reason="bye_received", rtime=0.0)
    )
    await harness.settle()
    assert outcomes == [ForwardOutcome(result="answered", sip_code=200)]
    assert call.phase is CallPhase.ANSWERED and ("close", leg_stream) in harness.media.ops
    (leg,) = harness.sink.records
    assert (leg.leg, leg.hangup_by, leg.disposition) == ("b", "callee", Disposition.ANSWERED)
    assert harness.manager.calls.leg_by_handle(invited.handle) is None


async def test_a_busy_forward_target_gives_busy_and_a_leg_cdr(tmp_path: Path) -> None:
    """486 from the target: the plan hears ``busy``, the leg's stream closes, its CDR is busy."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    key = harness.invite("c1")
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    harness.leg_response(invited, 486)
    await harness.settle()
    assert outcomes == [ForwardOutcome(result="busy", sip_code=486)]
    (leg,) = harness.sink.records
    assert (leg.leg, leg.disposition, leg.sip_code) == ("b", Disposition.BUSY, 486)
    assert len(harness.media.kinds("close")) == 1 and harness.endpoint.uac.cancels == []
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.phase is CallPhase.RINGING


async def test_a_forward_target_that_does_not_answer_in_time_is_cancelled(
    tmp_path: Path,
) -> None:
    """No answer within ring_timeout: CANCEL, and the 487 that follows is ``no_answer``."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    harness.invite("c1")
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    harness.leg_response(invited, 180)
    harness.loop.advance(20.0)
    assert harness.endpoint.uac.cancels == [invited.handle]
    harness.leg_response(invited, 487)
    await harness.settle()
    assert outcomes == [ForwardOutcome(result="no_answer", sip_code=487)]
    assert harness.sink.records[-1].disposition is Disposition.NO_ANSWER


async def test_the_callers_cancel_cancels_the_ringing_forward_target(tmp_path: Path) -> None:
    """The caller's CANCEL ends its call while the target rings: the target gets a CANCEL too,
    and the leg's CDR says 487."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    key = harness.invite("c1")
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    harness.leg_response(invited, 180)
    harness.deliver(InviteCancelled(key=key, rtime=harness.loop.now))
    await harness.settle()
    assert harness.endpoint.uac.cancels == [invited.handle]
    assert ("b", 487) in [(record.leg, record.sip_code) for record in harness.sink.records]


async def test_a_forward_loop_is_refused_without_placing_a_leg(tmp_path: Path) -> None:
    """Max-Forwards 1 on the INVITE: no leg, ``failed`` with 483 and a CDR saying loop."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    harness.invite("c1", max_forwards=1)
    await harness.settle()
    assert harness.endpoint.uac.invites == []
    assert outcomes == [ForwardOutcome(result="failed", sip_code=483)]
    assert harness.sink.ends() == [("b", "error", 483)]


async def test_an_announced_refusal_plays_as_early_media_then_refuses(tmp_path: Path) -> None:
    """Over a number's channels with an announcement: 183, the prompt, then the refusal."""
    trunks = {
        "allow_unknown_sources": True,
        "numbers": {"100": {"channels": 0}},
        "over_limit": {"announcement": "busy_lines"},
    }
    harness = Harness.create(tmp_path, trunks=trunks)
    key = harness.invite("c1")
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.phase is CallPhase.EARLY and call.stream is not None
    assert harness.endpoint.statuses(key) == [183] and harness.media.kinds("play")
    harness.manager.handle_media_event(
        PlaybackFinished(stream_id=call.stream.stream_id, interrupted=False, rtime=0.0)
    )
    (status,) = harness.endpoint.statuses(key)[1:]
    assert status >= 400 and call.phase is CallPhase.ENDED
    assert harness.sink.records[-1].sip_code == status


async def test_a_bridged_callers_hold_is_answered_on_its_leg_and_the_other_party_hears_music(
    tmp_path: Path,
) -> None:
    """A re-INVITE with a=sendonly in a bridged call: 200 recvonly, music to the forwarded party."""
    outcomes: list[ForwardOutcome] = []
    harness = _forwarding(tmp_path, outcomes)
    harness.invite("c1")
    await harness.settle()
    (invited,) = harness.endpoint.uac.invites
    harness.leg_response(invited, 200)
    await harness.settle()
    leg_stream = harness.media.kinds("bridge")[0][2]
    key = harness.in_dialog("INVITE", "c1", body=OFFER + b"a=sendonly\r\n")
    (sent,) = [s for s in harness.endpoint.responses if s.key == key]
    assert sent.status == 200 and parse_sdp(sent.body).media[0].direction == "recvonly"
    assert harness.media.kinds("hold") == [("hold", leg_stream)]
    assert outcomes == []  # still bridged


async def test_a_plan_that_refuses_before_answering_sends_its_code_with_the_q850_cause(
    tmp_path: Path,
) -> None:
    """Hosting: a hang-up before the answer is a final response with Reason, and the call ends."""

    async def refuse(session: CallSession) -> None:
        await session.hangup(code=486, cause=17, reason="busy")

    harness = Harness.create(tmp_path, plan=refuse)
    key = harness.invite("c1")
    await harness.settle()
    (sent,) = harness.endpoint.responses
    assert (sent.key, sent.status, sent.headers) == (key, 486, (("Reason", "Q.850;cause=17"),))
    assert len(harness.manager.calls) == 0
    assert harness.sink.ends() == [("a", "normal", 486)]
    assert harness.sink.records[0].disposition is Disposition.BUSY
