"""What the four RFC 3261 §17 transaction machines share: states, inputs, dispatch, timers.

Theory of operation
-------------------
A transaction is a state machine fed *inputs*: a message from the network, a response from the
transaction user (TU), a timer firing, or a transport error. ``InputKind`` names them all and
``TransactionState`` names the states of RFC 3261 Figures 5-8 plus RFC 6026's "Accepted".

Each concrete machine has exactly one transition table, ``{(state, kind): handler}``.
``TransactionMachine.handle`` looks the pair up and calls the handler, which returns the
actions (``Transmit``) and TU events it produced. A pair missing from the table means:

* for a TU input (``SEND_*``), the TU asked for something this state forbids: raise
  ``LocalProtocolError`` and change nothing;
* for any other input, the peer (or a stale timer) sent something the RFC does not act on:
  ignore it and return ``[]``. Peer behaviour never raises.

Timers are stored on the machine as absolute deadlines (``timer_a`` .. ``timer_m``; None when
not armed). ``deadline`` is the earliest of them and ``fire_due(now)`` disarms and feeds every
timer that is due, earliest first. A machine never removes itself: it reaches ``TERMINATED``
and the layer that owns it forgets it. A wait of zero seconds (Timers D, I, J, K on a reliable
transport) moves to ``TERMINATED`` at once instead of arming a timer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import ClassVar, Self

from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import Peer, TransactionOutput, TransactionTimedOut, Transmit
from callserver.sip.message import Request, Response
from callserver.sip.timers import SipTimers
from callserver.sip.transaction_key import TransactionKey

__all__ = [
    "MAGIC_COOKIE",
    "InputKind",
    "TransactionFailed",
    "TransactionInput",
    "TransactionMachine",
    "TransactionState",
    "as_response",
    "response_input",
]

MAGIC_COOKIE = "z9hG4bK"
"""Every RFC 3261 branch begins with this (RFC 3261 §8.1.1.7)."""


class TransactionState(Enum):
    """Transaction states (RFC 3261 §17 Figures 5-8; ACCEPTED from RFC 6026 §7.1)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"


class InputKind(Enum):
    """Everything that can happen to a transaction."""

    RECV_1XX = "recv_1xx"
    RECV_2XX = "recv_2xx"
    RECV_3XX_6XX = "recv_3xx_6xx"
    RECV_REQUEST = "recv_request"
    RECV_ACK = "recv_ack"
    SEND_1XX = "send_1xx"
    SEND_2XX = "send_2xx"
    SEND_3XX_6XX = "send_3xx_6xx"
    TIMER_A = "timer_a"
    TIMER_B = "timer_b"
    TIMER_D = "timer_d"
    TIMER_E = "timer_e"
    TIMER_F = "timer_f"
    TIMER_G = "timer_g"
    TIMER_H = "timer_h"
    TIMER_I = "timer_i"
    TIMER_J = "timer_j"
    TIMER_K = "timer_k"
    TIMER_L = "timer_l"
    TIMER_M = "timer_m"
    TIMER_TRYING = "timer_trying"
    TRANSPORT_ERROR = "transport_error"
    CANCEL_SENT = "cancel_sent"  # the TU cancelled the INVITE (RFC 3261 §9.1)

    @property
    def from_tu(self) -> bool:
        """True for responses the transaction user passes down (a forbidden one raises)."""
        return self in _TU_INPUTS


_TU_INPUTS = frozenset({InputKind.SEND_1XX, InputKind.SEND_2XX, InputKind.SEND_3XX_6XX})


def response_input(status: int, *, from_tu: bool) -> InputKind:
    """The input kind of a response with ``status``, received or sent by the TU.

    Raises:
        LocalProtocolError: if ``status`` is outside 100-699 (RFC 3261 §7.2).
    """
    if not 100 <= status <= 699:
        raise LocalProtocolError(f"status code {status} is outside 100-699")
    if status < 200:
        return InputKind.SEND_1XX if from_tu else InputKind.RECV_1XX
    if status < 300:
        return InputKind.SEND_2XX if from_tu else InputKind.RECV_2XX
    return InputKind.SEND_3XX_6XX if from_tu else InputKind.RECV_3XX_6XX


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionInput:
    """One input for a machine: its kind and, for message inputs, the message and its peer."""

    kind: InputKind
    message: Request | Response | None = None
    peer: Peer | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionFailed(TransactionTimedOut):
    """The transport failed under a transaction, which is now terminated (RFC 3261 §17.1.4,
    §17.2.4).

    A ``TransactionTimedOut`` subclass, so a TU that ends a transaction on timeout also ends it
    here; a TU that wants RFC 3261 §8.1.3.1's 503 (rather than 408) checks for this class.
    """

    reason: str


