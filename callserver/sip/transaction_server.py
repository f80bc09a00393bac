"""Server transactions: INVITE (RFC 3261 §17.2.1, RFC 6026 §8.5-8.7) and non-INVITE (§17.2.2).

Theory of operation
-------------------
A server transaction owns one request we received. The TU answers through ``handle`` with
``SEND_1XX`` / ``SEND_2XX`` / ``SEND_3XX_6XX``; each response is serialised once and the last
one's bytes are kept, so a retransmitted request (``RECV_REQUEST``) is answered by sending
those bytes again: the latest provisional while Proceeding, the final once Completed. A
completed non-INVITE transaction keeps nothing else for its Timer J (32 s over UDP): the
parsed request shrinks to its start line, which is most of a registration's memory in a
REGISTER storm.

The INVITE machine starts in Proceeding and sends 100 (Trying) after 200 ms unless the TU has
answered by then, or at once when the INVITE is retransmitted first: the RFC requires it unless
the TU answers within 200 ms, and a TU that answers at once spares a message per call.
After a 3xx-6xx it retransmits the final on Timer G (doubling, capped at T2) until the ACK
arrives (Confirmed, then Timer I) or Timer H gives up. After a 2xx it enters RFC 6026
"Accepted": retransmitted INVITEs are absorbed, further 2xx from the TU (the UAS core's 2xx
retransmissions) are sent, a matching ACK goes to the TU, and Timer L ends it.

Requests are matched to server transactions by §17.2.3: with an RFC 3261 branch (magic cookie)
the key is branch + sent-by + method (ACK and CANCEL look up the INVITE with method INVITE);
without one, the RFC 2543 key of Request-URI, To tag, From tag, Call-ID, CSeq number, top Via
and method is used. All lookups are dict lookups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final

from callserver.sip.events import Peer, RequestReceived, TransactionOutput
from callserver.sip.message import Headers, Request, Response
from callserver.sip.timers import SipTimers
from callserver.sip.transaction_base import (
    MAGIC_COOKIE,
    InputKind,
    TransactionInput,
    TransactionMachine,
    TransactionState,
    as_response,
)
from callserver.sip.transaction_key import LegacyServerKey, ServerKey, TransactionKey

__all__ = [
    "LegacyServerKey",
    "ServerInviteTransaction",
    "ServerKey",
    "ServerNonInviteTransaction",
    "build_trying",
    "match_ack",
    "server_key",
]

S = TransactionState
K = InputKind


def server_key(request: Request, method: str | None = None) -> ServerKey | LegacyServerKey:
    """The key of the server transaction ``request`` belongs to (RFC 3261 §17.2.3).

    ``method`` overrides the key's method; it defaults to the request's, except that an ACK
    looks up its INVITE. Pass ``"INVITE"`` to find the INVITE a CANCEL targets (§9.2).

    Raises:
        SipParseError: if a header field the key needs is missing or malformed.
    """
    if method is None:
        method = "INVITE" if request.method == "ACK" else request.method
    via = request.top_via()
    branch = via.branch
    if branch is not None and branch.startswith(MAGIC_COOKIE):
        return ServerKey(branch, via.host.lower(), via.port, method)
    return _legacy_key(request, method, request.to().tag or "")


def _legacy_key(request: Request, method: str, to_tag: str) -> LegacyServerKey:
    return LegacyServerKey(
        request_uri=str(request.uri),
        to_tag=to_tag,
        from_tag=request.from_().tag or "",
        call_id=request.call_id(),
        cseq=request.cseq().seq,
        top_via=str(request.top_via()),
        method=method,
    )


def match_ack(
    ack: Request, lookup: Callable[[TransactionKey], TransactionMachine | None]
) -> ServerInviteTransaction | None:
    """The INVITE server transaction an ACK belongs to, or None (RFC 3261 §17.2.3).

    With an RFC 2543 branch the ACK's To tag must equal the To tag of the response the
    transaction sent, which an initial INVITE's key (To tag empty) does not hold: so look up
    the ACK's own To tag first (re-INVITE) and then the empty one, checking the response's tag.

    Raises:
        SipParseError: if a header field the key needs is missing or malformed.
    """
    key = server_key(ack)
    found = lookup(key)
    if isinstance(key, LegacyServerKey) and not isinstance(found, ServerInviteTransaction):
        ack_tag = key.to_tag
        found = lookup(_legacy_key(ack, "INVITE", ""))
        if isinstance(found, ServerInviteTransaction) and found.response_to_tag != ack_tag:
            found = None
    return found if isinstance(found, ServerInviteTransaction) else None


def build_trying(request: Request) -> Response:
    """The 100 (Trying) a server transaction sends for ``request`` (RFC 3261 §8.2.6).

    Via (all values, in order), From, To, Call-ID, CSeq and Timestamp are copied; no To tag is
    added ("downgraded from MAY to SHOULD NOT", §17.2.1).
    """
    headers = Headers((name, value) for name, value in request.headers if name in _COPIED)
    return Response(100, "Trying", headers)


_COPIED = frozenset({"Via", "From", "To", "Call-ID", "CSeq", "Timestamp"})


class _ServerTransaction(TransactionMachine):
    """The last response sent, serialised once, for answering request retransmissions."""

    __slots__ = ("_last_bytes", "last_response")

    INITIAL: ClassVar[TransactionState] = S.TRYING

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, timers: SipTimers
    ) -> None:
        super().__init__(key, request, peer, timers, self.INITIAL)
        self.last_response: Response | None = None
        self._last_bytes = b""

    @property
    def response_to_tag(self) -> str | None:
        """The To tag of the last response sent (what an RFC 2543 ACK must carry)."""
        if self.last_response is None:
            return None
        return self.last_response.to().tag

    def _send(self, response: Response) -> list[TransactionOutput]:
        self.last_response = response
        self._last_bytes = response.serialize()
        return [self._transmit(self._last_bytes)]

    def _send_tu(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """A response from the TU that does not change the state: send it."""
        return self._send(as_response(inp))

    def _resend(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """A retransmitted request: send the last response again, if there is one."""
        return self._retransmit(self._last_bytes) if self._last_bytes else []


class ServerInviteTransaction(_ServerTransaction):
    """The INVITE server transaction (RFC 3261 §17.2.1 Figure 7, RFC 6026 §8.7 Figure 7)."""

    __slots__ = ("_g_interval", "timer_g", "timer_h", "timer_i", "timer_l", "timer_trying")

    INITIAL = S.PROCEEDING
    TIMERS = (
        ("timer_trying", K.TIMER_TRYING),
        ("timer_g", K.TIMER_G),
        ("timer_h", K.TIMER_H),
        ("timer_i", K.TIMER_I),
        ("timer_l", K.TIMER_L),
    )

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, timers: SipTimers
    ) -> None:
        super().__init__(key, request, peer, timers)
        self.timer_g: float | None = None
        self.timer_h: float | None = None
        self.timer_i: float | None = None
        self.timer_l: float | None = None
        self.timer_trying: float | None = None
        self._g_interval = timers.timer_g

    def transition_table(self) -> Mapping[tuple[S, K], _InviteHandler]:
        """The table of RFC 3261 Figure 7 as amended by RFC 6026 Figure 7."""
        return _INVITE_TABLE

    def start(self, now: float) -> list[TransactionOutput]:
        """Give the TU 200 ms to answer before sending 100 (Trying) (RFC 3261 §17.2.1)."""
        self.timer_trying = now + self.timers.timer_trying
        return []

    def _send_trying(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # The TU has not answered within 200 ms: "the server transaction MUST generate a
        # 100 (Trying) response".
        return self._send(build_trying(self.request))

    def _resend_or_trying(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # A retransmitted INVITE before the TU said anything: the 100 (Trying) is due now.
        if self._last_bytes:
            return self._resend(inp, now)
        self.timer_trying = None
        return self._send(build_trying(self.request))

    def _send_tu(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        self.timer_trying = None
        return super()._send_tu(inp, now)

    def _on_2xx(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # RFC 6026 §8.5: send it (the TU retransmits 2xx), move to "Accepted", start Timer L.
        self.timer_trying = None
        self.state = S.ACCEPTED
        self.timer_l = now + self.timers.timer_l
        return self._send(as_response(inp))

    def _on_final_error(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "the state machine MUST enter the "Completed" state, and the response MUST be passed
        # to the transport layer for transmission"; Timer G only for unreliable transports,
        # Timer H "to fire in 64*T1 seconds for all transports".
        self.state = S.COMPLETED
        self.timer_trying = None
        if not self.reliable:
            self.timer_g = now + self._g_interval
        self.timer_h = now + self.timers.timer_h
        return self._send(as_response(inp))

    def _on_timer_g(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "timer G is reset with a value that doubles, unless that value exceeds T2, in which
        # case it is reset with the value of T2."
        self._g_interval = min(2 * self._g_interval, self.timers.t2)
        self.timer_g = now + self._g_interval
        return self._retransmit(self._last_bytes)

    def _on_ack(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "If an ACK is received while the server transaction is in the "Completed" state, the
        # server transaction MUST transition to the "Confirmed" state"; Timer G is ignored.
        self.state = S.CONFIRMED
        self.timer_g = self.timer_h = None
        self._wait("timer_i", now, self.timers.timer_i_for(self.reliable))
        return []

    def _on_ack_accepted(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # RFC 6026 §8.7: an ACK matching the transaction in "Accepted" is passed to the TU.
        if not isinstance(inp.message, Request):
            return []
        peer = inp.peer or self.peer
        return [RequestReceived(request=inp.message, peer=peer, key=None, rtime=now)]


class ServerNonInviteTransaction(_ServerTransaction):
    """The non-INVITE server transaction (RFC 3261 §17.2.2, Figure 8)."""

    __slots__ = ("timer_j",)

    INITIAL = S.TRYING
    TIMERS = (("timer_j", K.TIMER_J),)

    def __init__(
        self, key: TransactionKey, request: Request, peer: Peer, timers: SipTimers
    ) -> None:
        super().__init__(key, request, peer, timers)
        self.timer_j: float | None = None

    def transition_table(self) -> Mapping[tuple[S, K], _NonInviteHandler]:
        """The table of RFC 3261 Figure 8."""
        return _NON_INVITE_TABLE

    def start(self, now: float) -> list[TransactionOutput]:
        """Enter Trying; nothing is sent until the TU answers (RFC 3261 §17.2.2)."""
        return []

    def _on_provisional(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        self.state = S.PROCEEDING
        return self._send(as_response(inp))

    def _on_final(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "the server transaction MUST enter the "Completed" state, and the response MUST be
        # passed to the transport layer"; Timer J: 64*T1 unreliable, zero reliable.
        self.state = S.COMPLETED
        out = self._send(as_response(inp))
        # From here on only the response's bytes are used (they answer retransmissions; no
        # ACK comes to a non-INVITE), for up to 32 s over UDP: the parsed request and the
        # response are let go, and the request keeps its start line for a TransactionFailed.
        self.last_response = None
        self.request = Request(self.request.method, self.request.uri)
        self._wait("timer_j", now, self.timers.timer_j_for(self.reliable))
        return out


_InviteHandler = Callable[
    [ServerInviteTransaction, TransactionInput, float], list[TransactionOutput]
]
_NonInviteHandler = Callable[
    [ServerNonInviteTransaction, TransactionInput, float], list[TransactionOutput]
]

_SI = ServerInviteTransaction
_INVITE_TABLE: Final[dict[tuple[S, K], _InviteHandler]] = {
    # "If a request retransmission is received while in the "Proceeding" state, the most
    # recent provisional response that was received from the TU MUST be passed to the
    # transport layer for retransmission."
    (S.PROCEEDING, K.RECV_REQUEST): _SI._resend_or_trying,
    (S.PROCEEDING, K.TIMER_TRYING): _SI._send_trying,
    (S.PROCEEDING, K.SEND_1XX): _SI._send_tu,
    (S.PROCEEDING, K.SEND_2XX): _SI._on_2xx,
    (S.PROCEEDING, K.SEND_3XX_6XX): _SI._on_final_error,
    (S.PROCEEDING, K.TRANSPORT_ERROR): _SI._transport_error,
    # "while in the "Completed" state, if a request retransmission is received, the server
    # SHOULD pass the response to the transport for retransmission."
    (S.COMPLETED, K.RECV_REQUEST): _SI._resend,
    (S.COMPLETED, K.RECV_ACK): _SI._on_ack,
    (S.COMPLETED, K.TIMER_G): _SI._on_timer_g,
    (S.COMPLETED, K.TIMER_H): _SI._time_out,
    (S.COMPLETED, K.TRANSPORT_ERROR): _SI._transport_error,
    # Confirmed absorbs ACK retransmissions (and any late INVITE retransmission).
    (S.CONFIRMED, K.RECV_ACK): _SI._ignore,
    (S.CONFIRMED, K.RECV_REQUEST): _SI._ignore,
    (S.CONFIRMED, K.TIMER_I): _SI._terminated_by_timer,
    # RFC 6026 §8.7: INVITE retransmissions "are absorbed entirely within the server
    # transaction"; "if the TU passes a 2xx response, the server transaction MUST pass the
    # response to the transport layer for transmission".
    (S.ACCEPTED, K.RECV_REQUEST): _SI._ignore,
    (S.ACCEPTED, K.RECV_ACK): _SI._on_ack_accepted,
    (S.ACCEPTED, K.SEND_2XX): _SI._send_tu,
    (S.ACCEPTED, K.TIMER_L): _SI._terminated_by_timer,
}

_SN = ServerNonInviteTransaction
_NON_INVITE_TABLE: Final[dict[tuple[S, K], _NonInviteHandler]] = {
    # "Once in the "Trying" state, any further request retransmissions are discarded."
    (S.TRYING, K.RECV_REQUEST): _SN._ignore,
    (S.TRYING, K.SEND_1XX): _SN._on_provisional,
    (S.TRYING, K.SEND_2XX): _SN._on_final,
    (S.TRYING, K.SEND_3XX_6XX): _SN._on_final,
    (S.PROCEEDING, K.RECV_REQUEST): _SN._resend,
    (S.PROCEEDING, K.SEND_1XX): _SN._on_provisional,
    (S.PROCEEDING, K.SEND_2XX): _SN._on_final,
    (S.PROCEEDING, K.SEND_3XX_6XX): _SN._on_final,
    (S.PROCEEDING, K.TRANSPORT_ERROR): _SN._transport_error,
    (S.COMPLETED, K.RECV_REQUEST): _SN._resend,
    # "Any other final responses passed by the TU to the server transaction MUST be
    # discarded while in the "Completed" state."
    (S.COMPLETED, K.SEND_2XX): _SN._ignore,
    (S.COMPLETED, K.SEND_3XX_6XX): _SN._ignore,
    (S.COMPLETED, K.TRANSPORT_ERROR): _SN._transport_error,
    (S.COMPLETED, K.TIMER_J): _SN._terminated_by_timer,
}
