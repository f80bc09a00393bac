"""Tests for CallManager with a recording endpoint and media engine (tests/calls/harness.py).

Each test drives the manager with the events the SIP endpoint and the media engine deliver,
at a pinned time, and checks what it sent, what it asked of the media engine, the call's
phase and registry entries, and the CDR it wrote.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from callserver.calls.phase import CallPhase, CallPhaseError
from callserver.cdr.record import Disposition
from callserver.media.events import DtmfReceived, RtpTimedOut
from callserver.sip.events import InviteCancelled, RequestReceived, TransactionTimedOut
from callserver.sip.sdp import parse_sdp
from tests.calls.fakes import CALLER, OFFER, request
from tests.calls.harness import Harness, dialog


async def ring_forever(session: object) -> None:
    """A plan that never answers."""
    await asyncio.Event().wait()


async def _answered(tmp_path: Path, call_id: str = "c1") -> Harness:
    """A harness with one call answered (200 OK sent) and ACKed."""
    harness = Harness.create(tmp_path)
    harness.invite(call_id)
    await harness.settle()
    harness.ack(call_id)
    return harness


async def test_an_invite_a_plan_answers_gets_200_with_our_answer_and_the_ack_answers_it(
    tmp_path: Path,
) -> None:
    """200 OK carries our SDP answer (PCMU first, as offered and allowed), the ACK answers."""
    harness = Harness.create(tmp_path)
    key = harness.invite("c1")
    await harness.settle()
    (sent,) = harness.endpoint.responses
    assert (sent.key, sent.status) == (key, 200)
    assert parse_sdp(sent.body).media[0].port == harness.media.kinds("open")[0][1] * 2 + 20000
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.phase is CallPhase.ANSWERED and call.answered_at is None
    assert harness.manager.calls.by_dialog(dialog("c1")) is call
    harness.ack("c1")
    assert call.answered_at == harness.loop.now and call.credit is not None
    assert harness.sink.answered == ["c1"] and call.phase is CallPhase.ANSWERED


async def test_the_callers_bye_ends_the_call_once_everywhere(tmp_path: Path) -> None:
    """BYE from the caller: stream closed, out of every index, one answered CDR by the caller."""
    harness = await _answered(tmp_path)
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.stream is not None and call.session is not None
    harness.ended("c1", "bye_received")
    await harness.settle()
    assert call.phase is CallPhase.ENDED and len(harness.manager.calls) == 0
    assert harness.manager.calls.by_stream(call.stream.stream_id) is None
    assert harness.manager.calls.by_session(call.session) is None
    assert harness.manager.idle.is_set() and call.task is not None and call.task.done()
    assert harness.media.kinds("close") == [("close", call.stream.stream_id)]
    (record,) = harness.sink.records
    assert (record.disposition, record.hangup_by, record.sip_code) == (
        Disposition.ANSWERED,
        "caller",
        200,
    )


async def test_a_plan_that_hangs_up_sends_bye_and_the_call_ends_with_its_dialog(
    tmp_path: Path,
) -> None:
    """Our BYE puts the call in ENDING; the dialog's end ends it, hung up by the server."""
    harness = await _answered(tmp_path)
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.session is not None
    await call.session.hangup(code=None, cause=None, reason="normal")
    assert harness.endpoint.byes == [dialog("c1")] and call.phase is CallPhase.ENDING
    harness.ended("c1", "bye_sent")
    assert call.phase is CallPhase.ENDED
    (record,) = harness.sink.records
    assert (record.disposition, record.hangup_by) == (Disposition.ANSWERED, "server")


async def test_cancel_of_a_ringing_call_ends_it_as_cancelled(tmp_path: Path) -> None:
    """CANCEL before any answer: the call ends, its stream closes, the CDR says cancelled."""
    harness = Harness.create(tmp_path, plan=ring_forever)
    key = harness.invite("c1")
    await harness.settle()
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.phase is CallPhase.ADMITTED
    harness.deliver(InviteCancelled(key=key, rtime=harness.loop.now))
    await harness.settle()
    assert call.phase is CallPhase.ENDED and harness.manager.calls.by_key(key) is None
    (record,) = harness.sink.records
    assert (record.disposition, record.hangup_by) == (Disposition.CANCELLED, "caller")
    assert harness.media.kinds("close") and call.task is not None and call.task.done()


async def test_no_ack_ends_the_call_as_ack_timeout(tmp_path: Path) -> None:
    """A 2xx never ACKed: the dialog's end (ack_timeout) ends the call with that reason."""
    harness = Harness.create(tmp_path)
    harness.invite("c1")
    await harness.settle()
    harness.ended("c1", "ack_timeout")
    (record,) = harness.sink.records
    assert record.end_reason == "ack_timeout" and len(harness.manager.calls) == 0


