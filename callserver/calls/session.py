"""A call as a dialplan drives it: answer, early media, prompts, digits, recording, hang-up.

``CallSession`` is what ``dialplan.verbs.base.CallControl`` describes. It turns the verbs'
awaits into the calls layer's operations (``session_host.SessionHost``, which
``hosting.SessionHosting`` implements) and the media engine's events back into results:

- ``play`` resolves when the engine reports ``PlaybackFinished``; with barge-in a digit stops
  the prompt and stays queued for the next ``collect`` (type-ahead, as IVRs allow); a looped
  playlist ends only by such a digit or with the call;
- ``ring`` sends 180 Ringing, ``pause`` waits, ``since_answer`` is the time since the 200 OK;
- ``collect`` takes queued digits first, then waits ``first_timeout`` for the first digit and
  ``digit_timeout`` between digits;
- ``record`` writes a voicemail WAV under ``data-dir/voicemail/<mailbox>/`` with a JSON file
  of its metadata beside it (``message_metadata``), both fsync'd before the path is reported;
  a caller who hangs up mid-message leaves it too (``ended`` gets what closing the stream
  kept); one of ``stop_keys`` ends it, the key's tone left out and the key not queued;
- ``hangup`` asks the host once; later calls do nothing.

Every await is cancel-safe: a caller's BYE cancels the dialplan task and the session stops
its prompt on the way out. Digits, steps and results are noted for the CDR.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from callserver.calls.call_recorder import RecordedCall, RecordingPolicy
from callserver.calls.message_metadata import write_metadata
from callserver.calls.session_cdr import dialplan_fields
from callserver.calls.session_host import (
    Collected,
    ForwardOutcome,
    QueueOutcome,
    QueueRequest,
    Recorded,
    SessionHost,
)
from callserver.calls.session_signals import SessionSignals
from callserver.media.prompts import PlaylistItem
from callserver.media.recording import RecordingResult
from callserver.media.recording_writer import RecordingMode
from callserver.media.settings import RecordingSettings
from callserver.policy.caller import CallerId
from callserver.sip.events import RequestReceived

__all__ = [
    "CallSession",
    "Collected",
    "ForwardOutcome",
    "QueueOutcome",
    "QueueRequest",
    "Recorded",
    "SessionHost",
]


class CallSession(SessionSignals):
    """One call's dialplan-facing state; see the module docstring.

    Slotted, and its waits are futures made when something waits (most calls never collect
    digits nor wait for an ACK): a session is held for the whole of every call. The waits and
    the events that only resolve them are ``session_signals.SessionSignals``'s.
    """

    __slots__ = (
        "_answered",
        "_answered_at",
        "_clock",
        "_early",
        "_monotonic",
        "call_id",
        "called",
        "caller",
        "clir",
        "dialplan",
        "dialplan_version",
        "host",
        "invite",
        "language",
        "max_duration",
        "notes",
        "on_note",
        "originating",
        "recorded",
        "recording_policy",
        "subscriber",
        "variables",
        "voicemail_dir",
    )

    def __init__(
        self,
        host: SessionHost[CallSession],
        *,
        call_id: str,
        caller: CallerId,
        called: str,
        language: str,
        voicemail_dir: Path,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.call_id = call_id
        self.caller = caller
        self.called = called
        self.language = language
        self.variables: dict[str, str] = {"caller": caller.e164 or caller.raw, "called": called}
        self.notes: dict[str, list[object]] = {}
        self.on_note: Callable[[str, object], None] | None = None  # told each fact noted
        self.voicemail_dir = voicemail_dir
        self.dialplan: str | None = None  # the plan's file and version, set by the router
        self.dialplan_version: str | None = None
        self.max_duration: float | None = None  # the plan's cap; it may only shorten the class's
        self.originating = False  # from a customer (a Centrex phone, a PBX trunk): may go out
        self.subscriber: str | None = None  # a Centrex phone's call: its number
        self.clir: bool | None = None  # this call's caller ID withheld or shown (#31#, *31#)
        self.invite: RequestReceived | None = None  # while the routing runs (MCID reads it)
        self.recording_policy: RecordingPolicy | None = None  # the customer records its calls
        self.recorded: RecordedCall | None = None  # the whole call's recording, once started
        self._clock = clock
        self._monotonic = monotonic
        self._answered = False
        self._answered_at: float | None = None  # ``monotonic`` when the 200 OK was sent
        self._early = False
        self._ended = False
        self._digits = ""  # received, not yet collected (type-ahead)
        self._digit_waiter: asyncio.Future[None] | None = None  # while collect waits
        self._media_waiter: asyncio.Future[None] | None = None  # until the ACK's answer
        self._playback: asyncio.Future[bool] | None = None
        self._recording: asyncio.Future[Recorded] | None = None
        self._stop_keys = ""  # the keys that end the recording going on

    @property
    def answered(self) -> bool:
        """True after the 200 OK."""
        return self._answered

    @property
    def early_media(self) -> bool:
        """True while a 183 with SDP carries audio before any answer."""
        return self._early and not self._answered

    def now(self) -> datetime:
        """The current time, UTC and aware (for business hours)."""
        return self._clock()

    def since_answer(self) -> float | None:
        """Seconds since the 200 OK was sent; None before it."""
        return None if self._answered_at is None else self._monotonic() - self._answered_at

    def note(self, key: str, value: object) -> None:
        """Keep a fact for the CDR under ``key`` (steps, digits, survey, voicemail, ...)."""
        self.notes.setdefault(key, []).append(value)
        if self.on_note is not None:
            self.on_note(key, value)

    def cdr_fields(self) -> dict[str, object]:
        """What the call's CDR says about the dialplan part (``cdr.record.CdrRecord`` names);
        a field of a service the call did not use is left to the record's default."""
        return dialplan_fields(
            self.notes,
            dialplan=self.dialplan,
            dialplan_version=self.dialplan_version,
            language=self.language,
            recorded=self.recorded,
        )

    async def answer(self, *, early: bool = False) -> None:
        """Answer (200 OK) or start early media (183 with SDP).

        After a late offer (an INVITE without SDP) the 200 carries our offer and media can
        start only once the ACK brings the answer (RFC 3261 §13.2.1): this waits for it.
        """
        if self._ended or self._answered or (early and self._early):
            return
        if self.host.answer_session(self, early=early):
            self._early = self._early or early
            self._answered = not early
            if not early:
                self._answered_at = self._monotonic()
            if self._media_waiter is not None:  # a late offer: the ACK brings the answer
                await self._media_waiter
            policy = self.recording_policy
            if policy is not None and not early:
                await self.record_call(mode=policy.mode, announcement=policy.announcement)

    async def record_call(
        self,
        *,
        mode: RecordingMode,
        announcement: Sequence[PlaylistItem] = (),
        customer: str | None = None,
    ) -> bool:
        """Record the whole call from now on (``calls.call_recorder``), after ``announcement``
        is played to the caller, filed under ``customer`` (None: the call's); a call already
        recorded stays as it is. False: the call ended first."""
        if announcement and self.recorded is None:
            await self.play(announcement, barge_in=False)
        if not self._ended and self.recorded is None:
            self.recorded = self.host.record_call_session(self, mode, customer)
        return self.recorded is not None

    def stop_call_recording(self) -> None:
        """End the whole call's recording; its CDR still names the file, and the call is not
        recorded again."""
        if self.recorded is not None:
            self.host.stop_call_recording_session(self)

    async def ring(self) -> None:
        """180 Ringing, before any answer or early media (RFC 3261 §21.1.2)."""
        if not (self._ended or self._answered or self._early):
            self.host.ring_session(self)

    async def pause(self, seconds: float) -> None:
        """Wait ``seconds``; whatever plays goes on meanwhile."""
        await asyncio.sleep(seconds)

    async def play(
        self, items: Sequence[PlaylistItem], *, barge_in: bool, loop: bool = False
    ) -> str | None:
        """Play ``items`` (over again with ``loop``); with ``barge_in`` a digit (already typed
        or new) stops them."""
        if barge_in and self._digits:
            return self._digits[0]
        if not (self._answered or self._early):
            await self.answer()
        if self._ended or not items:
            return None
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._playback = future
        self.host.play_session(self, items, barge_in, loop)
        try:
            await future
        finally:
            # Cancelling the task cancels the awaited future too: the prompt is still playing.
            if future.cancelled() or not future.done():
                self.host.stop_session_playback(self)
            self._playback = None
        return self._digits[0] if barge_in and self._digits else None

    async def collect(
        self,
        *,
        max_digits: int,
        first_timeout: float,
        digit_timeout: float,
        terminator: str | None,
        complete: Callable[[str], bool] | None = None,
    ) -> Collected:
        """Digits until ``max_digits``, the terminator, a timeout or a complete entry."""
        entry = ""
        timeout = first_timeout
        while len(entry) < max_digits:
            digit = await self._next_digit(timeout)
            if digit is None:
                return Collected(digits=entry, reason="timeout" if entry else "no_input")
            if digit == terminator:
                return Collected(digits=entry, reason="terminator")
            entry += digit
            if complete is not None and complete(entry):
                break
            timeout = digit_timeout
        return Collected(digits=entry, reason="max_digits")

    async def record(
        self,
        *,
        mailbox: str,
        max_length: float,
        silence_end: float,
        min_length: float,
        stop_keys: str = "",
    ) -> Recorded:
        """Record a voicemail message into ``mailbox``; its JSON metadata goes beside it.
        One of ``stop_keys`` ends it (the key is not kept for ``collect``)."""
        started = self.now()
        folder = self.voicemail_dir / mailbox
        name = f"{started:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        limits = RecordingSettings(
            max_seconds=max_length, min_seconds=min_length, silence_seconds=max(silence_end, 0.1)
        )
        future: asyncio.Future[Recorded] = asyncio.get_running_loop().create_future()
        self._recording, self._stop_keys = future, stop_keys
        self._digits = self._digits.lstrip(stop_keys) if stop_keys else self._digits
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        self.host.record_session(self, folder / f"{name}.wav", limits, keys=bool(stop_keys))
        try:
            recorded = await future
        except asyncio.CancelledError:
            # The caller hung up mid-message: ``ended`` got what closing the stream kept and
            # noted it for the CDR; its metadata still goes beside it.
            if future.done() and not future.cancelled():
                await self._save_metadata(future.result(), started)
            raise
        finally:
            self._recording, self._stop_keys = None, ""
        await self._save_metadata(recorded, started)
        return recorded

    async def _save_metadata(self, recorded: Recorded, started: datetime) -> None:
        if recorded.path is not None:
            path = Path(recorded.path)
            await asyncio.to_thread(
                write_metadata,
                path,
                started,
                recorded,
                caller=self.caller.e164 or self.caller.raw,
                called=self.called,
                language=self.language,
                call_id=self.call_id,
            )

    async def forward(
        self,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
        originating: bool = False,
    ) -> ForwardOutcome:
        """Forward the call to ``target`` and bridge it; returns when that leg ends or fails.
        ``originating``: the caller's own call out (``calls.originating``), not a forward."""
        if self._ended:
            return ForwardOutcome(result="failed")
        return await self.host.forward_session(
            self,
            target=target,
            route=route,
            ring_timeout=ring_timeout,
            caller_id=caller_id,
            originating=originating,
        )

    async def conference(
        self, *, room: str, limit: int, tones: bool, time_limit: float | None = None
    ) -> bool:
        """Stay in conference ``room`` until the call ends or ``time_limit``; False: full."""
        if self._ended:
            return True
        return await self.host.conference_session(
            self, room=room, limit=limit, tones=tones, time_limit=time_limit
        )

    async def queue(self, request: QueueRequest) -> QueueOutcome:
        """Wait in a call centre queue (music, announcements, the leave key) until an agent's
        call ends or the wait ends otherwise; noted for the CDR (queue, wait, agent)."""
        if self._ended:
            return QueueOutcome(result="abandoned")
        outcome = await self.host.queue_session(self, request)
        self.note("queue", (request.config.name, outcome))
        return outcome

    async def hangup(self, *, code: int | None, cause: int | None, reason: str) -> None:
        """End the call once (BYE, or ``code`` before the answer: default 480)."""
        if self._ended:
            return
        self._ended = True
        self.host.hang_up_session(self, code or 480, cause, reason)

    # Events from the calls layer -------------------------------------------------------

    def digit_received(self, digit: str) -> None:
        """A DTMF digit arrived (any source); one that ends the recording going on does."""
        recording = self._recording
        if digit in self._stop_keys and recording is not None and not recording.done():
            self.host.stop_session_recording(self)
            return
        self._digits += digit
        waiter = self._digit_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def ended(self, recording: RecordingResult | None = None) -> None:
        """The call is over (either side): nothing more is sent. ``recording`` is what closing
        the stream kept of a message being recorded: it goes to the CDR all the same."""
        self._ended = True
        self._release_media()
        pending = self._recording
        if recording is None or pending is None or pending.done():
            return
        path = None if recording.path is None else str(recording.path)
        pending.set_result(Recorded(path=path, duration=recording.duration))
        if path is not None:
            self.note("voicemail", path)