class TransactionMachine(ABC):
    """State, request, peer and timers shared by the four transaction machines.

    Subclasses provide ``TIMERS`` (timer attribute name -> input kind, retransmit timers before
    the timeouts), ``transition_table()`` and ``start()``.
    """

    __slots__ = ("key", "peer", "reliable", "request", "retransmissions", "state", "timers")

    TIMERS: ClassVar[tuple[tuple[str, InputKind], ...]] = ()

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        timers: SipTimers,
        state: TransactionState,
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.timers = timers
        self.reliable = peer.reliable
        self.state = state
        self.retransmissions = 0

    @abstractmethod
    def transition_table(
        self,
    ) -> Mapping[
        tuple[TransactionState, InputKind],
        Callable[[Self, TransactionInput, float], list[TransactionOutput]],
    ]:
        """This machine's ``{(state, kind): handler}`` table (the only source of transitions)."""

    @abstractmethod
    def start(self, now: float) -> list[TransactionOutput]:
        """Enter the initial state at ``now``; return what must be sent first."""

    def handle(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """Apply one input at ``now``; return the actions and TU events it produced.

        Raises:
            LocalProtocolError: for a TU input the current state does not accept.
        """
        handler = self.transition_table().get((self.state, inp.kind))
        if handler is not None:
            return handler(self, inp, now)
        if inp.kind.from_tu:
            raise LocalProtocolError(
                f"{type(self).__name__}: {inp.kind.name} is not allowed in {self.state.name}"
            )
        return []

    @property
    def deadline(self) -> float | None:
        """The earliest armed timer's deadline, or None when no timer is armed."""
        best: float | None = None
        for name, _ in self.TIMERS:
            at: float | None = getattr(self, name)
            if at is not None and (best is None or at < best):
                best = at
        return best

    def fire_due(self, now: float) -> list[TransactionOutput]:
        """Fire every timer due at ``now``, earliest first; return what they produced."""
        out: list[TransactionOutput] = []
        while self.state is not TransactionState.TERMINATED:
            due = self._earliest_due(now)
            if due is None:
                break
            name, kind = due
            setattr(self, name, None)
            out.extend(self.handle(TransactionInput(kind=kind), now))
        return out

    def _earliest_due(self, now: float) -> tuple[str, InputKind] | None:
        # On a tie the later entry of TIMERS wins: a timeout (B, F, H) listed after its
        # retransmit timer (A, E, G) fires first, so no retransmission precedes a timeout.
        best: tuple[str, InputKind] | None = None
        best_at = now
        for name, kind in self.TIMERS:
            at: float | None = getattr(self, name)
            if at is not None and at <= best_at:
                best, best_at = (name, kind), at
        return best

    # -- helpers for the handlers ----------------------------------------------------------

    def _transmit(self, data: bytes) -> Transmit:
        return Transmit(data=data, peer=self.peer)

    def _retransmit(self, data: bytes) -> list[TransactionOutput]:
        self.retransmissions += 1
        return [self._transmit(data)]

    def _terminate(self) -> list[TransactionOutput]:
        self.state = TransactionState.TERMINATED
        for name, _ in self.TIMERS:
            setattr(self, name, None)
        return []

    def _ignore(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """An input the RFC says to absorb: nothing to do."""
        return []

    def _time_out(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """Timer B, F or H: inform the TU and terminate (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1)."""
        self._terminate()
        return [TransactionTimedOut(key=self.key, request=self.request)]

    def _transport_error(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """Inform the TU of the failure and terminate (RFC 3261 §17.1.4, §17.2.4)."""
        self._terminate()
        return [TransactionFailed(key=self.key, request=self.request, reason="transport error")]

    def _terminated_by_timer(self, inp: TransactionInput, now: float) -> list[TransactionOutput]:
        """Timer D, I, J, K, L or M: the wait is over; terminate silently."""
        return self._terminate()

    def _wait(self, name: str, now: float, duration: float) -> None:
        """Arm timer ``name`` for ``duration``; a zero wait terminates at once."""
        if duration <= 0:
            self._terminate()
        else:
            setattr(self, name, now + duration)


def as_response(inp: TransactionInput) -> Response:
    """The response carried by ``inp``.

    Raises:
        LocalProtocolError: if ``inp`` carries no response.
    """
    if not isinstance(inp.message, Response):
        raise LocalProtocolError(f"{inp.kind.name} needs a response")
    return inp.message
