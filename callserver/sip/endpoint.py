"""The SIP endpoint: the sans-IO facade an adapter drives (docs/architecture.md, "Sans-IO cores").

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
``bye``). Before a new INVITE gets a transaction it is put to the application's ``gate``
(overload control): one the gate refuses is answered 503 at once, statelessly
(``sip.stateless``, RFC 3261 §8.2.7), and reported as ``InviteRefused``. The UAC half lives
in ``uac_core`` and the timers of dialogs in ``dialog_timers``; what the three share is a
``TransactionUser`` (config, dialogs, transaction layer), and what they produce they write to
its ``Outbox``, which this facade drains: none of them calls back into the endpoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callserver.sip.dialog import DialogId, DialogState
from callserver.sip.dialog_timers import DialogTimers
from callserver.sip.endpoint_config import EndpointConfig
from callserver.sip.errors import SipParseError
from callserver.sip.events import (
    CloseConnection,
    InviteRefused,
    Peer,
    RequestReceived,
    ResponseReceived,
    SipEvent,
    TransactionOutput,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.framing import ReceiveBuffer
from callserver.sip.message import Request, Response
from callserver.sip.outbox import Outbox
from callserver.sip.parser import parse_message
from callserver.sip.stateless import Gate, StatelessRefusals, answer_unparsed, refusal
from callserver.sip.transaction import TransactionKey, TransactionLayer
from callserver.sip.transaction_server import server_key
from callserver.sip.transaction_user import TransactionUser
from callserver.sip.uac_core import UacCore
from callserver.sip.uas import response_peer, stamp_via
from callserver.sip.uas_core import UasCore

__all__ = ["EndpointConfig", "EndpointStatistics", "SipEndpoint"]


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
        self._tx = TransactionLayer(config.timers)
        self._outbox = outbox = Outbox()
        self._events = outbox.events
        self._timers = outbox.timers
        self._tu = tu = TransactionUser(config, self._tx, outbox)
        self._buffers: dict[int, ReceiveBuffer] = {}
        self.dialogs = tu.dialogs
        self._received = 0
        self._errors_answered = 0
        self.dialog_timers = DialogTimers(tu)
        self.uas = UasCore(tu, self.dialog_timers)
        self.uac = UacCore(tu, self.dialog_timers)
        tu.dialog_listeners = (
            self.uas.dialog_ended,
            self.dialog_timers.dialog_ended,
            self.uac.dialog_ended,
        )
        tu.transaction_listeners = (self.uas.forget, self.uac.forget)
        # The cores' own methods, without a hop through the facade.
        self.respond = self.uas.respond
        self.is_pending_invite = self.uas.is_pending_invite
        self.send_in_dialog = tu.send_in_dialog
        self.gate: Gate | None = None  # asked about every new INVITE (overload control)
        # Every parsed message goes here; ``filter_requests`` puts a filter in front of it.
        self._dispatch: Callable[[Request | Response, Peer, float], None] = self._dispatch_message
        self._accept: Callable[[Request, Peer], bool] | None = None
        self._refusals = StatelessRefusals(64 * config.timers.t1)
        self.refusal_acks = 0  # ACKs for refusals dropped before parsing

    @property
    def config(self) -> EndpointConfig:
        """Our address, identity, timers and limits (replaceable, e.g. once a port is bound)."""
        return self._tu.config

    @config.setter
    def config(self, config: EndpointConfig) -> None:
        self._tu.configure(config)

    # -- input -----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, peer: Peer, now: float) -> None:
        """Feed one UDP datagram that arrived at ``now`` (RFC 3261 §18.1.2, §18.2.1)."""
        self._received += 1
        if not data or (data[:1] in (b"\r", b"\n") and not data.strip(b"\r\n")):
            return  # keepalive CRLF (RFC 5626 §3.5.1)
        if self._refusals.is_refusal_ack(data):
            self.refusal_acks += 1  # the ACK for a 503 of overload control: nothing to do
            return
        try:
            message = parse_message(data, self._tu.config.limits, datagram=True)
        except SipParseError as exc:
            self._reject_unparsed(exc, peer)
            return
        self._dispatch(message, peer, now)

    def receive_stream_data(self, data: bytes, peer: Peer, now: float) -> None:
        """Feed bytes that arrived on stream connection ``peer.conn_id`` (RFC 3261 §18.3)."""
        conn_id = peer.conn_id if peer.conn_id is not None else -1
        buffer = self._buffers.get(conn_id)
        if buffer is None:
            buffer = self._buffers[conn_id] = ReceiveBuffer(self._tu.config.limits)
        try:
            buffer.feed(data)
            while (raw := buffer.next_message()) is not None:
                self._received += 1
                try:
                    message = parse_message(raw, self._tu.config.limits, datagram=False)
                except SipParseError as exc:
                    self._reject_unparsed(exc, peer)
                    continue
                self._dispatch(message, peer, now)
            for _ in range(buffer.take_pings()):
                self._outbox.transmits.append(Transmit(data=b"\r\n", peer=peer))
        except SipParseError as exc:
            self._tu.drop(str(exc), peer)
            self._buffers.pop(conn_id, None)
            self._outbox.transmits.append(CloseConnection(conn_id=conn_id, reason=str(exc)))

    def _reject_unparsed(self, exc: SipParseError, peer: Peer) -> None:
        """Answer a malformed request with its status hint if it can be answered; else drop."""
        transmit = answer_unparsed(exc, peer, self._tu.config.user_agent)
        if transmit is None:
            self._tu.drop(str(exc), peer)
            return
        self._errors_answered += 1
        self._outbox.transmits.append(transmit)

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
                self.uas.retransmit_2xx(ident, now)
            else:
                self.dialog_timers.fire(kind, ident, now)

    # -- output ----------------------------------------------------------------------------

    def next_event(self) -> SipEvent | None:
        """The next event for the application, or None."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Transmit | CloseConnection]:
        """Everything to transmit (and connections to close) since the last call."""
        outbox = self._outbox
        out, outbox.transmits = outbox.transmits, []
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
            messages_dropped=self._tu.dropped,
            parse_errors_answered=self._errors_answered,
            transactions=len(self._tx),
            dialogs=len(self.dialogs),
        )

    # -- UAS API ---------------------------------------------------------------------------

    def discard(self, key: TransactionKey | None, now: float) -> None:
        """Leave the request of server transaction ``key`` unanswered and forget it.

        Nothing is sent, not even a 100 (Trying) when this comes before its 200 ms (RFC 3261
        §17.2.1); see ``TransactionLayer.discard``. None (an ACK's) changes nothing.
        """
        if key is not None:
            self._apply(self.transactions.discard(key), now)

    def bye(self, dialog_id: DialogId, now: float) -> TransactionKey | None:
        """End a dialog with BYE (RFC 3261 §15.1.1); returns the BYE's transaction key.

        A no-op returning None for a dialog already gone.
        """
        dialog = self.dialogs.get(dialog_id)
        if dialog is None or dialog.state is DialogState.TERMINATED:
            return None
        if self.uas.defer_bye(dialog_id):
            return None  # sent once the ACK arrives (RFC 3261 §15)
        return self._tu.bye(dialog, now)

    def filter_requests(self, accept: Callable[[Request, Peer], bool]) -> None:
        """From now on a parsed request that ``accept`` refuses is forgotten before the
        transaction layer sees it: no transaction, no answer, no event (the application counts
        what it refused). Responses are not filtered. Without a filter nothing is asked."""
        self._accept = accept
        self._dispatch = self._filtered

    def _filtered(self, message: Request | Response, peer: Peer, now: float) -> None:
        assert self._accept is not None
        if isinstance(message, Request) and not self._accept(message, peer):
            return
        self._dispatch_message(message, peer, now)

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch_message(self, message: Request | Response, peer: Peer, now: float) -> None:
        if isinstance(message, Request):
            stamp_via(message, peer)
            key = self._new_invite_key(message) if self.gate is not None else None
            if key is not None and self._shed(message, key, peer, now):
                return
            self._apply(self._tx.receive_request(message, peer, now, key=key), now)
        else:
            self._apply(self._tx.receive_response(message, peer, now), now)

    @staticmethod
    def _new_invite_key(request: Request) -> TransactionKey | None:
        """The transaction key of an INVITE outside a dialog, the gate's to judge; else None
        (a re-INVITE, another method, or headers too broken to match: the layer answers)."""
        if request.method != "INVITE":
            return None
        try:
            return None if request.to().tag is not None else server_key(request)
        except SipParseError:
            return None

    def _shed(self, request: Request, key: TransactionKey, peer: Peer, now: float) -> bool:
        """A new INVITE the gate refuses: its 503 at once, without a transaction (§8.2.7).

        A retransmission of a refused INVITE gets the same response and no second event; one
        that already has a transaction goes on to it, unjudged.
        """
        assert self.gate is not None
        known = self._refusals.find(key, now)
        if known is None:
            if self._tx.has(key) or (shed := self.gate(now)) is None:
                return False
            known = self._refusals.remember(key, shed, now), shed
            refused = InviteRefused(request=request, peer=peer, reason=shed.reason, rtime=now)
            self._events.append(refused)
        tag, shed = known
        response = refusal(request, shed, tag, self._tu.config.user_agent)
        transmit = Transmit(data=response.serialize(), peer=response_peer(request, peer))
        self._outbox.transmits.append(transmit)
        return True

    def _apply(self, actions: list[TransactionOutput], now: float) -> None:
        """Carry out what the transaction layer returned: send, dispatch, forget."""
        transmits = self._outbox.transmits
        for action in actions:
            if isinstance(action, Transmit):
                transmits.append(action)
            elif isinstance(action, RequestReceived):
                self.uas.on_request(action, now)
            elif isinstance(action, ResponseReceived):
                self.uac.on_response(action, now)
            elif isinstance(action, TransactionTerminated):
                self.uas.forget(action.key)
                self.uac.forget(action.key)
            elif isinstance(action, TransactionTimedOut):
                self.uac.on_timeout(action, now)
            else:
                self._events.append(action)

    @property
    def transactions(self) -> TransactionLayer:
        """The transaction layer under this endpoint."""
        return self._tx
