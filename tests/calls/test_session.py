"""CallSession: the dialplan's awaits over a fake host, resolved by the engine's events."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest

from callserver.calls.b2bua import ForwardOutcome
from callserver.calls.call_recorder import RecordedCall, RecordingPolicy
from callserver.calls.session import CallSession, Collected, Recorded
from callserver.media.prompts import Play, PlaylistItem
from callserver.media.recording import RecordingResult
from callserver.media.recording_writer import CallRecording, CallRecordingResult, RecordingMode
from callserver.media.settings import RecordingSettings
from callserver.policy.caller import CallerId

T = TypeVar("T")
GREETING: list[PlaylistItem] = [Play("greeting")]
NOW = datetime(2026, 3, 2, 9, 0, 1, 250000, tzinfo=UTC)


class FakeHost:
    """Records what the session asks of the calls layer; ``accept`` answers answer requests,
    ``late_offer`` makes an answer wait for the ACK (``media_ready``).

    ``asked`` is set on every request, so a test can wait for the session to get that far.
    """

    def __init__(self) -> None:
        self.asked = asyncio.Event()
        self.accept = True
        self.late_offer = False
        self.answers: list[bool] = []  # the ``early`` flag of each request
        self.plays: list[tuple[list[PlaylistItem], bool]] = []
        self.loops: list[bool] = []  # the ``loop`` flag of each play
        self.rings = 0
        self.stops = 0
        self.records: list[tuple[Path, RecordingSettings]] = []
        self.keys: list[bool] = []  # the ``keys`` flag of each recording
        self.stopped_by_key = 0
        self.forwards: list[tuple[str, str | None, float, str | None]] = []
        self.hangups: list[tuple[int, int | None, str]] = []
        self.rooms: list[tuple[str, int, bool, float | None]] = []
        self.call_recordings: list[str] = []  # each whole-call recording's mode, or "stopped"

    def answer_session(self, session: CallSession, *, early: bool) -> bool:
        self.answers.append(early)
        self.asked.set()
        if self.late_offer and not early and self.accept:
            session.media_pending()  # our offer went in the 200: media waits for the ACK
        return self.accept

    def ring_session(self, session: CallSession) -> None:
        self.rings += 1

    def play_session(
        self, session: CallSession, items: Sequence[PlaylistItem], barge_in: bool, loop: bool
    ) -> None:
        self.plays.append((list(items), barge_in))
        self.loops.append(loop)
        self.asked.set()

    def stop_session_playback(self, session: CallSession) -> None:
        self.stops += 1

    def record_session(
        self, session: CallSession, path: Path, limits: RecordingSettings, *, keys: bool = False
    ) -> None:
        self.records.append((path, limits))
        self.keys.append(keys)
        self.asked.set()

    def stop_session_recording(self, session: CallSession) -> None:
        self.stopped_by_key += 1

    async def forward_session(
        self,
        session: CallSession,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
    ) -> ForwardOutcome:
        self.forwards.append((target, route, ring_timeout, caller_id))
        return ForwardOutcome(result="busy", sip_code=486)

    async def conference_session(
        self, session: CallSession, *, room: str, limit: int, tones: bool, time_limit: float | None
    ) -> bool:
        self.rooms.append((room, limit, tones, time_limit))
        return room != "full"

    def hang_up_session(
        self, session: CallSession, code: int, cause: int | None, reason: str
    ) -> None:
        self.hangups.append((code, cause, reason))

    def record_call_session(
        self, session: CallSession, mode: RecordingMode, customer: str | None = None
    ) -> RecordedCall:
        recording = CallRecording(Path("var/recordings/acme/c.wav"), mode)
        recording.frames = 250  # 5 s handed to the writer
        self.call_recordings.append(mode)
        self.asked.set()
        return RecordedCall(uuid="u-1", path="recordings/acme/c.wav", recording=recording)

    def stop_call_recording_session(self, session: CallSession) -> None:
        self.call_recordings.append("stopped")


def session(
    host: FakeHost, tmp_path: Path = Path("unused"), monotonic: Callable[[], float] = lambda: 0.0
) -> CallSession:
    caller = CallerId(raw="061123456", e164="+38761123456", country="BA")
    return CallSession(
        host,
        call_id="c-1",
        caller=caller,
        called="38733100200",
        language="bs",
        voicemail_dir=tmp_path / "voicemail",
        clock=lambda: NOW,
        monotonic=monotonic,
    )


async def until(host: FakeHost, condition: Callable[[], bool]) -> None:
    """Let the session's task run until ``condition`` holds (the timeout only ends a hang)."""
    async with asyncio.timeout(10):
        while not condition():
            host.asked.clear()
            await host.asked.wait()


