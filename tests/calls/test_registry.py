"""Tests for the Calls registry (callserver.calls.registry): one place in, one place out."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest

from callserver.calls.bridge import Bridge, Side
from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase, CallPhaseError
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession, SessionHost
from callserver.media.stream import MediaStream
from callserver.policy.caller import caller_identity
from callserver.sip.dialog import DialogId

DIALOG = DialogId("c1", "ours", "theirs")


def _call(tmp_path: Path) -> tuple[Call, CallSession]:
    call = Call(call_id="c1", key="k1", offered_at=0.0)
    call.stream = MediaStream(7, 20014, ssrc=1, sequence=1, timestamp=0)
    session = CallSession(
        cast(SessionHost, _NoHost()),
        call_id="c1",
        caller=caller_identity("100", None, None, None),
        called="200",
        language="en",
        voicemail_dir=tmp_path,
    )
    return call, session


class _NoHost:
    """A session host that is never asked anything here."""


def test_a_call_is_found_by_every_key_until_removed_and_by_none_after(tmp_path: Path) -> None:
    """add, answered, hosted index the call; remove takes it out of all of them and ends it."""
    calls = Calls()
    call, session = _call(tmp_path)
    calls.add(call)
    calls.hosted(call, session)
    calls.answered(call, DIALOG)
    assert call.phase is CallPhase.ANSWERED and not calls.idle.is_set()
    assert calls.by_key("k1") is calls.by_dialog(DIALOG) is calls.by_stream(7) is call
    assert calls.by_session(session) is call and list(calls) == [call] and len(calls) == 1
    calls.remove(call)
    assert call.phase is CallPhase.ENDED and calls.idle.is_set() and calls.total == 1
    found = (calls.by_key("k1"), calls.by_dialog(DIALOG), calls.by_stream(7))
    assert found == (None, None, None) and calls.by_session(session) is None


def test_a_removed_call_cannot_be_removed_again(tmp_path: Path) -> None:
    """A second remove is a bug the phase table catches (ENDED is terminal)."""
    calls = Calls()
    call, _ = _call(tmp_path)
    calls.add(call)
    calls.remove(call)
    with pytest.raises(CallPhaseError):
        calls.remove(call)


def _phone_leg(call: Call, number: str) -> Leg:
    facts = CallFacts(call_id="leg-1", caller="100", called=number, offered_at=0.0)
    stream = MediaStream(8, 20016, ssrc=2, sequence=1, timestamp=0)
    unused: Any = None  # the registry reads none of these
    leg = Leg(call, None, stream, unused, facts, None, unused, unused, None, unused)
    leg.forks = {}
    return leg


def test_a_subscriber_is_in_a_call_from_each_answer_to_the_end_of_that_dialog(
    tmp_path: Path,
) -> None:
    """A phone's own answered call, and an answered leg that rang another's phones, count
    once each until their dialog ends or they are removed, however often that is said."""
    calls = Calls()
    call, _ = _call(tmp_path)
    call.facts = CallFacts(call_id="c1", caller="201", called="+38733100202", offered_at=0.0)
    call.facts.subscriber = "+38733100201"
    calls.add(call)
    assert not calls.in_call("+38733100201")
    calls.answered(call, DIALOG)
    leg = _phone_leg(call, "+38733100202")
    calls.leg_answered(leg, DialogId("leg-1", "a", "b"))
    assert calls.in_call("+38733100201") and calls.in_call("+38733100202")
    calls.leg_dialog_ended(leg)
    calls.remove_leg(leg)
    assert not calls.in_call("+38733100202")
    calls.remove(call)
    assert not calls.in_call("+38733100201")


def test_phone_freed_is_told_once_when_a_subscribers_last_call_ends(tmp_path: Path) -> None:
    """phone_freed hears a number when its answered call ends, once however often the end
    is said, and never while the call goes on."""
    calls, freed = Calls(), []
    calls.phone_freed = freed.append
    call, _ = _call(tmp_path)
    call.facts = CallFacts(call_id="c1", caller="201", called="+38733100202", offered_at=0.0)
    call.facts.subscriber = "+38733100201"
    calls.add(call)
    calls.answered(call, DIALOG)
    leg = _phone_leg(call, "+38733100202")
    calls.leg_answered(leg, DialogId("leg-1", "a", "b"))
    assert freed == []
    calls.leg_dialog_ended(leg)
    calls.remove_leg(leg)
    calls.leg_dialog_ended(leg)
    calls.remove(call)
    assert freed == ["+38733100202", "+38733100201"]


def test_a_leg_through_a_route_makes_nobody_busy(tmp_path: Path) -> None:
    """Only a leg to a phone's contacts counts; a leg out to a carrier does not."""
    calls = Calls()
    call, _ = _call(tmp_path)
    leg = _phone_leg(call, "+38761200300")
    leg.forks = None
    calls.leg_answered(leg, DialogId("leg-1", "a", "b"))
    assert not calls.in_call("+38761200300")


async def test_a_phones_bridged_call_is_found_by_its_number_and_watched_until_closed(
    tmp_path: Path,
) -> None:
    """phone_side finds the calling phone on side a and the called phone's leg on side b
    (with each side's CDR facts); a watch is set when the bridge closes, and nothing is found
    after."""
    calls = Calls()
    call, _ = _call(tmp_path)
    call.facts = CallFacts(call_id="c1", caller="201", called="+38733100202", offered_at=0.0)
    call.facts.subscriber = "+38733100201"
    calls.add(call)
    calls.answered(call, DIALOG)
    leg = _phone_leg(call, "+38733100202")
    leg_dialog = DialogId("leg-1", "a", "b")
    calls.leg_answered(leg, leg_dialog)
    assert call.stream is not None
    a = Side(leg="a", dialog_id=DIALOG, stream=call.stream, session_id=1, version=1)
    b = Side(leg="b", dialog_id=leg_dialog, stream=leg.stream, session_id=2, version=1)
    bridge = Bridge(cast(Any, None), a, b, language="en", log=None)
    calls.bridge_opened(bridge)
    assert calls.phone_side("+38733100201") == (bridge, a)
    assert calls.phone_side("+38733100202") == (bridge, b)
    assert calls.phone_side("+38761200300") is None
    assert (calls.facts_of(a), calls.facts_of(b)) == (call.facts, leg.facts)
    closed = calls.watch(bridge)
    calls.bridge_closed(bridge)
    assert closed.is_set() and calls.phone_side("+38733100201") is None
