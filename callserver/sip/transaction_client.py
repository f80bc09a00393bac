"""Client transactions: INVITE (RFC 3261 §17.1.1, RFC 6026 §8.4) and non-INVITE (§17.1.2).

Theory of operation
-------------------
A client transaction owns one request we sent. It serialises the request once, at ``start``,
and retransmits those bytes over unreliable transports: Timer A doubles without limit for an
INVITE; Timer E doubles up to T2 for anything else (and stays at T2 once a provisional response
has arrived). Timer B / F end the attempt with ``TransactionTimedOut``.

A CANCEL the TU sent for an INVITE in Proceeding (``CANCEL_SENT``) arms Timer B again: with no
final response 64*T1 later the transaction times out and ends (RFC 3261 §9.1), so a peer that
answers the CANCEL but never the INVITE does not keep it forever.

Responses come in through ``handle`` as ``RECV_1XX`` / ``RECV_2XX`` / ``RECV_3XX_6XX`` and go
up to the TU as ``ResponseReceived`` with the transaction's key; retransmitted finals that the
RFC says to absorb are not passed up.

The INVITE machine differs in what follows a final response:

* 3xx-6xx: the transaction itself builds the ACK (§17.1.1.3), sends it, and sends the same
  bytes again for every retransmitted final response while Timer D runs.
* 2xx: RFC 6026 "Accepted": no ACK here (that is the TU's, §13.2.2.4); every further 2xx
  matching the transaction (retransmission or fork) goes up to the TU until Timer M fires.

Responses are matched to client transactions by the top Via branch and the CSeq method
(§17.1.3); ``ClientKey`` is that pair.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar, Final

from callserver.sip.events import Peer, ResponseReceived, TransactionOutput
from callserver.sip.message import Headers, Request, Response
from callserver.sip.timers import SipTimers
from callserver.sip.transaction_base import (
    InputKind,
    TransactionInput,
    TransactionMachine,
    TransactionState,
    as_response,
)
from callserver.sip.transaction_key import ClientKey

__all__ = [
    "ClientInviteTransaction",
    "ClientKey",
    "ClientNonInviteTransaction",
    "build_ack",
    "client_key_for_response",
]

S = TransactionState
K = InputKind


def client_key_for_response(response: Response) -> ClientKey | None:
    """The key of the client transaction ``response`` belongs to (RFC 3261 §17.1.3).

    Returns None when the top Via has no branch, so nothing can match.

    Raises:
        SipParseError: if the top Via or CSeq is missing or malformed.
    """
    branch = response.top_via().branch
    if not branch:
        return None
    return ClientKey(branch, response.cseq().method)


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK for a non-2xx final ``response`` to ``invite`` (RFC 3261 §17.1.1.3).

    It has the INVITE's Request-URI, Call-ID, From and CSeq number (method ACK), the To of the
    response (with its tag), a single Via equal to the INVITE's top Via, the INVITE's Route
    header fields ("the ACK MUST contain those header fields") and Max-Forwards.
    """
    top_via = invite.headers.values("Via")[0]
    headers = Headers([("Via", top_via)])
    headers.add("Max-Forwards", invite.headers.get("Max-Forwards") or "70")
    for route in invite.headers.get_all("Route"):
        headers.add("Route", route)
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", response.headers.get("To") or invite.headers.get("To") or "")
    headers.add("Call-ID", invite.headers.get("Call-ID") or "")
    headers.add("CSeq", f"{invite.cseq().seq} ACK")
    return Request("ACK", invite.uri, headers)


class _ClientTransaction(TransactionMachine):
    """Serialise-once request bytes and passing responses up."""

    __slots__ = ("_request_bytes",)

    INITIAL: ClassVar[TransactionState] = S.TRYING

    def __init__(self, key: ClientKey, request: Request, peer: Peer, timers: SipTimers) -> None:
        super().__init__(key, request, peer, timers, self.INITIAL)
        self._request_bytes = b""

    def _send_request(self) -> list[TransactionOutput]:
        self._request_bytes = self.request.serialize()
        return [self._transmit(self._request_bytes)]

    def _pass_up(self, inp: TransactionInput, now: float) -> ResponseReceived:
        return ResponseReceived(
            response=as_response(inp), peer=inp.peer or self.peer, key=self.key, rtime=now
        )


