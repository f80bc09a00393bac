"""A call the server originates (a campaign's, the admin API's): once answered it runs a number's
dialplan, or is bridged to another number.

Theory of operation
-------------------
``OriginatedCalls.place`` places the call as the customer's own call out
(``customer_calls.call_as_customer``: routed, barred, rated, one channel of the customer's
pool, its own CDR with ``campaign`` the campaign's name, if it is a campaign's).

Once the leg is answered a ``CallSession`` runs the plan of ``plan`` on it, hosted by
``_LegHost``: the session's prompts play on the leg's stream, the leg's digits and playback
ends reach the session (``media_event``, which the call manager asks first; digits by SIP
INFO find the stream through ``stream_of``), and the plan's hang-up ends the leg (BYE). The
far end's BYE ends the plan. The plan's CDR fields (dialplan, steps, digits, survey, queue)
go into the leg's CDR.

The steps that connect the called person to someone see the answered leg as the call:
``_callee`` makes it a ``Call`` (its dialog, stream and our SDP on it; the called person as
the caller, the customer's CDR facts), never put in the registry. A ``queue`` step waits in
the queue like an inbound caller (``calls.queue_calls``: music, announcements, an agent's
phone rung and bridged to the leg); a ``forward`` step places a leg as the customer's call
out (barred, routed and channelled as the customer's) and bridges it to the called person;
a ``conference`` step puts the leg in the room. A ``voicemail`` step's recording keeps
nothing (the called person leaves no message on the customer's own system).

``OriginatedRequest`` says whom to call, as whose call (the customer: its channels, barring
and rating), presenting which number, and which number's dialplan runs when it is answered;
``OriginatedResult`` is how it ended: ``answered`` (the plan ran; ``answers`` are the survey
answers it noted), ``busy`` (486/600), ``no_answer`` (no answer within ``ring_timeout``, or
480), ``barred`` (the customer may not call the number: 403 with no INVITE sent) or
``failed`` (anything else: no route, no channel, an error response).

``OriginatedCalls.connect`` (a ``ConnectRequest``) places the call the same way and, once
answered, forwards the answered leg to ``target`` as a ``forward`` step would (a phone of the
customer's is rung showing the called number; any other number is the customer's call out,
barred, routed and rated), the two bridged until either hangs up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import structlog

from callserver.calls.b2bua import Forwarder
from callserver.calls.call import Call
from callserver.calls.call_recorder import RecordedCall
from callserver.calls.customer_calls import CustomerCall, call_as_customer
from callserver.calls.hosting import SessionHosting
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import CallSession, ForwardOutcome, QueueOutcome, QueueRequest
from callserver.media.events import DtmfReceived, MediaEvent, PlaybackFinished, RtpTimedOut
from callserver.media.prompts import PlaylistItem
from callserver.media.recording_writer import RecordingMode
from callserver.media.settings import RecordingSettings
from callserver.media.stream import MediaStream
from callserver.policy.caller import caller_identity
from callserver.sip.dialog import DialogId

__all__ = [
    "ConnectRequest",
    "Originate",
    "OriginatedCalls",
    "OriginatedRequest",
    "OriginatedResult",
]

log = structlog.get_logger("callserver.calls")


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginatedRequest:
    """Call ``number`` (E.164) as ``customer``'s call from ``caller_id``; run ``plan``'s
    dialplan on the answered call with ``variables``; ``campaign`` names it in the CDR (None:
    no campaign's). ``answered`` is told the survey answers so far once the call is answered
    and again with each new answer (the campaign writes them down before the call ends).
    ``call_id``: the Call-ID of the call (None: a new one)."""

    campaign: str | None = None
    customer: str
    caller_id: str
    number: str
    plan: str
    ring_timeout: float
    variables: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    answered: Callable[[Mapping[str, str]], None] | None = None
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectRequest:
    """Call ``number`` (E.164) as ``customer``'s call from ``caller_id``, ringing
    ``ring_timeout`` seconds; once answered, bridge it to ``target`` (a number: ``inside``
    when it is a phone of the customer's own Centrex, which is shown the called number).
    ``call_id``: the Call-ID of the call (None: a new one)."""

    customer: str
    caller_id: str
    number: str
    target: str
    ring_timeout: float
    inside: bool = False
    call_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginatedResult:
    """How an originated call ended (see the module docstring)."""

    result: Literal["answered", "busy", "no_answer", "failed", "barred"]
    sip_code: int | None = None
    answers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


Originate = Callable[[OriginatedRequest], Awaitable[OriginatedResult]]
"""Place an originated call and return when it is over."""

Router = Callable[[CallSession], Awaitable[None] | None]
"""The run of a session's plan for its called number (``dialplan.routing.Routing.route``)."""


class OriginatedCalls:
    """The calls the server originates; see the module docstring. ``router`` is set by
    app.py (the plans in force); until then every answered call fails. ``hosting`` is the
    inbound calls' host, whose queues and rooms a campaign's call joins."""

    def __init__(
        self, services: CallServices, forwarder: Forwarder, hosting: SessionHosting
    ) -> None:
        self.services = services
        self.forwarder = forwarder
        self.hosting = hosting
        self.router: Router | None = None
        self._hosts: dict[int, _LegHost] = {}  # by the leg's stream id

    def media_event(self, event: MediaEvent) -> bool:
        """Pass a media event of an originated call's stream to its plan; False: not one."""
        host = self._hosts.get(event.stream_id)
        if host is None:
            return False
        host.media_event(event)
        return True

    def stream_of(self, dialog: DialogId) -> MediaStream | None:
        """The stream of the originated call in ``dialog`` (its INFO digits), or None."""
        leg = self.forwarder.calls.leg_by_dialog(dialog)
        if leg is None or leg.stream.stream_id not in self._hosts:
            return None
        return leg.stream

    async def place(self, request: OriginatedRequest) -> OriginatedResult:
        """Call ``request.number`` and run ``request.plan`` on it once answered; return when
        the call is over (see the module docstring)."""
        named = {} if request.campaign is None else {"campaign": request.campaign}
        call = _customer_call(request, tags=named, extra=named)

        async def run(leg: Leg) -> OriginatedResult:
            return await self._run_plan(leg, request)

        ended = await call_as_customer(self.services, self.forwarder, call, run)
        if isinstance(ended, ForwardOutcome):
            return OriginatedResult(result=ended.result, sip_code=ended.sip_code)
        return ended

    async def connect(self, request: ConnectRequest) -> OriginatedResult:
        """Call ``request.number``, bridge it to ``request.target`` once answered; return
        when the call is over (see the module docstring)."""
        call = _customer_call(request, tags={"connect_to": request.target})

        async def bridge(leg: Leg) -> OriginatedResult:
            callee = answered_call(leg, request.customer, request.target)
            work = self.services.loop.create_task(self._forward(callee, request))
            try:
                await _until_either(work, leg.ended)
            finally:
                leg.sdp_version = callee.sdp_version  # a bridge's re-INVITEs moved it on
                self.forwarder.release(leg)
            return OriginatedResult(result="answered", sip_code=200)

        ended = await call_as_customer(self.services, self.forwarder, call, bridge)
        if isinstance(ended, ForwardOutcome):
            return OriginatedResult(result=ended.result, sip_code=ended.sip_code)
        return ended

    async def _forward(self, callee: Call, request: ConnectRequest) -> None:
        outcome = await self.forwarder.forward(
            callee,
            target=request.target,
            route=None,
            ring_timeout=request.ring_timeout,
            caller_id=request.number if request.inside else request.caller_id,
            originating=not request.inside,  # out: the customer's call, barred and rated
        )
        callee.log.info("call.connected", target=request.target, result=outcome.result)

    async def _run_plan(self, leg: Leg, request: OriginatedRequest) -> OriginatedResult:
        services = self.services
        settings = services.live.settings
        host = _LegHost(services, leg, self.hosting, request.customer)
        session = CallSession(
            host,
            call_id=leg.facts.call_id,
            caller=caller_identity(request.number.lstrip("+"), None, None, None),
            called=request.plan,
            language=settings.media.default_language,
            voicemail_dir=settings.data_dir / "voicemail",
            monotonic=services.loop.time,
        )
        session.variables.update(request.variables)
        work = None if self.router is None else self.router(session)
        if work is None:  # no plan for the number (a reload removed it)
            log.warning("call.originated_plan_missing", plan=request.plan)
            leg.end_reason = "error"
            self.forwarder.release(leg)
            return OriginatedResult(result="failed", sip_code=200)
        host.session = session
        self._hosts[leg.stream.stream_id] = host
        if (told := request.answered) is not None:
            told({})
            session.on_note = lambda key, _: told(_answers(session)) if key == "survey" else None
        try:
            await _until_either(services.loop.create_task(_run(work)), leg.ended)
        finally:
            session.ended()
            del self._hosts[leg.stream.stream_id]
            leg.facts.extra.update(session.cdr_fields())
            self.forwarder.release(leg)
        return OriginatedResult(result="answered", sip_code=200, answers=_answers(session))


def _answers(session: CallSession) -> dict[str, str]:
    """The survey answers the session's plan noted so far."""
    survey = session.cdr_fields()["survey"]
    return {str(k): str(v) for k, v in survey.items()} if isinstance(survey, dict) else {}


async def _run(work: Awaitable[None]) -> None:
    await work


async def _until_either(task: asyncio.Task[None], ended: asyncio.Event) -> None:
    """Wait for the plan's ``task`` or the leg's end, whichever is first; cancel the plan."""
    waiting = asyncio.get_running_loop().create_task(ended.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, waiting):
            pending.cancel()
        await asyncio.gather(task, waiting, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        log.error("call.originated_plan_failed", error=repr(task.exception()))


class _LegHost:
    """The ``SessionHost`` of a plan on an originated leg (see the module docstring)."""

    def __init__(
        self, services: CallServices, leg: Leg, hosting: SessionHosting, customer: str
    ) -> None:
        self.services = services
        self.leg = leg
        self.hosting = hosting
        self.customer = customer
        self.session: CallSession | None = None

    def media_event(self, event: MediaEvent) -> None:
        session = self.session
        if session is None:
            return
        if isinstance(event, DtmfReceived):
            session.digit_received(event.digit)
        elif isinstance(event, PlaybackFinished):
            session.playback_finished(event.interrupted)
        elif isinstance(event, RtpTimedOut):
            self.leg.end_reason = "rtp_timeout"
            self.leg.ended.set()

    def answer_session(self, session: CallSession, *, early: bool) -> bool:
        return not early and not self.leg.ended.is_set()  # answered already, by the far end

    def ring_session(self, session: CallSession) -> None:
        return None  # answered already

    def play_session(
        self, session: CallSession, items: Sequence[PlaylistItem], barge_in: bool, loop: bool
    ) -> None:
        stream = self.leg.stream
        payload = self.services.live.prompts.render(items, session.language, stream.codec)
        self.services.media.play(stream, payload, loop=loop and bool(payload), barge_in=barge_in)

    def stop_session_playback(self, session: CallSession) -> None:
        if self.services.media.is_open(self.leg.stream):
            self.services.media.stop_playback(self.leg.stream)

    def record_session(
        self, session: CallSession, path: Path, limits: RecordingSettings, *, keys: bool = False
    ) -> None:
        self.services.loop.call_soon(session.recording_finished, None, 0.0)

    def stop_session_recording(self, session: CallSession) -> None:
        return None  # nothing is recorded on an originated call

    def record_call_session(
        self, session: CallSession, mode: RecordingMode, customer: str | None = None
    ) -> RecordedCall | None:
        return None  # a campaign's call is not recorded (record_call does nothing on it)

    def stop_call_recording_session(self, session: CallSession) -> None:
        return None

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
        if not session.answered:
            await session.answer()  # the called person hears the ringback tone
        callee = self._callee(session)
        try:
            return await self.hosting.forwarder.forward(
                callee,
                target=target,
                route=route,
                ring_timeout=ring_timeout,
                caller_id=caller_id,
                originating=True,  # the customer's call out, whatever the step says
            )
        finally:
            self.leg.sdp_version = callee.sdp_version  # a bridge's re-INVITEs moved it on

    async def conference_session(
        self, session: CallSession, *, room: str, limit: int, tones: bool, time_limit: float | None
    ) -> bool:
        callee = self._callee(session)
        return await self.hosting.conference_call(
            callee, room=room, limit=limit, tones=tones, time_limit=time_limit
        )

    async def queue_session(self, session: CallSession, request: QueueRequest) -> QueueOutcome:
        queues = self.hosting.queues
        if queues is None:  # a server without a call centre has no agent logged in
            return QueueOutcome(result="no_agents")
        callee = self._callee(session)
        try:
            return await queues.wait(callee, session, request)
        finally:
            self.leg.sdp_version = callee.sdp_version

    def _callee(self, session: CallSession) -> Call:
        """The answered leg as the call of the called person (see the module docstring)."""
        callee = answered_call(self.leg, self.customer, session.called)
        callee.session = session
        return callee

    def hang_up_session(
        self, session: CallSession, code: int, cause: int | None, reason: str
    ) -> None:
        self.leg.end_reason = "bye_sent"
        self.leg.ended.set()


def answered_call(leg: Leg, customer: str, called: str) -> Call:
    """The answered ``leg`` as the call of the person it called, to ``called``, paid by
    ``customer`` (see the module docstring): never put in the registry."""
    facts = CallFacts(
        call_id=leg.facts.call_id,
        caller=leg.facts.called,
        called=called,
        offered_at=leg.facts.offered_at,
    )
    facts.customer, facts.originating = customer, True
    facts.caller_e164 = leg.facts.called.lstrip("+")
    return Call(
        call_id=leg.facts.call_id,
        key=None,
        offered_at=leg.facts.offered_at,
        dialog_id=leg.dialog_id,
        answered_at=leg.facts.answered_at,
        stream=leg.stream,
        facts=facts,
        sdp_session=leg.stream.stream_id,
        sdp_version=leg.sdp_version,
        log=log.bind(call_id=leg.facts.call_id),
        phase=CallPhase.ANSWERED,
    )


def _customer_call(
    request: OriginatedRequest | ConnectRequest,
    *,
    tags: dict[str, str],
    extra: dict[str, str] | None = None,
) -> CustomerCall:
    """The customer's own call out that ``request`` asks for: ``extra`` its CDR fields,
    ``tags`` its log's."""
    return CustomerCall(
        customer=request.customer,
        caller_id=request.caller_id,
        number=request.number,
        ring_timeout=request.ring_timeout,
        call_id=request.call_id,
        extra=extra or {},
        tags=tags,
    )
