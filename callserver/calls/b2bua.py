"""Forwarding as a B2BUA: a new UAC leg for a ``forward`` step, bridged to the caller.

Theory of operation
-------------------
``Forwarder.forward`` runs inside the call's dialplan task. In order, each refusing with its
own outcome and a CDR for the leg that was not placed:

1. loop protection: the new INVITE carries the inbound Max-Forwards less one; an inbound
   value of 1 or less means a forwarding loop (RFC 3261 §16.6 step 3: 483 Too Many Hops);
2. the route: a named outbound route of config/trunks.yaml (or the default one) for a
   number, the URI's own host for a ``sip:`` target;
3. outbound barring of the caller's trunk or customer (``policy.barring``): 403, ``barred``;
4. a channel for the leg in the same pools as the inbound call (a forwarded call holds one
   channel for each leg), and an RTP port.

Then the INVITE goes out with our SDP offer. While it rings the caller gets 180 Ringing, or,
when audio already flows (answered, or early media), a 425 Hz ringback tone (ETSI TR 101 041).
A 2xx answers the caller if needed and bridges the two streams in the media engine (relay,
transcoding, DTMF); a 486/600 is ``busy``, no answer within ``ring_timeout`` CANCELs the leg
(``no_answer``), anything else is ``failed``. A bridged call lasts until either side hangs up:
the caller's BYE cancels the dialplan task, whose cleanup sends BYE to the leg; the leg's BYE
returns ``answered`` and the plan ends, which hangs the caller up. Every path releases the
leg's channel and stream once and writes its CDR (leg ``b``, linked to the inbound call's
Call-ID).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from callserver.calls.reporting import CallFacts
from callserver.media import g711
from callserver.media.engine import PortsExhausted
from callserver.media.stream import MediaStream
from callserver.media.tones import sine
from callserver.policy.limits import Grant
from callserver.sip.dialog import DialogId
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    Peer,
    ResponseReceived,
    TransactionTimedOut,
)
from callserver.sip.headers import parse_address
from callserver.sip.ids import new_call_id
from callserver.sip.sdp import AnswerConfig, NoCommonCodec, build_offer, negotiated_from_answer
from callserver.sip.session_description import SdpError, SessionDescription, parse_sdp
from callserver.sip.uri import SipUri, parse_uri

if TYPE_CHECKING:
    from callserver.calls.call import Call
    from callserver.calls.manager import CallManager

__all__ = ["ForwardOutcome", "Forwarder", "Route"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ForwardOutcome:
    """How a forwarded leg ended: ``answered`` (bridged until one side hung up) or why not."""

    result: Literal["answered", "busy", "no_answer", "failed", "barred"]
    sip_code: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """Where forwarded numbers go: a gateway or carrier (config/trunks.yaml ``routes``)."""

    name: str
    host: str
    port: int = 5060
    transport: Literal["udp", "tcp"] = "udp"
    credentials: tuple[str, str] | None = None


@dataclass(slots=True)
class _Leg:
    a: Call
    handle: object
    stream: MediaStream
    offer: SessionDescription
    facts: CallFacts
    grant: Grant | None
    setup: asyncio.Future[int]  # the final response's status (408: timed out)
    ended: asyncio.Event
    dialog_id: DialogId | None = None
    cancelled: bool = False
    end_reason: str = "bye_sent"  # bye_received when the forwarded party hung up


class Forwarder:
    """The forwarded legs of a ``CallManager``; see the module docstring."""

    def __init__(self, manager: CallManager) -> None:
        self.manager = manager
        self._by_handle: dict[object, _Leg] = {}
        self._by_dialog: dict[DialogId, _Leg] = {}

    async def forward(
        self,
        call: Call,
        *,
        target: str,
        route: str | None,
        ring_timeout: float,
        caller_id: str | None,
    ) -> ForwardOutcome:
        """Place the leg, ring it, bridge it; returns when it ends (or could not be placed)."""
        facts = self._facts(call, target)
        refusal = self._refusal(call, target, route)
        if refusal is not None:
            reason, code, detail = refusal
            facts.extra["end_detail"] = detail
            self.manager.reporter.ended(facts, reason, sip_code=code)
            return ForwardOutcome(
                result="barred" if reason == "barred" else "failed", sip_code=code
            )
        leg = self._place(call, facts, target, route, caller_id)
        if leg is None:
            return ForwardOutcome(result="failed", sip_code=503)
        try:
            return await self._run(leg, ring_timeout)
        finally:
            self._teardown(leg)

    def _refusal(self, call: Call, target: str, route: str | None) -> tuple[str, int, str] | None:
        """Why the leg may not be placed: (reason, SIP code, CDR end_detail), or None."""
        if call.max_forwards <= 1:
            call.log.warning("call.forward_loop", target=target)
            return "loop", 483, f"max_forwards {call.max_forwards}"
        if not target.startswith(("sip:", "sips:")) and self._route(route) is None:
            call.log.error("call.forward_no_route", route=route)
            return "no_route", 503, f"route {route or '(default)'}"
        barred = self.manager.admission.barred(call.facts, target, self.manager.tariffs)
        if barred is not None:
            call.log.info("call.forward_barred", target=target, barring=barred)
            return "barred", 403, barred
        return None

    def _place(
        self, call: Call, facts: CallFacts, target: str, route: str | None, caller_id: str | None
    ) -> _Leg | None:
        manager = self.manager
        grant = manager.admission.acquire_leg(call.facts, target)
        if grant is None:
            manager.reporter.ended(facts, "channel_limit", sip_code=503)
            return None
        try:
            stream = manager.media.open_stream()
        except (PortsExhausted, OSError):
            manager.admission.release(grant)
            manager.reporter.ended(facts, "rejected", sip_code=503)
            return None
        offer = build_offer(self._offer_config(stream))
        uri, peer, credentials = self._destination(target, route)
        caller = caller_id or (call.facts.caller if call.facts else "") or "anonymous"
        host = manager.endpoint.config.host
        handle = manager.endpoint.uac.invite(
            uri,
            from_addr=parse_address(f"<sip:{caller}@{host}>"),
            to_addr=parse_address(f"<{uri}>"),
            peer=peer,
            now=manager.loop.time(),
            body=str(offer).encode(),
            credentials=credentials,
            call_id=facts.call_id,
            max_forwards=call.max_forwards - 1,
        )
        manager.reporter.opened(facts)
        loop = manager.loop
        leg = _Leg(call, handle, stream, offer, facts, grant, loop.create_future(), asyncio.Event())
        self._by_handle[handle] = leg
        call.log.info("call.forwarding", target=target, leg_call_id=facts.call_id)
        manager.wake()
        return leg

    async def _run(self, leg: _Leg, ring_timeout: float) -> ForwardOutcome:
        self._ring_caller(leg)
        timer = self.manager.loop.call_later(ring_timeout, self._ring_timeout, leg)
        try:
            status = await leg.setup
        finally:
            timer.cancel()
        if status >= 300:
            return _failed(status, leg.cancelled)
        a = leg.a
        if a.session is not None and not a.session.answered:
            await a.session.answer()
        if a.stream is None or a.dialog_id is None:
            return ForwardOutcome(result="failed", sip_code=status)
        self.manager.media.bridge(a.stream, leg.stream)
        a.log.info("call.bridged", leg_call_id=leg.facts.call_id)
        await leg.ended.wait()
        return ForwardOutcome(result="answered", sip_code=status)

    def _ring_caller(self, leg: _Leg) -> None:
        """180 Ringing to an unanswered caller; the ringback tone when audio already flows
        (answered, or early media: RFC 3960 lets the sender of 183 play its own tones)."""
        a = leg.a
        session = a.session
        audio = session is not None and (session.answered or session.early_media)
        if audio and a.stream is not None:
            self.manager.media.play(a.stream, _ringback(a.stream.codec), loop=True)
        elif self.manager.endpoint.is_pending_invite(a.key):
            self.manager.endpoint.respond(a.key, 180, self.manager.loop.time())
            self.manager.wake()

    def _ring_timeout(self, leg: _Leg) -> None:
        if not leg.setup.done():
            leg.cancelled = True
            self.manager.endpoint.uac.cancel(leg.handle, self.manager.loop.time())
            self.manager.wake()

    def _teardown(self, leg: _Leg) -> None:
        manager = self.manager
        now = manager.loop.time()
        self._by_handle.pop(leg.handle, None)
        if leg.dialog_id is not None:
            self._by_dialog.pop(leg.dialog_id, None)
            manager.endpoint.bye(leg.dialog_id, now)
        elif not leg.setup.done():
            manager.endpoint.uac.cancel(leg.handle, now)
        if leg.a.stream is not None:
            manager.media.stop_playback(leg.a.stream)
        manager.media.unbridge(leg.stream)
        manager.media.close_stream(leg.stream)
        if leg.grant is not None:
            manager.admission.release(leg.grant)
            leg.grant = None
        code = leg.setup.result() if leg.setup.done() and not leg.setup.cancelled() else 487
        if leg.facts.answered_at is not None:
            # A cap or an RTP timeout that ended the caller's leg ended this one too.
            reason = leg.a.cause if leg.a.cause in _SHARED_CAUSES else leg.end_reason
        else:
            reason = _failed(code, leg.cancelled).result
        manager.reporter.ended(leg.facts, reason, sip_code=code)
        manager.wake()

    # Endpoint events ----------------------------------------------------------------------

    def handle_event(self, event: object) -> bool:
        """Take the events of forwarded legs; False for everything else."""
        if isinstance(event, ResponseReceived):
            leg = self._by_handle.get(event.key)
            if leg is None or event.response.cseq().method != "INVITE":
                return False
            self._on_response(leg, event)
            return True
        if isinstance(event, TransactionTimedOut):
            leg = self._by_handle.get(event.key)
            if leg is not None and not leg.setup.done():
                leg.setup.set_result(408)
            return leg is not None
        if isinstance(event, DialogConfirmed | DialogTerminated):
            leg = self._by_dialog.get(event.dialog_id)  # type: ignore[call-overload]
            if leg is None:
                return False
            if isinstance(event, DialogTerminated):
                self._by_dialog.pop(leg.dialog_id or _NO_DIALOG, None)
                leg.dialog_id, leg.end_reason = None, event.reason
                leg.ended.set()
            return True
        return False

    def _on_response(self, leg: _Leg, event: ResponseReceived) -> None:
        response = event.response
        if response.status < 200 or leg.setup.done():
            return
        if response.status >= 300:
            leg.setup.set_result(response.status)
            return
        try:
            media = negotiated_from_answer(leg.offer, parse_sdp(response.body))
        except (SdpError, NoCommonCodec) as exc:
            leg.a.log.warning("call.forward_bad_answer", error=str(exc))
            leg.setup.set_result(488)
            leg.dialog_id = _uac_dialog(event)
            self._by_dialog[leg.dialog_id] = leg
            return
        # calls.call imports the session, which imports this module: import at use.
        from callserver.calls.call import stream_config

        self.manager.media.configure(leg.stream, stream_config(media))
        leg.dialog_id = _uac_dialog(event)
        self._by_dialog[leg.dialog_id] = leg
        leg.facts.answered_at = event.rtime  # a UAC leg is answered when its 2xx arrives
        self.manager.reporter.answered(leg.facts)
        leg.setup.set_result(response.status)

    # Helpers ------------------------------------------------------------------------------

    def _route(self, name: str | None) -> Route | None:
        """The named outbound route of config/trunks.yaml (as reloaded), or its default."""
        config = self.manager.admission.table.config
        key = name or config.default_route or ""
        found = config.routes.get(key)
        if found is None:
            return None
        digest = found.digest
        return Route(
            name=key,
            host=found.host,
            port=found.port,
            transport=found.transport,
            credentials=None
            if digest is None
            else (digest.username, digest.password.get_secret_value()),
        )

    def _destination(
        self, target: str, route_name: str | None
    ) -> tuple[SipUri, Peer, tuple[str, str] | None]:
        if target.startswith(("sip:", "sips:")):
            uri = parse_uri(target)
            assert isinstance(uri, SipUri)
            return uri, Peer("udp", uri.host, uri.port or 5060), None
        route = self._route(route_name)
        assert route is not None
        number = "".join(ch for ch in target if ch.isdigit() or ch == "+")
        uri = parse_uri(f"sip:{number}@{route.host}:{route.port}")
        assert isinstance(uri, SipUri)
        return uri, Peer(route.transport, route.host, route.port), route.credentials

    def _offer_config(self, stream: MediaStream) -> AnswerConfig:
        settings = self.manager.settings.media
        return AnswerConfig(
            codecs=tuple(settings.codecs),
            address=self.manager.media_host,
            port=stream.port,
            session_id=stream.stream_id,
            session_version=1,
            ptime=settings.ptime,
        )

    def _facts(self, call: Call, target: str) -> CallFacts:
        facts = CallFacts(
            call_id=new_call_id(),
            caller=call.facts.caller if call.facts else "",
            called=target,
            offered_at=self.manager.loop.time(),
        )
        facts.leg, facts.linked_id, facts.direction = "b", call.call_id, "outbound"
        if call.facts is not None:
            facts.trunk, facts.customer = call.facts.trunk, call.facts.customer
            facts.inside_group = self.manager.admission.inside_group(facts.customer, target)
            facts.caller_e164, facts.caller_country = (
                call.facts.caller_e164,
                call.facts.caller_country,
            )
        return facts


def _failed(status: int, cancelled: bool) -> ForwardOutcome:
    if cancelled or status in (408, 480, 487):
        return ForwardOutcome(result="no_answer", sip_code=status)
    if status in (486, 600):
        return ForwardOutcome(result="busy", sip_code=status)
    return ForwardOutcome(result="failed", sip_code=status)


def _uac_dialog(event: ResponseReceived) -> DialogId:
    response = event.response
    return DialogId(response.call_id(), response.from_().tag or "", response.to().tag or "")


_NO_DIALOG = DialogId("", "", "")
_SHARED_CAUSES = ("max_duration", "rtp_timeout")
_RINGBACK: dict[str, bytes] = {}


def _ringback(codec: str) -> bytes:
    """One cadence of the European ringback tone: 425 Hz for 1 s, then 4 s of silence."""
    if codec not in _RINGBACK:
        tone = np.concatenate([sine(425.0, 1000, dbfs=-16.0), np.zeros(32000, np.int16)])
        _RINGBACK[codec] = g711.encode(codec, tone)
    return _RINGBACK[codec]