class ClientInviteTransaction(_ClientTransaction):
    """The INVITE client transaction (RFC 3261 §17.1.1 Figure 5, RFC 6026 §8.4 Figure 5)."""

    __slots__ = ("_a_interval", "_ack_bytes", "timer_a", "timer_b", "timer_d", "timer_m")

    INITIAL = S.CALLING
    TIMERS = (
        ("timer_a", K.TIMER_A),
        ("timer_b", K.TIMER_B),
        ("timer_d", K.TIMER_D),
        ("timer_m", K.TIMER_M),
    )

    def __init__(self, key: ClientKey, request: Request, peer: Peer, timers: SipTimers) -> None:
        super().__init__(key, request, peer, timers)
        self.timer_a: float | None = None
        self.timer_b: float | None = None
        self.timer_d: float | None = None
        self.timer_m: float | None = None
        self._a_interval = timers.timer_a
        self._ack_bytes = b""

    def transition_table(self) -> Mapping[tuple[S, K], _InviteHandler]:
        """The table of RFC 3261 Figure 5 as amended by RFC 6026 Figure 5."""
        return _INVITE_TABLE

    def start(self, now: float) -> list[TransactionOutput]:
        """Send the INVITE; start Timer A (unreliable only) and Timer B (§17.1.1.2)."""
        if not self.reliable:
            # "If an unreliable transport is being used, the client transaction MUST start
            # timer A with a value of T1."
            self.timer_a = now + self._a_interval
        # "For any transport, the client transaction MUST start timer B with a value of 64*T1."
        self.timer_b = now + self.timers.timer_b
        return self._send_request()

    def _on_timer_a(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "When timer A fires, the client transaction MUST retransmit the request ... and
        # MUST reset the timer with a value of 2*T1" (doubling again each time).
        self._a_interval *= 2
        self.timer_a = now + self._a_interval
        return self._retransmit(self._request_bytes)

    def _on_provisional(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        self.state = S.PROCEEDING
        self.timer_a = self.timer_b = None
        return [self._pass_up(inp, now)]

    def _on_provisional_again(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        return [self._pass_up(inp, now)]  # a Timer B armed by a CANCEL keeps running

    def _on_cancel_sent(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # RFC 3261 §9.1: "If no final response is received to the original request within
        # 64*T1 seconds after the CANCEL was sent, the client SHOULD then consider the
        # original transaction cancelled and SHOULD destroy the client transaction".
        self.timer_b = now + self.timers.timer_b
        return []

    def _on_2xx(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # RFC 6026 §8.4: enter "Accepted", pass the 2xx up, start Timer M; no ACK here.
        self.state = S.ACCEPTED
        self.timer_a = self.timer_b = None
        self.timer_m = now + self.timers.timer_m
        return [self._pass_up(inp, now)]

    def _on_2xx_accepted(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # RFC 6026 §8.4: "Any 2xx responses that match this client transaction and that are
        # received while in the "Accepted" state MUST be passed up to the TU."
        return [self._pass_up(inp, now)]

    def _on_final_error(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "The client transaction MUST pass the received response up to the TU, and the client
        # transaction MUST generate an ACK request, even if the transport is reliable."
        self.state = S.COMPLETED
        self.timer_a = self.timer_b = None
        self._ack_bytes = build_ack(self.request, as_response(inp)).serialize()
        # The ACK goes out before the TU sees the response, so a retry the TU sends at once
        # (a digest challenge answered) reaches the peer after the ACK, not before it.
        out: list[TransactionOutput] = [self._transmit(self._ack_bytes), self._pass_up(inp, now)]
        self._wait("timer_d", now, self.timers.timer_d_for(self.reliable))
        return out

    def _on_final_error_again(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "Any retransmissions of the final response that are received while in the
        # "Completed" state MUST cause the ACK to be re-passed to the transport layer ...
        # but the newly received response MUST NOT be passed up to the TU."
        return self._retransmit(self._ack_bytes)


class ClientNonInviteTransaction(_ClientTransaction):
    """The non-INVITE client transaction (RFC 3261 §17.1.2, Figure 6)."""

    __slots__ = ("_e_interval", "timer_e", "timer_f", "timer_k")

    INITIAL = S.TRYING
    TIMERS = (("timer_e", K.TIMER_E), ("timer_f", K.TIMER_F), ("timer_k", K.TIMER_K))

    def __init__(self, key: ClientKey, request: Request, peer: Peer, timers: SipTimers) -> None:
        super().__init__(key, request, peer, timers)
        self.timer_e: float | None = None
        self.timer_f: float | None = None
        self.timer_k: float | None = None
        self._e_interval = timers.timer_e

    def transition_table(self) -> Mapping[tuple[S, K], _NonInviteHandler]:
        """The table of RFC 3261 Figure 6."""
        return _NON_INVITE_TABLE

    def start(self, now: float) -> list[TransactionOutput]:
        """Send the request; start Timer E (unreliable only) and Timer F (§17.1.2.2)."""
        if not self.reliable:
            self.timer_e = now + self._e_interval
        self.timer_f = now + self.timers.timer_f
        return self._send_request()

    def _on_timer_e(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        if self.state is S.PROCEEDING:
            # "If Timer E fires while in the "Proceeding" state, the request MUST be passed to
            # the transport layer for retransmission, and Timer E MUST be reset with a value
            # of T2 seconds."
            self._e_interval = self.timers.t2
        else:
            # Trying: "the timer is reset, but this time with a value of MIN(2*T1, T2)", etc.
            self._e_interval = min(2 * self._e_interval, self.timers.t2)
        self.timer_e = now + self._e_interval
        return self._retransmit(self._request_bytes)

    def _on_provisional(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        self.state = S.PROCEEDING
        return [self._pass_up(inp, now)]

    def _on_final(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        # "the client transaction MUST transition to the "Completed" state" and pass the
        # response up; Timer K absorbs retransmitted finals (T4, zero when reliable).
        self.state = S.COMPLETED
        self.timer_e = self.timer_f = None
        out: list[TransactionOutput] = [self._pass_up(inp, now)]
        self._wait("timer_k", now, self.timers.timer_k_for(self.reliable))
        return out


_InviteHandler = Callable[
    [ClientInviteTransaction, TransactionInput, float], list[TransactionOutput]
]
_NonInviteHandler = Callable[
    [ClientNonInviteTransaction, TransactionInput, float], list[TransactionOutput]
]

_CI = ClientInviteTransaction
_INVITE_TABLE: Final[dict[tuple[S, K], _InviteHandler]] = {
    (S.CALLING, K.TIMER_A): _CI._on_timer_a,
    (S.CALLING, K.TIMER_B): _CI._time_out,
    (S.CALLING, K.TRANSPORT_ERROR): _CI._transport_error,
    (S.CALLING, K.RECV_1XX): _CI._on_provisional,
    (S.CALLING, K.RECV_2XX): _CI._on_2xx,
    (S.CALLING, K.RECV_3XX_6XX): _CI._on_final_error,
    (S.PROCEEDING, K.RECV_1XX): _CI._on_provisional_again,
    (S.PROCEEDING, K.RECV_2XX): _CI._on_2xx,
    (S.PROCEEDING, K.RECV_3XX_6XX): _CI._on_final_error,
    (S.PROCEEDING, K.CANCEL_SENT): _CI._on_cancel_sent,
    (S.PROCEEDING, K.TIMER_B): _CI._time_out,
    (S.COMPLETED, K.RECV_3XX_6XX): _CI._on_final_error_again,
    (S.COMPLETED, K.TRANSPORT_ERROR): _CI._transport_error,
    (S.COMPLETED, K.TIMER_D): _CI._terminated_by_timer,
    (S.ACCEPTED, K.RECV_2XX): _CI._on_2xx_accepted,
    (S.ACCEPTED, K.TIMER_M): _CI._terminated_by_timer,
}

_CN = ClientNonInviteTransaction
_NON_INVITE_TABLE: Final[dict[tuple[S, K], _NonInviteHandler]] = {
    (S.TRYING, K.TIMER_E): _CN._on_timer_e,
    (S.TRYING, K.TIMER_F): _CN._time_out,
    (S.TRYING, K.TRANSPORT_ERROR): _CN._transport_error,
    (S.TRYING, K.RECV_1XX): _CN._on_provisional,
    (S.TRYING, K.RECV_2XX): _CN._on_final,
    (S.TRYING, K.RECV_3XX_6XX): _CN._on_final,
    (S.PROCEEDING, K.TIMER_E): _CN._on_timer_e,
    (S.PROCEEDING, K.TIMER_F): _CN._time_out,
    (S.PROCEEDING, K.TRANSPORT_ERROR): _CN._transport_error,
    (S.PROCEEDING, K.RECV_1XX): _CN._on_provisional,
    (S.PROCEEDING, K.RECV_2XX): _CN._on_final,
    (S.PROCEEDING, K.RECV_3XX_6XX): _CN._on_final,
    # "any retransmissions of the final response that are received while in the
    # "Completed" state" are absorbed: explicitly ignored.
    (S.COMPLETED, K.RECV_2XX): _CN._ignore,
    (S.COMPLETED, K.RECV_3XX_6XX): _CN._ignore,
    (S.COMPLETED, K.TIMER_K): _CN._terminated_by_timer,
}
