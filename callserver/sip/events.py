"""Events and actions that cross the sans-IO SIP core's boundary (docs/architecture.md).

Inputs are past tense (``RequestReceived``), actions imperative (``Transmit``). Every event
that a datagram triggered carries ``rtime``, the monotonic time that datagram arrived.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.dialog import DialogId
from callserver.sip.message import Request, Response
from callserver.sip.peer import Peer
from callserver.sip.transaction_key import TransactionKey

__all__ = [
    "CloseConnection",
    "DialogConfirmed",
    "DialogTerminated",
    "InviteCancelled",
    "MessageDropped",
    "Peer",
    "RequestReceived",
    "ResponseReceived",
    "SipEvent",
    "TransactionOutput",
    "TransactionTerminated",
    "TransactionTimedOut",
    "Transmit",
    "TransportFailed",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Transmit:
    """Action: send these bytes to ``peer`` (already serialised, so retransmits are cheap)."""

    data: bytes
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageDropped:
    """Input could not be answered (no usable Via/From/To/Call-ID/CSeq) and was discarded."""

    reason: str
    peer: Peer


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived:
    """A new request for the transaction user; ``key`` names its server transaction.

    ``key`` is None for an ACK to a 2xx, which has no transaction of its own (RFC 3261 §17.1.1.3).
    """

    request: Request
    peer: Peer
    key: TransactionKey | None
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived:
    """A response for the transaction user; ``key`` names the client transaction (None if stray)."""

    response: Response
    peer: Peer
    key: TransactionKey | None
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut:
    """Timer B, F or H fired (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1); the TU treats it as 408."""

    key: TransactionKey
    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated:
    """A transaction reached Terminated and was forgotten (Kamailio's TransactionDeleted)."""

    key: TransactionKey


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed:
    """The transport could not deliver to ``peer`` (RFC 3261 §17.1.4, §18.4)."""

    peer: Peer
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteRefused:
    """A new INVITE was answered 503 without a transaction: the gate shed it (RFC 3261 §8.2.7).

    Its retransmissions are absorbed without another event; ``reason`` is the gate's.
    """

    request: Request
    peer: Peer
    reason: str
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class InviteCancelled:
    """A CANCEL matched a pending INVITE; the endpoint already answered 200 and 487 (§9.2)."""

    key: TransactionKey
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogConfirmed:
    """The dialog is up: the ACK for our 2xx arrived (UAS) or a 2xx arrived (UAC).

    ``rtime`` is when that ACK or 2xx arrived: the answer time billing uses. ``body`` is the
    ACK's: the answer to an offer we sent in a 2xx (RFC 3261 §13.2.1, §14.2), else empty.
    """

    dialog_id: DialogId
    rtime: float
    body: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class DialogTerminated:
    """The dialog ended; ``reason`` says why (``bye_received``, ``bye_sent``, ``ack_timeout``,
    ``session_expired``, ``refresh_failed``)."""

    dialog_id: DialogId
    reason: str
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CloseConnection:
    """Action: the peer on this stream sent something we will not parse; close it."""

    conn_id: int
    reason: str


SipEvent = (
    RequestReceived
    | ResponseReceived
    | TransactionTimedOut
    | InviteRefused
    | InviteCancelled
    | DialogConfirmed
    | DialogTerminated
    | MessageDropped
)
"""Every event ``SipEndpoint.next_event`` returns (``TransactionFailed`` is a
``TransactionTimedOut``)."""

TransactionOutput = (
    Transmit
    | RequestReceived
    | ResponseReceived
    | TransactionTimedOut
    | TransactionTerminated
    | MessageDropped
)
"""What the transaction layer returns for the endpoint to carry out (RFC 3261 §17)."""