def start(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    return asyncio.get_running_loop().create_task(coroutine)


def collect(call: CallSession, **kwargs: Any) -> Coroutine[Any, Any, Collected]:
    options: dict[str, Any] = {
        "max_digits": 4,
        "first_timeout": 0.01,
        "digit_timeout": 0.01,
        "terminator": "#",
    }
    return call.collect(**(options | kwargs))


def test_a_new_session_knows_its_caller_and_variables() -> None:
    """The caller's E.164 number and the called number are the first variables."""
    call = session(FakeHost())
    assert call.variables == {"caller": "+38761123456", "called": "38733100200"}
    assert not call.answered and not call.early_media and call.now() == NOW


async def test_answer_and_early_media_flags() -> None:
    """183 sets early media once; 200 OK ends it and sets answered; repeats ask nothing."""
    host = FakeHost()
    call = session(host)
    await call.answer(early=True)
    await call.answer(early=True)
    assert (call.early_media, call.answered, host.answers) == (True, False, [True])
    await call.answer()
    await call.answer()
    assert (call.early_media, call.answered, host.answers) == (False, True, [True, False])


async def test_answer_after_a_late_offer_waits_for_the_acks_answer() -> None:
    """With our offer in the 200, answer() returns once the ACK's answer set the media up."""
    host = FakeHost()
    call = session(host)
    host.late_offer = True
    task = start(call.answer())
    await until(host, lambda: bool(host.answers))
    await asyncio.sleep(0.01)
    assert not task.done() and call.answered
    call.media_ready()
    await asyncio.wait_for(task, 1)


async def test_a_call_ended_before_the_ack_releases_the_answer() -> None:
    """A late-offer call that ends before its ACK (no ACK, BYE) does not leave answer() hung."""
    host = FakeHost()
    call = session(host)
    host.late_offer = True
    task = start(call.answer())
    await until(host, lambda: bool(host.answers))
    await asyncio.sleep(0.01)
    assert not task.done()
    call.ended()
    await asyncio.wait_for(task, 1)


async def test_since_answer_counts_from_the_200_ok_not_from_early_media() -> None:
    """since_answer is None before the answer and through early media, then the session's
    monotonic clock minus its value at the 200 OK."""
    now = [100.0]
    call = session(FakeHost(), monotonic=lambda: now[0])
    assert call.since_answer() is None
    await call.answer(early=True)
    now[0] = 103.0
    assert call.since_answer() is None
    await call.answer()
    now[0] = 110.5
    assert call.since_answer() == 7.5


async def test_ring_asks_for_180_only_before_any_answer_or_early_media() -> None:
    """ring sends 180 Ringing on a new call; after 183 or 200, or once ended, it asks nothing."""
    host = FakeHost()
    call = session(host)
    await call.ring()
    assert host.rings == 1
    await call.answer(early=True)
    await call.ring()
    ended = session(host)
    ended.ended()
    await ended.ring()
    assert host.rings == 1


async def test_a_looped_play_asks_for_a_loop_and_ends_with_the_digit_that_stops_it() -> None:
    """play(loop=True) passes the loop to the host and returns the digit of its barge-in."""
    host = FakeHost()
    call = session(host)
    await call.answer()
    task = start(call.play(GREETING, barge_in=True, loop=True))
    await until(host, lambda: bool(host.plays))
    call.digit_received("5")
    call.playback_finished(True)
    assert await asyncio.wait_for(task, 1) == "5"
    assert (host.plays, host.loops) == ([(GREETING, True)], [True])


async def test_an_answer_the_host_refuses_changes_nothing() -> None:
    """When the call is already gone the flags stay down."""
    host = FakeHost()
    host.accept = False
    call = session(host)
    await call.answer()
    assert not call.answered and host.answers == [False]


async def test_play_answers_then_waits_for_playback_finished() -> None:
    """Play answers an unanswered call and returns only when the engine reports the end."""
    host = FakeHost()
    call = session(host)
    task = start(call.play(GREETING, barge_in=False))
    await until(host, lambda: bool(host.plays))
    assert host.answers == [False] and host.plays == [(GREETING, False)]
    assert not task.done()
    call.digit_received("5")  # without barge-in a key is only queued
    await asyncio.sleep(0)
    assert not task.done()
    call.playback_finished(interrupted=False)
    assert await task is None
    assert host.stops == 0


async def test_barge_in_returns_the_digit_and_keeps_it_for_collect() -> None:
    """A key during a barge-in prompt is returned by play and then read by collect."""
    host = FakeHost()
    call = session(host)
    task = start(call.play(GREETING, barge_in=True))
    await until(host, lambda: bool(host.plays))
    call.digit_received("5")
    call.playback_finished(interrupted=True)
    assert await task == "5"
    assert await collect(call, max_digits=1) == Collected(digits="5", reason="max_digits")


async def test_type_ahead_skips_the_prompt() -> None:
    """A key typed before a barge-in prompt skips it: nothing is played."""
    host = FakeHost()
    call = session(host)
    call.digit_received("7")
    assert await call.play(GREETING, barge_in=True) == "7"
    assert host.plays == [] and host.answers == []


async def test_cancelled_play_stops_the_prompt() -> None:
    """Cancelling a play (the caller hung up) stops the engine's playback."""
    host = FakeHost()
    call = session(host)
    task = start(call.play(GREETING, barge_in=False))
    await until(host, lambda: bool(host.plays))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert host.stops == 1


async def test_collect_without_digits_is_no_input() -> None:
    """Nothing within the first-digit timeout: an empty entry, ``no_input``."""
    assert await collect(session(FakeHost())) == Collected(digits="", reason="no_input")


async def test_collect_ends_on_the_inter_digit_timeout() -> None:
    """Digits then a pause longer than the inter-digit timeout: what was typed, ``timeout``."""
    call = session(FakeHost())
    for digit in "12":
        call.digit_received(digit)
    assert await collect(call) == Collected(digits="12", reason="timeout")


async def test_collect_waits_for_digits_that_arrive_later() -> None:
    """With long timeouts, digits arriving one by one fill the entry up to ``max_digits``."""
    call = session(FakeHost())
    task = start(collect(call, max_digits=3, first_timeout=60, digit_timeout=60))
    for digit in "123":
        await asyncio.sleep(0)
        assert not task.done()
        call.digit_received(digit)
    assert await task == Collected(digits="123", reason="max_digits")


async def test_collect_stops_at_the_terminator_and_keeps_later_digits() -> None:
    """``#`` ends the entry without being part of it; keys after it wait for the next collect."""
    call = session(FakeHost())
    for digit in "12#9":
        call.digit_received(digit)
    assert await collect(call) == Collected(digits="12", reason="terminator")
    assert await collect(call) == Collected(digits="9", reason="timeout")


async def test_collect_stops_when_the_entry_is_complete() -> None:
    """The ``complete`` predicate ends the entry early; the remaining key stays queued."""
    call = session(FakeHost())
    for digit in "123":
        call.digit_received(digit)
    entry = await collect(call, complete=lambda digits: digits == "12")
    assert entry.digits == "12"
    assert await collect(call) == Collected(digits="3", reason="timeout")


async def test_hangup_happens_once_and_silences_the_call() -> None:
    """The first hangup reaches the host (no code: 480); later hangups, answers, plays do not."""
    host = FakeHost()
    call = session(host)
    await call.hangup(code=None, cause=None, reason="normal")
    await call.hangup(code=500, cause=41, reason="error")
    await call.answer()
    assert await call.play(GREETING, barge_in=False) is None
    assert host.hangups == [(480, None, "normal")]
    assert host.answers == [] and host.plays == []


async def test_a_call_ended_by_the_peer_sends_nothing_more() -> None:
    """After ``ended`` neither a hangup nor a prompt reaches the host."""
    host = FakeHost()
    call = session(host)
    call.ended()
    await call.hangup(code=486, cause=None, reason="normal")
    assert host.hangups == [] and host.answers == []


async def test_forward_asks_the_host_unless_the_call_has_ended() -> None:
    """A forward goes to the host with its options; after the end it fails without a leg."""
    host = FakeHost()
    call = session(host)
    outcome = await call.forward(target="+38761200300", route=None, ring_timeout=20, caller_id=None)
    assert outcome == ForwardOutcome(result="busy", sip_code=486)
    call.ended()
    again = await call.forward(target="+38761200300", route=None, ring_timeout=20, caller_id=None)
    assert again.result == "failed"
    assert host.forwards == [("+38761200300", None, 20, None)]


async def test_record_writes_json_metadata_beside_the_wav(tmp_path: Path) -> None:
    """The WAV goes under voicemail/<mailbox>/ and its JSON file is written beside it."""
    host = FakeHost()
    call = session(host, tmp_path)
    task = start(call.record(mailbox="office", max_length=120, silence_end=0, min_length=2))
    await until(host, lambda: bool(host.records))
    wav, limits = host.records[0]
    assert wav.parent == tmp_path / "voicemail" / "office" and wav.parent.is_dir()
    assert wav.name.startswith("20260302T090001Z-") and wav.suffix == ".wav"
    assert (limits.max_seconds, limits.min_seconds, limits.silence_seconds) == (120, 2, 0.1)
    wav.write_bytes(b"RIFF....WAVEfmt ")  # stands for the engine's file
    call.recording_finished(str(wav), 12.3456)
    assert await task == Recorded(path=str(wav), duration=12.3456)
    assert json.loads(wav.with_suffix(".json").read_text(encoding="utf-8")) == {
        "caller": "+38761123456",
        "called": "38733100200",
        "time": "2026-03-02T09:00:01.250Z",
        "duration": 12.346,
        "language": "bs",
        "call_id": "c-1",
        "file": wav.name,
    }
    assert sorted(path.name for path in wav.parent.iterdir()) == [f"{wav.stem}.json", wav.name]


async def test_a_stop_key_ends_the_recording_and_is_not_collected(tmp_path: Path) -> None:
    """With stop_keys "#", a # queued before the recording is dropped, a # during it asks the
    host to end it (once), other digits stay queued; after it, # is an ordinary digit."""
    host = FakeHost()
    call = session(host, tmp_path)
    call.digit_received("#")  # pressed during the beep: not the end of a message not begun
    task = start(
        call.record(mailbox="office", max_length=60, silence_end=5, min_length=1, stop_keys="#")
    )
    await until(host, lambda: bool(host.records))
    assert host.keys == [True]
    call.digit_received("5")
    call.digit_received("#")
    assert host.stopped_by_key == 1
    wav, _ = host.records[0]
    wav.write_bytes(b"RIFF....WAVEfmt ")  # stands for the engine's file
    call.recording_finished(str(wav), 3.0)
    call.digit_received("#")  # the recording is over: collected as any digit
    assert await task == Recorded(path=str(wav), duration=3.0)
    assert host.stopped_by_key == 1
    entry = await call.collect(max_digits=3, first_timeout=0.1, digit_timeout=0.1, terminator=None)
    assert entry.digits == "5#"


async def test_a_discarded_recording_writes_no_metadata(tmp_path: Path) -> None:
    """A message shorter than the minimum comes back without a path and leaves no JSON."""
    host = FakeHost()
    call = session(host, tmp_path)
    task = start(call.record(mailbox="office", max_length=60, silence_end=5, min_length=2))
    await until(host, lambda: bool(host.records))
    call.recording_finished(None, 0.8)
    assert await task == Recorded(path=None, duration=0.8)
    assert list((tmp_path / "voicemail" / "office").iterdir()) == []


async def test_a_message_cut_short_by_a_hang_up_is_kept_for_the_cdr(tmp_path: Path) -> None:
    """The caller hangs up mid-message: what closing the stream kept gets its JSON and CDR path."""
    host = FakeHost()
    call = session(host, tmp_path)
    task = start(call.record(mailbox="office", max_length=120, silence_end=5, min_length=1))
    await until(host, lambda: bool(host.records))
    wav, _ = host.records[0]
    wav.write_bytes(b"RIFF....WAVEfmt ")  # stands for the engine's file
    kept = RecordingResult(
        path=wav,
        duration=4.5,
        reason="stopped",
        frames=225,
        samples=36000,
        trimmed_samples=0,
        started_at=1.0,
        ended_at=5.5,
    )
    call.ended(kept)  # as the calls layer does, before it cancels the plan's task
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.cdr_fields()["voicemail_path"] == str(wav)
    metadata = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    assert (metadata["duration"], metadata["file"]) == (4.5, wav.name)


async def test_conference_asks_the_host_and_the_cdr_names_the_room() -> None:
    """The room goes to the host with its limit; the noted room is the CDR's conference."""
    host = FakeHost()
    call = session(host)
    assert await call.conference(room="100", limit=5, tones=True, time_limit=60.0)
    assert not await call.conference(room="full", limit=5, tones=False)
    call.note("conference", "100")
    call.note("end_detail", "conference full: full")
    fields = call.cdr_fields()
    assert host.rooms == [("100", 5, True, 60.0), ("full", 5, False, None)]
    assert fields["conference"] == "100" and fields["end_detail"] == "conference full: full"


def test_a_call_in_no_room_leaves_the_cdrs_conference_to_its_default() -> None:
    """No room noted: cdr_fields has no conference, so the record keeps its None."""
    fields = session(FakeHost()).cdr_fields()
    assert "conference" not in fields and fields["end_detail"] is None


async def test_conference_after_the_call_ended_asks_nothing() -> None:
    """An ended call joins no room."""
    host = FakeHost()
    call = session(host)
    call.ended()
    assert await call.conference(room="100", limit=5, tones=True)
    assert host.rooms == []


async def test_a_customer_that_records_hears_the_announcement_then_the_call_is_recorded() -> None:
    """With the customer's policy the answer plays its announcement, then records the call
    once; the CDR gets the recording's uuid, path and whole seconds."""
    host = FakeHost()
    call = session(host)
    call.recording_policy = RecordingPolicy(
        customer="acme", mode="stereo", announcement=(Play("n"),)
    )
    task = start(call.answer())
    await until(host, lambda: bool(host.plays))
    assert host.call_recordings == []  # not before the announcement ends
    call.playback_finished(False)
    await asyncio.wait_for(task, 1)
    assert host.plays == [([Play("n")], False)] and host.call_recordings == ["stereo"]
    assert await call.record_call(mode="mixed")  # recorded already: stays as it is
    assert host.call_recordings == ["stereo"]
    assert call.cdr_fields() == {**call.cdr_fields(), "uuid": "u-1"}  # not published yet
    assert "recording_path" not in call.cdr_fields()
    recording = call.recorded.recording  # type: ignore[union-attr]
    recording.done.set_result(  # the writer published the file
        CallRecordingResult(path=recording.path, seconds=5.0, frames=250, dropped=0)
    )
    fields = call.cdr_fields()
    assert (fields["uuid"], fields["recording_path"], fields["recording_seconds"]) == (
        "u-1",
        "recordings/acme/c.wav",
        5,
    )


async def test_a_failed_recording_leaves_the_cdr_without_a_file() -> None:
    """A recording the disk failed gives the CDR its uuid only; stopping is passed on."""
    host = FakeHost()
    call = session(host)
    await call.answer()
    assert await call.record_call(mode="mixed")
    assert call.recorded is not None
    recording = call.recorded.recording
    call.stop_call_recording()
    assert host.call_recordings == ["mixed", "stopped"]
    error = "No space left on device"
    recording.done.set_result(
        CallRecordingResult(path=None, seconds=0.0, frames=250, dropped=0, error=error)
    )
    fields = call.cdr_fields()
    assert fields["uuid"] == "u-1" and "recording_path" not in fields
    assert fields["recording_error"] == error
