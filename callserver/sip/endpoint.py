"""The SIP endpoint: the sans-IO facade an asyncio adapter drives (STYLE.md §2).

Theory of operation
-------------------
Bytes come in through ``receive_datagram`` / ``receive_stream_data`` with the arrival time
``now``; the endpoint parses them (framing for streams), runs them through the transaction
layer (RFC 3261 §17) and then through the UAS/UAC core (§8, §12-§15, RFC 4028). Whatever must
go out is queued as ``Transmit`` actions (``datagrams_to_send``), whatever the application must
decide is queued as events (``next_event``), and ``get_timer`` returns the earliest absolute
deadline, to be fed back through ``handle_timer(now)``. Nothing here reads a clock or touches
a socket.

The core answers by itself what needs no application decision: OPTIONS, BYE, CANCEL (200 and
487), 481 for unknown dialogs, 482 for merged requests, the RFC 4475 checks of ``validate``, 422
for a too-small session interval, 2xx retransmission until the ACK, and session refreshes. The
application answers INVITEs (``respond``), and places and ends calls (``invite``, ``cancel``,
``bye``). The UAC half lives in ``uac_core`` and the timers of dialogs in ``dialog_timers``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from secrets import token_hex

from callserver.sip.dialog import Dialog, DialogId, DialogState, SessionTimer
from callserver.sip.errors import SipParseError
from callserver.sip.events import (
    CloseConnection,
    DialogConfirmed,
    DialogTerminated,
    InviteCancelled,
    MessageDropped,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.framing import ReceiveBuffer
from callserver.sip.message import Request, Response
from callserver.sip.parser import ParseLimits, parse_message
from callserver.sip.timers import SipTimers, TimerHeap
from callserver.sip.transaction import TransactionLayer
from callserver.sip.uas import build_response, negotiate_session_timer, response_peer, stamp_via
from callserver.sip.validate import UasPolicy, check_request

__all__ = ["EndpointConfig", "EndpointStatistics", "SipEndpoint"]

Event = object
TimerKey = tuple[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointConfig:
    """What the endpoint needs to know about itself: address, identity, timers, limits."""

    host: str
    port: int
    user_agent: str = "callserver"
    timers: SipTimers = field(default_factory=SipTimers)
    limits: ParseLimits = field(default_factory=ParseLimits)
    policy: UasPolicy = field(default_factory=UasPolicy)
    session_expires: int = 1800
    min_se: int = 90

    def via(self, transport: str, branch: str) -> str:
        """Our Via value for a new client transaction, asking for rport (RFC 3581 §3)."""
        return f"SIP/2.0/{transport.upper()} {self.sent_by()};branch={branch};rport"

    def sent_by(self) -> str:
        """host:port as written in Via and Contact (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def contact(self, transport: str) -> str:
        """Our Contact value (RFC 3261 §8.1.1.8), naming the transport for streams."""
        suffix = "" if transport == "udp" else f";transport={transport}"
        return f"<sip:callserver@{self.sent_by()}{suffix}>"


@dataclass(frozen=True, slots=True)
class EndpointStatistics:
    """Counters since start (``SipEndpoint.statistics()``)."""

    messages_received: int
    messages_dropped: int
    parse_errors_answered: int
    transactions: int
    dialogs: int


class SipEndpoint:
    """A SIP user agent core over one transaction layer; all methods are synchronous."""

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self._tx = TransactionLayer(config.timers)
        self._events: deque[Event] = deque()
        self._out: list[Transmit | CloseConnection] = []
        self._buffers: dict[int, ReceiveBuffer] = {}
        self.dialogs: dict[DialogId, Dialog] = {}
        self._server: dict[object, _ServerInvite] = {}
        self._merge: dict[tuple[str, str, int], object] = {}
        self._merge_of: dict[object, tuple[str, str, int]] = {}
        self._timers: TimerHeap[TimerKey] = TimerHeap()
        self._pending_2xx: dict[DialogId, _Pending2xx] = {}
        self._received = 0
        self._dropped = 0
        self._answered_errors = 0
        from callserver.sip.dialog_timers import DialogTimers
        from callserver.sip.uac_core import UacCore

        self.uac = UacCore(self)
        self.dialog_timers = DialogTimers(self)

    @property
    def config(self) -> EndpointConfig:
        """Our address, identity, timers and limits (replaceable, e.g. once a port is bound)."""
        return self._config

    @config.setter
    def config(self, config: EndpointConfig) -> None:
        self._config = config
        # Fields every response of a kind carries, formatted once rather than per message.
        self._allow = ", ".join(sorted(config.policy.allowed_methods))
        self._supported = ", ".join(sorted(config.policy.supported_extensions))
        self._accept = ", ".join(sorted(config.policy.accepted_types))
        self._contacts = {t: config.contact(t) for t in ("udp", "tcp", "tls")}

    # -- input -----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: Peer, now: float) -> None:
        """Feed one UDP datagram that arrived at ``now`` (RFC 3261 §18.1.2, §18.2.1)."""
        self._received += 1
        if not data.strip(b"\r\n"):
            return  # keepalive CRLF (RFC 5626 §3.5.1)
        try:
            message = parse_message(data, self.config.limits, datagram=True)
        except SipParseError as exc:
            self._reject_unparsed(exc, peer, now)
            return
        self._dispatch(message, peer, now)

    def receive_stream_data(self, data: bytes, peer: Peer, now: float) -> None:
        """Feed bytes that arrived on stream connection ``peer.conn_id`` (RFC 3261 §18.3)."""
        conn_id = peer.conn_id if peer.conn_id is not None else -1
        buffer = self._buffers.get(conn_id)
        if buffer is None:
            buffer = self._buffers[conn_id] = ReceiveBuffer(self.config.limits)
        try:
            buffer.feed(data)
            while (raw := buffer.next_message()) is not None:
                self._received += 1
                try:
                    message = parse_message(raw, self.config.limits, datagram=False)
                except SipParseError as exc:
                    self._reject_unparsed(exc, peer, now)
                    continue
                self._dispatch(message, peer, now)
            for _ in range(buffer.take_pings()):
                self._out.append(Transmit(data=b"\r\n", peer=peer))
        except SipParseError as exc:
            self._drop(str(exc), peer)
            self._buffers.pop(conn_id, None)
            self._out.append(CloseConnection(conn_id=conn_id, reason=str(exc)))

    def stream_closed(self, peer: Peer) -> None:
        """The connection ``peer.conn_id`` is gone: forget its framing buffer."""
        if peer.conn_id is not None:
            self._buffers.pop(peer.conn_id, None)

    def handle_timer(self, now: float) -> None:
        """Fire every transaction and dialog timer due at ``now``."""
        self._apply(self._tx.handle_timer(now), now)
        while (key := self._timers.pop_due(now)) is not None:
            kind, ident = key
            if kind == "2xx":
                self._retransmit_2xx(ident, now)  # type: ignore[arg-type]
            else:
                self.dialog_timers.fire(kind, ident, now)

    # -- output ----------------------------------------------------------------------------

    def next_event(self) -> Event | None:
        """The next event for the application, or None."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Transmit | CloseConnection]:
        """Everything to transmit (and connections to close) since the last call."""
        out, self._out = self._out, []
        return out

    def get_timer(self) -> float | None:
        """The earliest absolute deadline of any timer, or None."""
        a, b = self._tx.get_timer(), self._timers.earliest()
        if a is None:
            return b
        return a if b is None else min(a, b)

    def statistics(self) -> EndpointStatistics:
        """Counters since start."""
        return EndpointStatistics(
            messages_received=self._received,
            messages_dropped=self._dropped,
            parse_errors_answered=self._answered_errors,
            transactions=len(self._tx),
            dialogs=len(self.dialogs),
        )

    # -- UAS API ---------------------------------------------------------------------------

    def respond(
        self,
        key: object,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
    ) -> DialogId | None:
        """Answer the request of server transaction ``key``; returns the dialog a 1xx/2xx made.

        A 2xx to an INVITE creates the dialog and is retransmitted until the ACK arrives
        (RFC 3261 §13.3.1.4); after 64*T1 without ACK the dialog gets a BYE.

        Raises:
            LocalProtocolError: ``key`` names no live transaction, or its state forbids this.
        """
        request = self._tx.request_for(key)
        server = self._server.get(key)
        response = build_response(request, status, reason, to_tag=server.tag if server else None)
        if server is not None and 200 <= status < 300:
            headers = server.session_headers + headers
        self._decorate(response, request, status, headers)
        if body:
            response.headers.add("Content-Type", content_type)
            response.body = body
        if server is not None and status > 100:
            server.final_sent = status >= 200
        actions = self._tx.send_response(key, response, now)
        self._apply(actions, now)
        if server is None or status == 100 or status >= 300:
            return None
        sent = next((a.data for a in actions if isinstance(a, Transmit)), None)
        return self._uas_dialog(server, request, response, sent, now)

    def _decorate(
        self, response: Response, request: Request, status: int, extra: tuple[tuple[str, str], ...]
    ) -> None:
        response.headers.add("Server", self._config.user_agent)
        if request.method in ("INVITE", "UPDATE", "OPTIONS") and 100 < status < 300:
            transport = self._transport_of(request)
            contact = self._contacts.get(transport) or self._config.contact(transport)
            response.headers.add("Contact", contact)
        if (request.method in ("INVITE", "OPTIONS") and 200 <= status < 300) or status == 405:
            response.headers.add("Allow", self._allow)
            response.headers.add("Supported", self._supported)
        for name, value in extra:
            response.headers.add(name, value)

    def _transport_of(self, request: Request) -> str:
        return request.top_via().transport.lower()

    def _uas_dialog(
        self,
        server: _ServerInvite,
        request: Request,
        response: Response,
        sent: bytes | None,
        now: float,
    ) -> DialogId:
        dialog = self.dialogs.get(server.dialog_id) if server.dialog_id else None
        if dialog is None:
            dialog = Dialog.as_uas(request, response, server.peer)
            self.dialogs[dialog.id] = dialog
            server.dialog_id = dialog.id
        if response.status >= 200:
            dialog.state = DialogState.CONFIRMED
            dialog.local_sdp = response.body or dialog.local_sdp
            dialog.session_timer = server.session_timer
            self._start_2xx(dialog.id, response, sent or response.serialize(), server.peer, now)
        return dialog.id

    def bye(self, dialog_id: DialogId, now: float) -> object | None:
        """End a dialog with BYE (RFC 3261 §15.1.1); returns the BYE's transaction key.

        A no-op returning None for a dialog already gone.
        """
        dialog = self.dialogs.get(dialog_id)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return None
        pending = self._pending_2xx.get(dialog_id)
        if pending is not None:
            # §15: "the callee's UA MUST NOT send a BYE on a confirmed dialog until it has
            # received an ACK for its 2xx response or until the server transaction times out."
            pending.bye_wanted = True
            return None
        key = self.send_in_dialog(dialog, "BYE", now)
        self._terminate(dialog, "bye_sent", now)
        return key

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> object:
        """Send a request inside ``dialog`` (§12.2.1); returns its client transaction key."""
        peer = self.uac.peer_for_dialog(dialog)
        request = dialog.create_request(method, self.config.via(peer.transport, new_branch()))
        for name, value in headers:
            request.headers.add(name, value)
        if method in ("INVITE", "UPDATE"):
            request.headers.add("Contact", self.config.contact(peer.transport))
        if body:
            request.headers.add("Content-Type", content_type)
            request.body = body
        key, actions = self._tx.send_request(request, peer, now)
        self._apply(actions, now)
        return key

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch(self, message: Request | Response, peer: Peer, now: float) -> None:
        if isinstance(message, Request):
            stamp_via(message, peer)
            self._apply(self._tx.receive_request(message, peer, now), now)
        else:
            self._apply(self._tx.receive_response(message, peer, now), now)

    def _apply(self, actions: list[object], now: float) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                self._out.append(action)
            elif isinstance(action, RequestReceived):
                self._on_request(action, now)
            elif isinstance(action, ResponseReceived):
                self.uac.on_response(action, now)
            elif isinstance(action, TransactionTerminated):
                self._forget(action.key)
                self.uac.forget(action.key)
            elif isinstance(action, TransactionTimedOut):
                self.uac.on_timeout(action, now)
            else:
                self._events.append(action)

    def _on_request(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if request.method == "ACK":
            self._on_ack(event, now)
            return
        rejection = check_request(request, self.config.policy)
        if rejection is not None:
            self._reply(
                event, rejection.status, now, reason=rejection.reason, headers=rejection.headers
            )
            return
        if request.to().tag is not None:
            self._in_dialog(event, now)
        elif request.method == "CANCEL":
            self._on_cancel(event, now)
        elif self._is_merged(event):
            self._reply(event, 482, now)
        elif request.method == "INVITE":
            self._on_invite(event, now)
        elif request.method == "OPTIONS":
            self._reply(
                event,
                200,
                now,
                headers=(("Accept", self._accept),),
            )
        elif request.method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._reply(event, 481, now)
        else:
            self._events.append(event)

    def _reply(
        self,
        event: RequestReceived,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if event.key is not None:
            self.respond(event.key, status, now, reason=reason, headers=headers)

    def _is_merged(self, event: RequestReceived) -> bool:
        """RFC 3261 §8.2.2.2: same From tag, Call-ID and CSeq as a pending request, other branch."""
        request = event.request
        triple = (request.from_().tag or "", request.call_id(), request.cseq().seq)
        owner = self._merge.get(triple)
        if owner is not None and owner != event.key:
            return True
        if request.method == "INVITE" and event.key is not None:
            self._merge[triple] = event.key
            self._merge_of[event.key] = triple
        return False

    def _on_invite(self, event: RequestReceived, now: float) -> None:
        try:
            timer = negotiate_session_timer(
                event.request, default=self.config.session_expires, min_se=self.config.min_se
            )
        except SipParseError as exc:
            self._reply(event, exc.status_hint, now)
            return
        self._server[event.key] = _ServerInvite(
            tag=new_tag(),
            peer=response_peer(event.request, event.peer),
            session_timer=timer.timer,
            session_headers=timer.headers,
        )
        if timer.reject_min_se is not None:
            self.respond(event.key, 422, now, headers=timer.headers)
            return
        self._events.append(event)

    def _on_cancel(self, event: RequestReceived, now: float) -> None:
        """RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if it has no final yet."""
        invite_key = self._tx.find_invite_for_cancel(event.request)
        if invite_key is None:
            self._reply(event, 481, now)
            return
        self._reply(event, 200, now)
        server = self._server.get(invite_key)
        if server is not None and not server.final_sent:
            self.respond(invite_key, 487, now)
            self._events.append(InviteCancelled(key=invite_key, rtime=event.rtime))

    def _in_dialog(self, event: RequestReceived, now: float) -> None:
        request = event.request
        dialog = self.dialogs.get(_dialog_id_of(request))
        if dialog is None or dialog.state is DialogState.TERMINATED:
            self._reply(event, 481, now)
            return
        if not dialog.accept_remote_cseq(request):
            self._reply(event, 500, now, reason="Out of Order CSeq")
            return
        if request.method == "BYE":
            self._reply(event, 200, now)
            self._terminate(dialog, "bye_received", event.rtime)
        elif request.method == "OPTIONS":
            self._reply(event, 200, now)
        elif request.method == "UPDATE" and not request.body:
            self.dialog_timers.refreshed_by_peer(dialog, event, now)
        else:
            if request.method == "INVITE":
                self._server[event.key] = _ServerInvite(
                    tag=dialog.id.local_tag,
                    peer=response_peer(request, event.peer),
                    dialog_id=dialog.id,
                    session_timer=dialog.session_timer,
                )
            self._events.append(event)

    def _on_ack(self, event: RequestReceived, now: float) -> None:
        dialog_id = _dialog_id_of(event.request)
        pending = self._pending_2xx.get(dialog_id)
        if pending is None or pending.cseq != event.request.cseq().seq:
            return  # retransmitted ACK, or ACK of a dialog we no longer know
        del self._pending_2xx[dialog_id]
        self._timers.schedule(("2xx", dialog_id), None)
        dialog = self.dialogs.get(dialog_id)
        if dialog is None:
            return
        if event.request.body:
            dialog.remote_sdp = event.request.body
        self._events.append(DialogConfirmed(dialog_id=dialog_id, rtime=event.rtime))
        if pending.bye_wanted:
            self.bye(dialog_id, now)  # asked for before the ACK came (§15)
        else:
            self.dialog_timers.start(dialog, now)

    # -- 2xx retransmission (RFC 3261 §13.3.1.4) --------------------------------------------

    def _start_2xx(
        self, dialog_id: DialogId, response: Response, data: bytes, peer: Peer, now: float
    ) -> None:
        timers = self.config.timers
        pending = _Pending2xx(
            data=data,
            peer=peer,
            cseq=response.cseq().seq,
            interval=timers.t1,
            give_up=now + 64 * timers.t1,
        )
        self._pending_2xx[dialog_id] = pending
        first = now + (timers.t1 if not peer.reliable else 64 * timers.t1)
        self._timers.schedule(("2xx", dialog_id), first)

    def _retransmit_2xx(self, dialog_id: DialogId, now: float) -> None:
        pending = self._pending_2xx.get(dialog_id)
        if pending is None:
            return
        if now >= pending.give_up:
            # "If the server retransmits the 2xx response for 64*T1 seconds without receiving
            # an ACK, the dialog is confirmed, but the session SHOULD be terminated."
            del self._pending_2xx[dialog_id]
            dialog = self.dialogs.get(dialog_id)
            if dialog is not None:
                self.send_in_dialog(dialog, "BYE", now)
                self._terminate(dialog, "ack_timeout", now)
            return
        self._out.append(Transmit(data=pending.data, peer=pending.peer))
        pending.interval = min(2 * pending.interval, self.config.timers.t2)
        self._timers.schedule(("2xx", dialog_id), min(now + pending.interval, pending.give_up))

    # -- teardown --------------------------------------------------------------------------

    def _terminate(self, dialog: Dialog, reason: str, rtime: float) -> None:
        dialog.state = DialogState.TERMINATED
        self.dialogs.pop(dialog.id, None)
        self._pending_2xx.pop(dialog.id, None)
        self._timers.schedule(("2xx", dialog.id), None)
        self.dialog_timers.stop(dialog)
        self.uac.dialog_ended(dialog.id)
        self._events.append(DialogTerminated(dialog_id=dialog.id, reason=reason, rtime=rtime))

    def terminate_dialog(self, dialog: Dialog, reason: str, now: float) -> None:
        """Mark ``dialog`` ended and tell the application (used by the UAC and timer halves)."""
        self._terminate(dialog, reason, now)

    def _forget(self, key: object) -> None:
        self._server.pop(key, None)
        triple = self._merge_of.pop(key, None)
        if triple is not None:
            self._merge.pop(triple, None)

    def _reject_unparsed(self, exc: SipParseError, peer: Peer, now: float) -> None:
        """Answer a malformed request with its status hint if it can be answered; else drop.

        It can be answered when its top Via parses (the response must be routed) and From,
        To, Call-ID and CSeq are present, copied as they came (RFC 3261 §8.2.6.2).
        """
        partial = exc.partial
        if not isinstance(partial, Request) or partial.method == "ACK":
            self._drop(str(exc), peer)
            return
        headers = partial.headers
        try:
            partial.top_via()
            target = response_peer(partial, peer)
        except SipParseError:
            self._drop(str(exc), peer)
            return
        if not all(name in headers for name in ("From", "To", "Call-ID", "CSeq")):
            self._drop(str(exc), peer)
            return
        response = build_response(partial, exc.status_hint, to_tag=new_tag())
        response.headers.add("Server", self.config.user_agent)
        response.headers.add("Warning", f'399 callserver "{_warning_text(str(exc))}"')
        self._answered_errors += 1
        self._out.append(Transmit(data=response.serialize(), peer=target))

    def _drop(self, reason: str, peer: Peer) -> None:
        self._dropped += 1
        self._events.append(MessageDropped(reason=reason, peer=peer))

    def send_transaction(self, request: Request, peer: Peer, now: float) -> object:
        """Start a client transaction for ``request`` (used by the UAC half)."""
        key, actions = self._tx.send_request(request, peer, now)
        self._apply(actions, now)
        return key

    def arm(self, key: TimerKey, deadline: float) -> None:
        """Arm one of the endpoint's own timers (the dialog-timer half uses this)."""
        self._timers.schedule(key, deadline)

    def disarm(self, key: TimerKey) -> None:
        """Disarm one of the endpoint's own timers."""
        self._timers.schedule(key, None)

    def emit(self, event: Event) -> None:
        """Queue an event for the application."""
        self._events.append(event)

    def emit_transmit(self, transmit: Transmit) -> None:
        """Queue bytes to send outside any transaction (ACK for 2xx, 2xx retransmissions)."""
        self._out.append(transmit)

    def is_pending_invite(self, key: object) -> bool:
        """True while INVITE server transaction ``key`` has had no final response."""
        server = self._server.get(key)
        return server is not None and not server.final_sent


@dataclass(slots=True)
class _ServerInvite:
    tag: str
    peer: Peer
    session_timer: SessionTimer | None = None
    session_headers: tuple[tuple[str, str], ...] = ()
    dialog_id: DialogId | None = None
    final_sent: bool = False


@dataclass(slots=True)
class _Pending2xx:
    data: bytes
    peer: Peer
    cseq: int
    interval: float
    give_up: float
    bye_wanted: bool = False


def _dialog_id_of(request: Request) -> DialogId:
    return DialogId(request.call_id(), request.to().tag or "", request.from_().tag or "")


def _warning_text(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:120]


def new_tag() -> str:
    """A From/To tag with 64 bits of randomness (RFC 3261 §19.3)."""
    return token_hex(8)


def new_branch() -> str:
    """A branch starting with the RFC 3261 magic cookie, unique in space and time (§8.1.1.7)."""
    return "z9hG4bK" + token_hex(10)