async def test_an_invite_transaction_that_times_out_unanswered_ends_the_call(
    tmp_path: Path,
) -> None:
    """The INVITE's transaction timed out before any ACK: the call ends with ``timeout``."""
    harness = Harness.create(tmp_path, plan=ring_forever)
    key = harness.invite("c1")
    await harness.settle()
    invite = request("INVITE", "c1", body=OFFER)
    harness.deliver(TransactionTimedOut(key=key, request=invite))
    (record,) = harness.sink.records
    assert record.disposition is Disposition.NO_ANSWER and len(harness.manager.calls) == 0


async def test_rtp_timeout_sends_bye_and_the_cdr_says_rtp_timeout(tmp_path: Path) -> None:
    """No RTP for media.rtp_timeout: BYE, ENDING, then the CDR's end reason is rtp_timeout."""
    harness = await _answered(tmp_path)
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.stream is not None
    harness.manager.handle_media_event(
        RtpTimedOut(stream_id=call.stream.stream_id, idle=30.0, rtime=harness.loop.now)
    )
    assert harness.endpoint.byes == [dialog("c1")] and call.phase is CallPhase.ENDING
    harness.ended("c1", "bye_sent")
    assert harness.sink.records[-1].end_reason == "rtp_timeout"


async def test_a_digit_goes_to_the_session_and_an_info_digit_to_the_media_engine(
    tmp_path: Path,
) -> None:
    """An RFC 4733 digit reaches the plan's session; an INFO digit is reported to the stream."""
    harness = await _answered(tmp_path)
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.stream is not None and call.session is not None
    harness.manager.handle_media_event(
        DtmfReceived(stream_id=call.stream.stream_id, digit="5", source="rfc4733", rtime=0.0)
    )
    collected = await call.session.collect(
        max_digits=1, first_timeout=1.0, digit_timeout=1.0, terminator=None
    )
    assert collected.digits == "5"
    info = request("INFO", "c1", seq=3, in_dialog=True)
    info.headers.set("Content-Type", "application/dtmf-relay")
    info.body = b"Signal=7\r\nDuration=160\r\n"
    harness.deliver(RequestReceived(request=info, peer=CALLER, key="info", rtime=0.0))
    assert ("digit", call.stream.stream_id, "7", "info") in harness.media.ops
    assert harness.endpoint.statuses("info") == [200]


async def test_a_reinvite_on_hold_is_answered_and_redirects_the_stream(tmp_path: Path) -> None:
    """A re-INVITE with a=sendonly gets 200 with our answer (recvonly) and the stream follows."""
    harness = await _answered(tmp_path)
    held = OFFER + b"a=sendonly\r\n"
    key = harness.in_dialog("INVITE", "c1", body=held)
    (sent,) = [s for s in harness.endpoint.responses if s.key == key]
    assert sent.status == 200 and parse_sdp(sent.body).media[0].direction == "recvonly"
    assert harness.media.kinds("configure")[-1][3] == "recvonly"
    assert parse_sdp(sent.body).origin.sess_version == 2  # RFC 3264 §8: one up


async def test_a_reinvite_with_an_unusable_offer_gets_488_and_keeps_the_call(
    tmp_path: Path,
) -> None:
    """An offer with no codec in common: 488, the call stays answered."""
    harness = await _answered(tmp_path)
    bad = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 18")
    key = harness.in_dialog("INVITE", "c1", body=bad)
    assert harness.endpoint.statuses(key) == [488]
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.phase is CallPhase.ANSWERED


async def test_a_request_in_an_unknown_dialog_gets_481(tmp_path: Path) -> None:
    """A re-INVITE for no call: 481 (RFC 3261 §12.2.2)."""
    harness = Harness.create(tmp_path)
    key = harness.in_dialog("INVITE", "nobody", body=OFFER)
    assert harness.endpoint.statuses(key) == [481]


async def test_shutdown_byes_answered_calls_and_refuses_ringing_ones(tmp_path: Path) -> None:
    """hang_up_all: BYE to the answered call (ENDING), 503 to the ringing one (ended)."""
    harness = await _answered(tmp_path)
    harness.plan = ring_forever
    ringing = harness.invite("c2")
    await harness.settle()
    harness.manager.hang_up_all()
    assert harness.endpoint.byes == [dialog("c1")]
    assert harness.endpoint.statuses(ringing) == [503]
    assert harness.sink.ends() == [("a", "shutdown", None)]  # as the server has always written
    answered = harness.manager.calls.by_dialog(dialog("c1"))
    assert answered is not None and answered.phase is CallPhase.ENDING
    assert not harness.manager.byes_answered.is_set()


