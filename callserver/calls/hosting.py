"""The calls layer's side of a dialplan session: the ``SessionHost`` of every session.

A call whose number has a dialplan gets a ``CallSession`` and a task that runs the plan
(``router``, wired in app.py). ``SessionHosting`` turns the session's requests into SIP and media
operations — 200 OK, 183 with SDP (early media, RFC 3960), playback, recording, BYE or a
final error with ``Reason: Q.850`` (RFC 3326) — and routes the media engine's events back to
the session.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from callserver.calls.admission import Rejected
from callserver.calls.b2bua import Forwarder
from callserver.calls.call import Call
from callserver.calls.call_recorder import RecordedCall, RecordingPolicy, recording_file
from callserver.calls.conference import Conferences
from callserver.calls.forwarding import Forwarding
from callserver.calls.negotiation import Negotiation
from callserver.calls.phase import CallPhase
from callserver.calls.queue_calls import QueueCalls
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallOperations, CallServices
from callserver.calls.session import CallSession, ForwardOutcome, QueueOutcome, QueueRequest
from callserver.config.settings import Settings
from callserver.media.engine import PortsExhausted
from callserver.media.events import DtmfReceived, MediaEvent, PlaybackFinished, RecordingFinished
from callserver.media.prompts import Play, PlaylistItem
from callserver.media.recording import RecordingResult
from callserver.media.recording_writer import RecordingMode
from callserver.media.settings import RecordingSettings
from callserver.policy.caller import CallerId, caller_identity
from callserver.sip.events import RequestReceived

__all__ = ["Router", "SessionHosting"]

Router = Callable[[CallSession], Awaitable[None] | None]
"""Given a new session, the coroutine that runs its dialplan, or None (no plan: refused)."""


class SessionHosting:
    """The ``SessionHost`` of every call a dialplan runs; see the module docstring."""

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        *,
        negotiation: Negotiation,
        forwarder: Forwarder,
        operations: CallOperations,
    ) -> None:
        self.services = services
        self.calls = calls
        self.negotiation = negotiation
        self.forwarder = forwarder
        self.operations = operations
        self.router: Router | None = None
        self.forwarding: Forwarding | None = None  # subscribers' services in front of forwarder
        self.conferences = Conferences(services.media)  # the meet-me rooms
        self.queues: QueueCalls | None = None  # the call centre's queues (its driver's)
        self._voicemail: tuple[Settings, Path] | None = None

    def start_session(
        self, call: Call, caller: CallerId, now: float, invite: RequestReceived | None = None
    ) -> bool:
        """Run the call's dialplan if it has one; False when it has none."""
        if self.router is None or call.facts is None:
            return False
        settings = self.services.live.settings
        if call.facts.subscriber is not None:  # a phone is who it authenticated as
            caller = caller_identity(call.facts.subscriber, None, None, None)
        session = CallSession(
            self,
            call_id=call.call_id,
            caller=caller,
            called=call.facts.called,
            language=settings.media.default_language,
            voicemail_dir=self._voicemail_dir(settings),
            monotonic=self.services.loop.time,  # the clock the plan's pauses run on
        )
        session.originating = call.facts.customer is not None
        recorded = self.services.admission.table.recording_of(call.facts.called)
        if recorded is not None:
            session.recording_policy = RecordingPolicy.of(*recorded)
        session.subscriber = call.facts.subscriber
        session.invite = invite  # for the routing only: its plan's work is made at once
        work = self.router(session)
        session.invite = None  # the parsed INVITE is not kept for the call's life
        if work is None:
            return False
        self.calls.hosted(call, session)
        call.task = self.services.loop.create_task(self._run_session(call, work))
        return True

    def _voicemail_dir(self, settings: Settings) -> Path:
        """``data_dir/voicemail``, joined once per settings (a reload brings new ones): a
        ``Path`` join per call was a quarter of what setting a session up costs."""
        cached = self._voicemail
        if cached is None or cached[0] is not settings:
            cached = self._voicemail = (settings, settings.data_dir / "voicemail")
        return cached[1]

    async def _run_session(self, call: Call, work: Awaitable[None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            pass  # the call ended under the plan (caller BYE, CANCEL, shutdown)
        except Exception:
            call.log.exception("call.session_failed")
            if call.session is not None:
                await call.session.hangup(code=500, cause=41, reason="error")

    def announce_refusal(
        self, call: Call, event: RequestReceived, facts: CallFacts, refusal: Rejected, now: float
    ) -> bool:
        """Play the over-limit announcement as early media (183), then refuse; False when
        it cannot be played (no RTP port, no usable offer): refuse at once."""
        services = self.services
        try:
            call.stream = services.media.open_stream()
        except (PortsExhausted, OSError):
            return False
        body = event.request.body  # a late offer gets no early media: refused at once
        answer = self.negotiation.answer(call, body) if body else None
        if answer is None:
            services.media.close_stream(call.stream)
            call.stream = None
            return False
        call.facts, call.refusal, call.cause = facts, refusal, refusal.reason
        self.calls.add(call)
        services.media.configure(call.stream, answer[1])
        call.enter(CallPhase.EARLY)
        services.endpoint.respond(call.key, 183, now, body=answer[0])
        language = services.live.settings.media.default_language
        assert refusal.announcement is not None
        prompts = services.live.prompts
        payload = prompts.render([Play(refusal.announcement)], language, call.stream.codec)
        services.media.play(call.stream, payload)
        facts.extra["language"] = language
        call.log.info("call.refusal_announced", reason=refusal.reason, prompt=refusal.announcement)
        return True

    def _finish_refusal(self, call: Call) -> None:
        refusal = call.refusal
        services = self.services
        if refusal is None or not services.endpoint.is_pending_invite(call.key):
            return
        services.endpoint.respond(call.key, refusal.status, services.now(), headers=refusal.headers)
        self.operations.end_call(call, refusal.reason, sip_code=refusal.status)
        services.wake()

    # SessionHost ------------------------------------------------------------------------

    def answer_session(self, session: CallSession, *, early: bool) -> bool:
        """200 OK, or 183 Session Progress with the SDP answer (early media)."""
        call = self.calls.by_session(session)
        services = self.services
        if call is None or not services.endpoint.is_pending_invite(call.key):
            return False
        now = services.now()
        if early and call.answer is None:
            # A late offer: our offer would need a reliable 183 (RFC 3262), which we do not send.
            call.log.info("call.early_media_unavailable", reason="late_offer")
            return False
        if early:
            assert call.stream is not None and call.answer is not None
            services.media.configure(call.stream, call.answer[1])
            call.enter(CallPhase.EARLY)
            services.endpoint.respond(call.key, 183, now, body=call.answer[0])
            call.log.info("call.early_media", rtp_port=call.stream.port)
        else:
            if call.offer is not None:
                session.media_pending()  # until the ACK brings the answer to our offer
            self.operations.send_answer(call, now)
        services.wake()
        return True

    def ring_session(self, session: CallSession) -> None:
        """180 Ringing while the INVITE is pending (RFC 3261 §21.1.2)."""
        call = self.calls.by_session(session)
        services = self.services
        if call is not None and services.endpoint.is_pending_invite(call.key):
            call.enter(CallPhase.RINGING)
            services.endpoint.respond(call.key, 180, services.now())
            services.wake()

    def play_session(
        self, session: CallSession, items: Sequence[PlaylistItem], barge_in: bool, loop: bool
    ) -> None:
        """Render the playlist in the session's language and codec and play it (repeated
        with ``loop``; an empty one is never repeated)."""
        call = self.calls.by_session(session)
        if call is None or call.stream is None:
            self.services.loop.call_soon(session.playback_finished, False)
            return
        payload = self.services.live.prompts.render(items, session.language, call.stream.codec)
        repeat = loop and bool(payload)
        self.services.media.play(call.stream, payload, loop=repeat, barge_in=barge_in)

    def stop_session_playback(self, session: CallSession) -> None:
        """Stop the session's playback (its task was cancelled)."""
        call = self.calls.by_session(session)
        if call is not None and call.stream is not None:
            self.services.media.stop_playback(call.stream)

    def record_session(
        self, session: CallSession, path: Path, limits: RecordingSettings, *, keys: bool = False
    ) -> None:
        """Record the caller to ``path`` with the step's limits (``keys``: a key may end it)."""
        call = self.calls.by_session(session)
        if call is None or call.stream is None:
            self.services.loop.call_soon(session.recording_finished, None, 0.0)
            return
        silence = self.services.live.settings.media.recording.silence_dbfs  # the operator's
        limits = limits.model_copy(update={"silence_dbfs": silence})
        self.services.media.record(call.stream, path, limits=limits, keys=keys)

    def stop_session_recording(self, session: CallSession) -> None:
        """End the session's recording: its last key ended it (``RecordingFinished`` follows)."""
        call = self.calls.by_session(session)
        if call is not None and call.stream is not None:
            self.services.media.stop_recording(call.stream, key=True)

    def record_call_session(
        self, session: CallSession, mode: RecordingMode, customer: str | None = None
    ) -> RecordedCall | None:
        """Record the session's whole call from now on, named for its CDR (``call_recorder``)
        and filed under ``customer`` (None: the recording policy's, else the call's)."""
        call = self.calls.by_session(session)
        media = self.services.media
        if call is None or call.stream is None or not media.is_open(call.stream):
            return None
        policy = session.recording_policy
        if customer is None:
            customer = policy.customer if policy else call.facts.customer if call.facts else None
        data_dir = self.services.live.settings.data_dir
        name = str(uuid.uuid4())
        path = recording_file(data_dir, customer, session.now(), name)
        recording = media.record_call(call.stream, path, mode)
        return RecordedCall(uuid=name, path=str(path.relative_to(data_dir)), recording=recording)

    def stop_call_recording_session(self, session: CallSession) -> None:
        """End the session's whole-call recording (its file is published off the loop)."""
        call = self.calls.by_session(session)
        if call is not None and call.stream is not None:
            self.services.media.stop_call_recording(call.stream)

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
        """Forward the session's call (``calls.b2bua``)."""
        call = self.calls.by_session(session)
        if call is None:
            return ForwardOutcome(result="failed")
        if call.facts is not None and session.clir is not None:
            # The phone's #31# / *31# for this call: the number after it is what it dialled,
            # which the call's caps, rating and CDR go by.
            call.facts.clir, call.facts.called = session.clir, session.called
        place = self.forwarder.forward if self.forwarding is None else self.forwarding.forward
        outcome = await place(
            call,
            target=target,
            route=route,
            ring_timeout=ring_timeout,
            caller_id=caller_id,
            originating=originating,
        )
        return await self.forwarder.transfers.plans.follow(call, outcome)  # a transfer's plan

    async def conference_session(
        self, session: CallSession, *, room: str, limit: int, tones: bool, time_limit: float | None
    ) -> bool:
        """Keep the session's call in ``room`` until it ends or ``time_limit`` s have passed;
        False at once when the room is full (``calls.conference``)."""
        call = self.calls.by_session(session)
        if call is None:
            return True  # the call is gone: nothing to join, nothing to refuse
        return await self.conference_call(
            call, room=room, limit=limit, tones=tones, time_limit=time_limit
        )

    async def conference_call(
        self, call: Call, *, room: str, limit: int, tones: bool, time_limit: float | None
    ) -> bool:
        """Keep ``call`` in ``room`` as ``conference_session`` does (a campaign's call too:
        ``calls.originated``)."""
        if call.stream is None:
            return True
        joined = self.conferences.join(
            room, call_id=call.call_id, stream=call.stream, limit=limit, tones=tones
        )
        if not joined:
            return False
        try:
            async with asyncio.timeout(time_limit):
                await self.services.loop.create_future()  # until the call ends (cancelled)
        except TimeoutError:
            pass  # the step's time is up: the plan goes on
        finally:
            self.conferences.leave(room, call.call_id, tones=tones)
        return True

    async def queue_session(self, session: CallSession, request: QueueRequest) -> QueueOutcome:
        """Wait in a call centre queue (``calls.queue_calls``); a server without a call
        centre has no agent logged in."""
        call = self.calls.by_session(session)
        if call is None:
            return QueueOutcome(result="abandoned")
        if self.queues is None:
            return QueueOutcome(result="no_agents")
        return await self.queues.wait(call, session, request)

    def hang_up_session(
        self, session: CallSession, code: int, cause: int | None, reason: str
    ) -> None:
        """BYE an answered call; answer a pending INVITE with ``code`` and the Q.850 cause."""
        call = self.calls.by_session(session)
        if call is None:
            return
        if reason != "normal":
            call.cause = reason
        services = self.services
        now = services.now()
        if call.phase.in_dialog:  # answered: BYE (RFC 3261 §15)
            assert call.dialog_id is not None
            call.enter(CallPhase.ENDING)
            services.endpoint.bye(call.dialog_id, now)
        elif services.endpoint.is_pending_invite(call.key):  # ringing or early media
            headers = _reason(cause) if cause is not None else ()
            services.endpoint.respond(call.key, code, now, headers=headers)
            self.operations.end_call(call, reason, sip_code=code)
        services.wake()

    def session_event(self, call: Call, event: MediaEvent) -> None:
        """Pass a media event to the call's session (or end an announced refusal)."""
        if call.refusal is not None and isinstance(event, PlaybackFinished):
            self._finish_refusal(call)
            return
        session = call.session
        if session is None:
            return
        if isinstance(event, DtmfReceived):
            session.digit_received(event.digit)
        elif isinstance(event, PlaybackFinished):
            session.playback_finished(event.interrupted)
        elif isinstance(event, RecordingFinished):
            session.recording_finished(event.path, event.duration)

    def close_session(self, call: Call, recording: RecordingResult | None) -> dict[str, Any]:
        """Stop the call's plan; the CDR fields its session gathered. ``recording`` is what
        closing the call's stream kept of a message being recorded."""
        if call.session is not None:
            # Before the cancel: cancelling the task would cancel the recording it awaits.
            call.session.ended(recording)
        if call.task is not None and not call.task.done():
            call.task.cancel()
        self.forwarder.transfers.plans.discard(call)
        return {} if call.session is None else call.session.cdr_fields()


def _reason(cause: int) -> tuple[tuple[str, str], ...]:
    return (("Reason", f"Q.850;cause={cause}"),)
