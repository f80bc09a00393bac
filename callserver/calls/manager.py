"""Calls: what the server does with each INVITE the SIP endpoint delivers.

Until the dialplan engine takes over, every INVITE gets the built-in behaviour: the SDP offer
is answered (operator codec order, telephone-event when offered), the call is answered with
200 OK (after ``calls.answer_after`` seconds of 180 Ringing when that is set), and the server
hangs up with BYE after ``calls.answer_hangup_after`` seconds unless the caller hangs up first.
Re-INVITEs (hold/unhold, session refresh) get the matching SDP answer; INFO gets 200.
While draining (SIGTERM) new INVITEs get 503 with Retry-After.

Every call is one ``Call`` record from INVITE to teardown, removed on every path: caller BYE,
our BYE, CANCEL, ACK timeout, session expiry, transaction timeout, shutdown.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from callserver.config import Settings
from callserver.sip.dialog import DialogId
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    InviteCancelled,
    MessageDropped,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
)
from callserver.sip.sdp import AnswerConfig, NoCommonCodec, answer_offer
from callserver.sip.session_description import SdpError, parse_sdp

__all__ = ["Call", "CallManager"]

log = structlog.get_logger("callserver.calls")


@dataclass(slots=True)
class Call:
    """One inbound call from INVITE to teardown."""

    call_id: str
    key: object
    offered_at: float
    dialog_id: DialogId | None = None
    answered_at: float | None = None
    hangup: asyncio.TimerHandle | None = None
    rtp_port: int = 0
    sdp_session: int = 0
    sdp_version: int = 1
    log: Any = None  # structlog logger bound to this call's call_id


class _PortCycle:
    """Hands out even RTP port numbers from the configured range, round robin."""

    def __init__(self, low: int, high: int) -> None:
        start = low + (low % 2)
        self._ports = itertools.cycle(range(start, high - 1, 2))

    def next(self) -> int:
        return next(self._ports)


class CallManager:
    """Answers INVITEs with the built-in behaviour and tracks every call until it ends."""

    def __init__(
        self,
        endpoint: SipEndpoint,
        settings: Settings,
        *,
        media_host: str,
        loop: asyncio.AbstractEventLoop,
        wake: Callable[[], None],
    ) -> None:
        self.endpoint = endpoint
        self.settings = settings
        self.media_host = media_host
        self._loop = loop
        self._wake = wake
        self.calls: dict[object, Call] = {}
        self._by_dialog: dict[DialogId, Call] = {}
        self._ports = _PortCycle(settings.media.rtp_port_min, settings.media.rtp_port_max)
        self._session_ids = itertools.count(1)
        self.draining = False
        self.calls_total = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self._byes: set[object] = set()
        self.byes_answered = asyncio.Event()
        self.byes_answered.set()

    def handle_event(self, event: object, now: float) -> None:
        """React to one endpoint event (see the module docstring)."""
        if isinstance(event, RequestReceived):
            self._on_request(event, now)
        elif isinstance(event, DialogConfirmed):
            call = self._by_dialog.get(event.dialog_id)  # type: ignore[call-overload]
            if call is not None and call.answered_at is None:
                call.answered_at = event.rtime
        elif isinstance(event, DialogTerminated):
            call = self._by_dialog.get(event.dialog_id)  # type: ignore[call-overload]
            if call is not None:
                self._end(call, event.reason)
        elif isinstance(event, InviteCancelled):
            call = self.calls.get(event.key)
            if call is not None:
                self._end(call, "cancelled")
        elif isinstance(event, ResponseReceived):
            if event.response.status >= 200:
                self._bye_done(event.key)
        elif isinstance(event, TransactionTimedOut):
            self._bye_done(event.key)
            call = self.calls.get(event.key)
            if call is not None and call.answered_at is None:
                self._end(call, "timeout")
        elif isinstance(event, MessageDropped):
            log.info("sip.message_dropped", reason=event.reason, peer=event.peer.host)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if request.method == "INVITE" and request.to().tag is None:
            self._on_invite(event, now)
        elif request.method == "INVITE":
            self._on_reinvite(event, now)
        elif event.key is not None:
            self.endpoint.respond(event.key, 200, now)

    def _on_invite(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if self.draining or len(self.calls) >= self.settings.calls.max_calls:
            self.endpoint.respond(event.key, 503, now, headers=(("Retry-After", "30"),))
            return
        call = Call(call_id=request.call_id(), key=event.key, offered_at=event.rtime)
        call.log = log.bind(call_id=call.call_id)
        call.rtp_port = self._ports.next()
        call.sdp_session = next(self._session_ids)
        body = self._answer(call, request.body)
        if body is None:
            self.endpoint.respond(event.key, 488, now)
            return
        self.calls[event.key] = call
        self.calls_total += 1
        self.idle.clear()
        ring = self.settings.calls.answer_after
        if ring <= 0:
            self._answer_call(call, body, now)
            return
        self.endpoint.respond(event.key, 180, now)
        call.hangup = self._loop.call_at(self._loop.time() + ring, self._answer_later, call, body)

    def _answer_later(self, call: Call, body: bytes) -> None:
        if self.calls.get(call.key) is call and self.endpoint.is_pending_invite(call.key):
            self._answer_call(call, body, self._loop.time())
            self._wake()

    def _answer_call(self, call: Call, body: bytes, now: float) -> None:
        dialog_id = self.endpoint.respond(call.key, 200, now, body=body)
        if dialog_id is None:
            self._end(call, "respond_failed")
            return
        call.dialog_id = dialog_id
        self._by_dialog[dialog_id] = call
        delay = self.settings.calls.answer_hangup_after
        call.hangup = self._loop.call_at(self._loop.time() + delay, self._hang_up, dialog_id)
        call.log.info("call.answered")

    def _answer(self, call: Call, offer_body: bytes) -> bytes | None:
        config = AnswerConfig(
            codecs=tuple(self.settings.media.codecs),
            address=self.media_host,
            port=call.rtp_port,
            session_id=call.sdp_session,  # RFC 3264 §8: same o= session, version + 1
            session_version=call.sdp_version,
            ptime=self.settings.media.ptime,
        )
        try:
            return str(answer_offer(parse_sdp(offer_body), config).sdp).encode()
        except NoCommonCodec:
            return None
        except SdpError as exc:
            call.log.info("call.bad_sdp", error=str(exc))
            return None

    def _on_reinvite(self, event: RequestReceived, now: float) -> None:
        call = self._by_dialog.get(_dialog_of(event))
        if call is None or event.key is None:
            if event.key is not None:
                self.endpoint.respond(event.key, 481, now)
            return
        call.sdp_version += 1
        body = self._answer(call, event.request.body) if event.request.body else None
        if event.request.body and body is None:
            self.endpoint.respond(event.key, 488, now)
            return
        self.endpoint.respond(event.key, 200, now, body=body or b"")

    def _hang_up(self, dialog_id: DialogId) -> None:
        self.endpoint.bye(dialog_id, self._loop.time())
        self._wake()

    def _end(self, call: Call, reason: str) -> None:
        self.calls.pop(call.key, None)
        if not self.calls:
            self.idle.set()
        if call.dialog_id is not None:
            self._by_dialog.pop(call.dialog_id, None)
        if call.hangup is not None:
            call.hangup.cancel()
        call.log.info("call.ended", reason=reason)

    def hang_up_all(self) -> None:
        """Shutdown after the drain timeout: BYE every answered call, 503 every ringing one."""
        now = self._loop.time()
        for call in list(self.calls.values()):
            if call.dialog_id is not None:
                key = self.endpoint.bye(call.dialog_id, now)
                if key is not None:
                    self._byes.add(key)
                    self.byes_answered.clear()
            elif self.endpoint.is_pending_invite(call.key):
                self.endpoint.respond(call.key, 503, now, headers=(("Retry-After", "30"),))
                self._end(call, "shutdown")
        self._wake()

    def _bye_done(self, key: object) -> None:
        self._byes.discard(key)
        if not self._byes:
            self.byes_answered.set()


def _dialog_of(event: RequestReceived) -> DialogId:
    request = event.request
    return DialogId(request.call_id(), request.to().tag or "", request.from_().tag or "")