async def test_the_admin_hang_up_byes_an_answered_call_and_answers_a_ringing_one_487(
    tmp_path: Path,
) -> None:
    """hang_up_by_admin: BYE to the answered call, 487 to the ringing one; both CDRs: admin."""
    harness = await _answered(tmp_path)
    harness.plan = ring_forever
    ringing = harness.invite("c2")
    await harness.settle()
    answered = harness.manager.calls.by_dialog(dialog("c1"))
    waiting = harness.manager.calls.by_key(ringing)  # type: ignore[arg-type]
    assert answered is not None and waiting is not None
    assert harness.manager.hang_up_by_admin(answered)
    assert harness.manager.hang_up_by_admin(waiting)
    assert not harness.manager.hang_up_by_admin(answered)  # already ending: nothing sent
    assert harness.endpoint.byes == [dialog("c1")]
    assert harness.endpoint.statuses(ringing) == [487]
    harness.ended("c1", "bye_sent")
    assert harness.sink.ends() == [("a", "admin", 487), ("a", "admin", 200)]
    assert [r.hangup_by for r in harness.sink.records] == ["admin", "admin"]


async def test_draining_refuses_new_invites_with_503(tmp_path: Path) -> None:
    """While draining a new INVITE gets 503 with Retry-After and is never tracked."""
    harness = Harness.create(tmp_path)
    harness.manager.draining = True
    key = harness.invite("c1")
    (sent,) = harness.endpoint.responses
    assert (sent.key, sent.status, sent.headers) == (key, 503, (("Retry-After", "30"),))
    assert len(harness.manager.calls) == 0 and harness.media.ops == []


async def test_no_free_rtp_port_refuses_with_503_and_releases_the_channel(
    tmp_path: Path,
) -> None:
    """Every RTP port in use: 503 Retry-After 5, the call's channel goes back."""
    harness = Harness.create(tmp_path, ports=0)
    key = harness.invite("c1")
    assert harness.endpoint.statuses(key) == [503]
    assert len(harness.manager.calls) == 0 and harness.manager.calls_total == 0


async def test_a_phase_move_the_table_does_not_hold_is_refused(tmp_path: Path) -> None:
    """An ended call cannot be answered again: CallPhaseError, and the phase stays."""
    harness = await _answered(tmp_path)
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None
    harness.ended("c1", "bye_received")
    with pytest.raises(CallPhaseError):
        call.enter(CallPhase.ANSWERED)
    assert call.phase is CallPhase.ENDED


async def test_a_late_offer_gets_our_offer_and_the_acks_answer_configures_the_stream(
    tmp_path: Path,
) -> None:
    """An INVITE without SDP: our offer in the 200, the ACK's answer configures the stream."""
    harness = Harness.create(tmp_path)
    key = harness.invite("c1", body=b"")
    await harness.settle()
    (sent,) = harness.endpoint.responses
    assert sent.status == 200 and parse_sdp(sent.body).media[0].formats == ("8", "0", "101")
    assert harness.media.kinds("configure") == []  # nothing flows before the answer
    answer = OFFER.replace(b"RTP/AVP 0 8 101", b"RTP/AVP 0 101")
    harness.ack("c1", body=answer)
    await harness.settle()
    assert harness.media.kinds("configure")[-1][2] == "PCMU"
    call = harness.manager.calls.by_key(key)
    assert call is not None and call.offer is None and call.phase is CallPhase.ANSWERED


async def test_a_late_offer_whose_ack_brings_no_answer_is_hung_up_as_an_error(
    tmp_path: Path,
) -> None:
    """An ACK without SDP to our offer: no media can flow, BYE, the CDR says error."""
    harness = Harness.create(tmp_path)
    harness.invite("c1", body=b"")
    await harness.settle()
    harness.ack("c1")
    assert harness.endpoint.byes == [dialog("c1")]
    call = harness.manager.calls.by_dialog(dialog("c1"))
    assert call is not None and call.phase is CallPhase.ENDING and call.cause == "error"
    harness.ended("c1", "bye_sent")
    assert harness.sink.records[-1].end_reason == "error"


async def test_shutdown_waits_for_the_final_responses_to_its_byes(tmp_path: Path) -> None:
    """byes_answered is set once every BYE hang_up_all sent has its final response."""
    harness = await _answered(tmp_path)
    harness.manager.hang_up_all()
    assert not harness.manager.byes_answered.is_set()
    bye = request("BYE", "c1", seq=2, in_dialog=True)
    harness.deliver(TransactionTimedOut(key=("bye", 1), request=bye))  # the BYE's key
    assert harness.manager.byes_answered.is_set()
