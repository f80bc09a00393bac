"""Calls: what the server does with each INVITE the SIP endpoint delivers.

Every admitted INVITE (``calls.intake`` takes each new one in) gets an RTP port pair on the
media engine and its SDP offer answered (operator codec order, telephone-event when offered; an
INVITE without one gets our offer in the 2xx and its answer comes in the ACK:
``calls.negotiation``); then the called number's dialplan (its own, else
``dialplans/default.yaml``) runs the call (``calls.hosting``). A number with no plan at all is
refused with 404 and ``Reason: Q.850;cause=3`` (no route to destination, RFC 3398; CDR end
reason ``no_route``). Digits are logged as ``call.dtmf`` whichever way they come (RFC 4733, SIP
INFO, in-band). The server hangs up with BYE when no RTP arrives for ``media.rtp_timeout``
seconds. Re-INVITEs (hold/unhold, session refresh) and UPDATEs with an offer get the matching
SDP answer and re-direct the stream, a re-INVITE without SDP our offer, re-directed by the
ACK's answer; INFO gets 200. In a forwarded call both legs' requests are the bridge's
(``calls.bridge``). While draining (SIGTERM) new INVITEs get 503 with Retry-After; so does an
INVITE when every RTP port is in use. An INVITE overload control refused (``policy.overload``)
was answered by the SIP layer already: it only gets its CDR here. REGISTERs, and the outcomes
of the OPTIONS that qualify registered phones, go to the registrar's adapter
(``calls.registration``); SUBSCRIBEs and the outcomes of our NOTIFYs to the notifier
(``calls.subscriptions``).

Every call is one ``Call`` record from INVITE to teardown, found through the ``Calls`` registry
(``calls.registry``) and in one ``CallPhase`` (``calls.phase``), and removed from the registry
at once on every path: caller BYE, our BYE, CANCEL, ACK timeout (end reason ``ack_timeout``),
session expiry, transaction timeout, shutdown. The parts of the layer (intake, negotiation,
forwarding, caps, session hosting, screening) share ``CallServices`` and get the manager's own
operations they need as callables (``calls.services``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import structlog

from callserver.calls.admission import Admission
from callserver.calls.b2bua import Forwarder
from callserver.calls.call import Call, dialog_of, refused_facts
from callserver.calls.duration import DurationCaps
from callserver.calls.hosting import SessionHosting
from callserver.calls.intake import Intake
from callserver.calls.negotiation import Negotiation
from callserver.calls.originated import OriginatedCalls
from callserver.calls.phase import CallPhase
from callserver.calls.registration import Registration
from callserver.calls.registry import Calls
from callserver.calls.reporting import CdrReporter
from callserver.calls.screening import Screening
from callserver.calls.services import CallOperations, CallServices, Live, Provisioned
from callserver.calls.subscriptions import Subscriptions
from callserver.config.settings import Settings
from callserver.config.tariffs import Tariffs
from callserver.media.dtmf_info import parse_dtmf_info
from callserver.media.engine import MediaEngine
from callserver.media.events import DtmfReceived, MediaEvent, RtpTimedOut
from callserver.media.hold_music import Music
from callserver.media.prompts import PromptStore
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    InviteCancelled,
    InviteRefused,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
)
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Call", "CallManager"]

log = structlog.get_logger("callserver.calls")
_OUTCOMES = (ResponseReceived, TransactionTimedOut)  # what a request we sent comes back as


class CallManager:
    """Answers INVITEs (each with its dialplan) and tracks every call until it ends."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        settings: Settings,
        *,
        media_host: str,
        media: MediaEngine,
        prompts: PromptStore,
        admission: Admission,
        tariffs: Tariffs,
        reporter: CdrReporter,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
    ) -> None:
        self.endpoint = endpoint
        self.media = media
        self.admission = admission
        self.reporter = reporter
        self.loop = loop
        self.wake = wake
        self.live = Provisioned(settings=settings, tariffs=tariffs, prompts=prompts)
        self.services = services = CallServices(
            endpoint=endpoint,
            media=media,
            media_host=media_host,
            admission=admission,
            reporter=reporter,
            loop=loop,
            wake=wake,
            live=self.live,
        )
        self.calls = calls = Calls()  # every call and forwarded leg, by each of its keys
        self.idle = calls.idle  # set while no call is in progress
        operations = CallOperations(
            refuse=self.refuse, end_call=self.end_call, send_answer=self.send_answer
        )
        self.negotiation = Negotiation(services)  # SDP offers and answers, late offers
        self.forwarder = Forwarder(services, calls)  # the legs forward steps place (B2BUA)
        self.caps = DurationCaps(services)  # max duration by number class, and its warning
        self.host = SessionHosting(  # dialplan sessions
            services,
            calls,
            negotiation=self.negotiation,
            forwarder=self.forwarder,
            operations=operations,
        )
        self.originated = OriginatedCalls(services, self.forwarder, self.host)  # campaigns'
        self.screening = Screening(services, refuse=self.refuse)  # admission, held answers
        self.intake = intake = Intake(  # initial INVITEs, up to their plan
            services,
            calls,
            negotiation=self.negotiation,
            host=self.host,
            screening=self.screening,
            operations=operations,
        )
        self._on_invite = intake.on_invite  # the intake's own method, without a hop through here
        self.registration: Registration | None = None  # REGISTER, when the server is a registrar
        self.subscriptions: Subscriptions | None = None  # SUBSCRIBE (voicemail MWI)
        self._byes: set[TransactionKey | None] = set()
        self.byes_answered = asyncio.Event()
        self.rtp_timeouts = 0  # calls whose RTP stopped for media.rtp_timeout
        self.dtmf_by_source: dict[str, int] = {}  # digits received: rfc4733, info, inband
        self.byes_answered.set()

    # The operator's files in force: a reload sets new ones for new calls.
    settings: Live[Settings] = Live()
    tariffs: Live[Tariffs] = Live()
    prompts: Live[PromptStore] = Live()
    music: Live[Music | None] = Live()

    @property
    def draining(self) -> bool:
        """True from SIGTERM on: new INVITEs get 503 with Retry-After (``calls.intake``)."""
        return self.intake.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.intake.draining = value

    @property
    def calls_total(self) -> int:
        """Calls taken in since start."""
        return self.calls.total

    def handle_event(self, event: SipEvent, now: float) -> None:
        """React to one endpoint event (see the module docstring)."""
        if self.forwarder.handle_event(event):
            return
        if isinstance(event, _OUTCOMES):
            if self.registration is not None and self.registration.handle_event(event, now):
                return  # the outcome of a qualify OPTIONS
            if self.subscriptions is not None and self.subscriptions.handle_event(event, now):
                return  # the outcome of a NOTIFY
        if isinstance(event, RequestReceived):
            self._on_request(event, now)
        elif isinstance(event, DialogConfirmed):
            call = self.calls.by_dialog(event.dialog_id)
            if call is not None:
                self._confirmed(call, event)
        elif isinstance(event, DialogTerminated):
            call = self.calls.by_dialog(event.dialog_id)
            if call is not None:
                self.end_call(call, event.reason)
        elif isinstance(event, InviteCancelled):
            call = self.calls.by_key(event.key)
            if call is not None:
                self.end_call(call, "cancelled")
            elif self.intake.shared is not None:  # waiting for the cluster's limits
                self.intake.shared.cancelled(event.key)
        elif isinstance(event, ResponseReceived):
            if event.response.status >= 200:
                self._bye_done(event.key)
        elif isinstance(event, TransactionTimedOut):
            self._bye_done(event.key)
            call = self.calls.by_key(event.key)
            if call is not None and call.answered_at is None:  # no ACK came
                self.end_call(call, "timeout")
        elif isinstance(event, InviteRefused):  # overload control's 503: its CDR only
            self.reporter.ended(refused_facts(event), "overload", sip_code=503)
        elif isinstance(event, MessageDropped):
            log.info("sip.message_dropped", reason=event.reason, peer=event.peer.host)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if request.method == "INVITE" and request.to().tag is None:
            self._on_invite(event, now)
        elif request.method == "INVITE" or (request.method == "UPDATE" and request.body):
            self._on_reinvite(event, now)  # an UPDATE without an offer refreshes (RFC 3311)
        elif request.method == "SUBSCRIBE" and self.subscriptions is not None:
            self.subscriptions.handle(event, now)
        elif request.method == "SUBSCRIBE" and event.key is not None:
            self.endpoint.respond(event.key, 489, now)  # no event package (RFC 6665 §8.3.2)
        elif request.method == "REGISTER" and request.to().tag is None:
            if self.registration is not None:
                self.registration.handle(event, now)
            elif event.key is not None:
                self.endpoint.respond(event.key, 405, now)
        elif event.key is not None:
            if request.method == "INFO":
                self._on_info(event)
            self.endpoint.respond(event.key, 200, now)

    def refuse(
        self,
        call: Call,
        status: int,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        reason: str = "rejected",
    ) -> None:
        """Answer an admitted INVITE with an error; its channels go back, its CDR is written."""
        self._release(call)
        self.endpoint.respond(call.key, status, now, headers=headers)
        if call.facts is not None:
            self.reporter.ended(call.facts, reason, sip_code=status)

    def _release(self, call: Call) -> None:
        if call.admitted is not None:
            self.admission.release(call.admitted.grant)
            call.admitted = None

    def send_answer(self, call: Call, now: float) -> bool:
        """200 OK with our SDP answer, or our offer for a late offer; False (and the call
        ended) when it cannot be sent."""
        assert call.stream is not None
        if call.offer is not None:
            body, codec = call.offer.to_bytes(), None  # the ACK's answer configures the stream
        else:
            assert call.answer is not None
            body, config = call.answer
            self.media.configure(call.stream, config)  # before the 200: early RTP is accepted
            codec = config.codec
        dialog_id = self.endpoint.respond(call.key, 200, now, body=body)
        if dialog_id is None:
            self.end_call(call, "respond_failed")
            return False
        self.calls.answered(call, dialog_id)
        call.log.info("call.answered", rtp_port=call.stream.port, codec=codec)
        return True

    def _confirmed(self, call: Call, event: DialogConfirmed) -> None:
        """The ACK of our 2xx: the answer to our offer if it carried one, and the answer time."""
        first, late = call.answered_at is None, call.offer is not None
        if late and not self.negotiation.take_answer(call, event.body):
            if first:  # no media can flow: end the call (a re-INVITE keeps the old media)
                call.cause = "error"
                self._hang_up(call)
            return
        if not first:
            return
        call.answered_at = event.rtime
        self.caps.arm(call)
        if call.facts is not None:
            call.facts.answered_at = event.rtime
            self.reporter.answered(call.facts)
        if late and call.session is not None:  # a late offer's media starts now
            call.session.media_ready()

    def _on_reinvite(self, event: RequestReceived, now: float) -> None:
        call = self.calls.by_dialog(dialog_of(event))
        if call is None or event.key is None:
            if event.key is not None:
                self.endpoint.respond(event.key, 481, now)
            return
        self.negotiation.reinvited(call, event.key, event.request.body, now)

    def _on_info(self, event: RequestReceived) -> None:
        dialog = dialog_of(event)
        call = self.calls.by_dialog(dialog)
        stream = call.stream if call is not None else self.originated.stream_of(dialog)
        request = event.request
        found = parse_dtmf_info(request.headers.get("Content-Type") or "", request.body)
        if stream is not None and found is not None:
            self.media.report_digit(stream, found[0], "info")

    def handle_media_event(self, event: MediaEvent) -> None:
        """React to the media engine: log digits, hang up a call whose RTP stopped."""
        self.forwarder.bridges.media_event(event)
        if self.originated.media_event(event):
            return
        call = self.calls.by_stream(event.stream_id)
        if call is None:
            return
        self.host.session_event(call, event)
        if isinstance(event, DtmfReceived):
            call.log.info("call.dtmf", digit=event.digit, source=event.source)
            self.dtmf_by_source[event.source] = self.dtmf_by_source.get(event.source, 0) + 1
        elif isinstance(event, RtpTimedOut):
            self.rtp_timeouts += 1
            call.log.warning("call.rtp_timeout", idle=round(event.idle, 1))
            call.cause = "rtp_timeout"
            if call.phase.in_dialog:
                self._hang_up(call)

    def _hang_up(self, call: Call) -> None:
        """BYE (RFC 3261 §15.1.1); the call ends when its dialog does."""
        if call.phase is CallPhase.ENDED:  # a timer that outlived the call
            return
        assert call.dialog_id is not None
        call.enter(CallPhase.ENDING)
        self.endpoint.bye(call.dialog_id, self.loop.time())
        self.wake()

    def hang_up_by_admin(self, call: Call) -> bool:
        """The admin API's hang-up: BYE an answered call (RFC 3261 §15.1.1), 487 one whose
        INVITE is pending (§9.2, as a CANCEL would); its CDR says ``admin``. False when the
        call is already ending."""
        if call.phase in (CallPhase.ENDING, CallPhase.ENDED):
            return False
        call.cause = "admin"
        if call.phase.in_dialog:
            self._hang_up(call)
            return True
        if self.endpoint.is_pending_invite(call.key):
            self.endpoint.respond(call.key, 487, self.loop.time())
        self.end_call(call, "admin", 487)
        self.wake()
        return True

    def end_call(self, call: Call, reason: str, sip_code: int | None = None) -> None:
        """Tear the call down once: timers, media, channels, its plan, then its CDR."""
        answered = call.phase.in_dialog
        self.calls.remove(call)
        if call.cap is not None:
            call.cap.cancel()
        recording = None  # what closing the stream kept of a message being recorded
        if call.stream is not None:
            recording = self.media.close_stream(call.stream)
        self._release(call)
        extra = self.host.close_session(call, recording)
        if call.facts is not None:
            call.facts.extra.update(extra)
            code = 200 if answered else sip_code  # answered, or never ACKed
            recorded = call.session.recorded if call.session is not None else None
            self.reporter.ended(call.facts, call.cause or reason, sip_code=code, recorded=recorded)
        call.log.info("call.ended", reason=call.cause or reason)

    async def drain(self, limit: float, bye_wait: float) -> None:
        """Refuse new calls, give those in progress ``limit`` s to end, then hang up the rest
        and wait up to ``bye_wait`` s for their BYEs to be answered."""
        self.draining = True
        log.info("server.draining", active_calls=len(self.calls))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self.idle.wait()
        await self.forwarder.transfers.handover.hang_up_all()  # pairs of no call
        if self.calls:
            self.hang_up_all()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(bye_wait):
                    await self.byes_answered.wait()

    def hang_up_all(self) -> None:
        """Shutdown after the drain timeout: BYE every answered call, 503 every ringing one."""
        now = self.loop.time()
        for call in self.calls:
            if call.phase.in_dialog:
                assert call.dialog_id is not None
                call.enter(CallPhase.ENDING)
                key = self.endpoint.bye(call.dialog_id, now)
                if key is not None:
                    self._byes.add(key)
                    self.byes_answered.clear()
            elif self.endpoint.is_pending_invite(call.key):
                self.endpoint.respond(call.key, 503, now, headers=(("Retry-After", "30"),))
                self.end_call(call, "shutdown")
        self.wake()

    def _bye_done(self, key: TransactionKey | None) -> None:
        self._byes.discard(key)
        if not self._byes:
            self.byes_answered.set()
