"""The RFC 3261 §17 transaction layer: matching, the four machines, one timer heap.

Theory of operation
-------------------
``TransactionLayer`` is what the endpoint drives. It is sans-IO and synchronous: every entry
point takes ``now`` and returns a list of actions (``Transmit``) and TU events
(``RequestReceived``, ``ResponseReceived``, ``TransactionTimedOut``, ``TransactionFailed``,
``TransactionTerminated``) in the order they happened.

* Matching is two dict lookups at most: requests by §17.2.3 (``server_key``, ``match_ack``),
  responses by §17.1.3 (``client_key_for_response``). An incoming request that matches a
  transaction is a retransmission (or the ACK for a non-2xx) and never reaches the TU; one
  that matches nothing creates a server transaction and reaches the TU as ``RequestReceived``.
  An ACK that matches nothing is the ACK for a 2xx and reaches the TU with ``key=None``; a
  response that matches nothing (a stray 2xx) reaches it with ``key=None``.
* Every machine's earliest deadline is kept in one ``TimerHeap`` keyed by transaction key and
  re-scheduled after each input, so ``get_timer`` and ``handle_timer`` only touch due entries.
* A machine that reaches Terminated is removed from every index at once and
  ``TransactionTerminated`` is emitted, so memory is bounded by live transactions.

The machines live in ``transaction_client`` and ``transaction_server``; the shared vocabulary
in ``transaction_base``. This module re-exports what the TU needs.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import (
    MessageDropped,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionOutput,
    TransactionTerminated,
    TransactionTimedOut,
)
from callserver.sip.message import Request, Response
from callserver.sip.timers import SipTimers, TimerHeap
from callserver.sip.transaction_base import (
    MAGIC_COOKIE,
    InputKind,
    TransactionFailed,
    TransactionInput,
    TransactionMachine,
    TransactionState,
    response_input,
)
from callserver.sip.transaction_client import (
    ClientInviteTransaction,
    ClientKey,
    ClientNonInviteTransaction,
    build_ack,
    client_key_for_response,
)
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.transaction_server import (
    LegacyServerKey,
    ServerInviteTransaction,
    ServerKey,
    ServerNonInviteTransaction,
    build_trying,
    match_ack,
    server_key,
)

__all__ = [
    "ClientInviteTransaction",
    "ClientKey",
    "ClientNonInviteTransaction",
    "InputKind",
    "LegacyServerKey",
    "ServerInviteTransaction",
    "ServerKey",
    "ServerNonInviteTransaction",
    "SipTimers",
    "TransactionFailed",
    "TransactionInput",
    "TransactionKey",
    "TransactionLayer",
    "TransactionMachine",
    "TransactionState",
    "TransactionStatistics",
    "build_ack",
    "build_trying",
]

_SERVER = (ServerInviteTransaction, ServerNonInviteTransaction)
_CLIENT = (ClientInviteTransaction, ClientNonInviteTransaction)


@dataclass(frozen=True, slots=True)
class TransactionStatistics:
    """Counters of a ``TransactionLayer``.

    The first four are live transactions per machine type; ``timer_entries`` is the size of the
    timer heap (stale entries included) and ``timer_pops`` how many entries timer handling has
    ever removed from it, i.e. what ``get_timer``/``handle_timer`` have cost so far.
    """

    client_invite: int
    client_non_invite: int
    server_invite: int
    server_non_invite: int
    created: int
    terminated: int
    timed_out: int
    failed: int
    retransmissions: int
    unmatched_responses: int
    unmatched_acks: int
    timer_entries: int
    timer_pops: int


class TransactionLayer:
    """All transactions of one endpoint (RFC 3261 §17); every method is synchronous."""

    def __init__(self, timers: SipTimers) -> None:
        self.timers = timers
        self._transactions: dict[TransactionKey, TransactionMachine] = {}
        self._by_peer: dict[Peer, dict[TransactionKey, None]] = {}
        self._heap: TimerHeap[TransactionKey] = TimerHeap()
        self._live: dict[type[TransactionMachine], int] = dict.fromkeys((*_CLIENT, *_SERVER), 0)
        self._count = dict.fromkeys(
            (
                "created",
                "terminated",
                "timed_out",
                "failed",
                "retransmissions",
                "unmatched_responses",
                "unmatched_acks",
            ),
            0,
        )

    def __len__(self) -> int:
        return len(self._transactions)

    # -- network input ---------------------------------------------------------------------

    def receive_request(
        self, request: Request, peer: Peer, now: float, *, key: TransactionKey | None = None
    ) -> list[TransactionOutput]:
        """Match an incoming request to a server transaction or create one (RFC 3261 §17.2.3).

        ``key`` is the request's ``server_key`` when the caller has it already.

        Returns:
            For a retransmission or the ACK for a non-2xx: only what the transaction sends.
            For a new request: ``RequestReceived(key=...)`` then, for an INVITE, the 100.
            For an ACK matching nothing (the ACK for a 2xx): ``RequestReceived(key=None)``.

        Raises:
            SipParseError: if the top Via, From, To, Call-ID or CSeq needed to match is bad.
        """
        if request.method == "ACK":
            return self._receive_ack(request, peer, now)
        if key is None:
            key = server_key(request)
        txn = self._transactions.get(key)
        if txn is not None:
            inp = TransactionInput(kind=InputKind.RECV_REQUEST, message=request, peer=peer)
            return self._feed(txn, inp, now)
        cls = ServerInviteTransaction if request.method == "INVITE" else ServerNonInviteTransaction
        txn = cls(key, request, peer, self.timers)
        self._add(txn)
        received = RequestReceived(request=request, peer=peer, key=key, rtime=now)
        return [received, *self._start(txn, now)]

    def receive_response(
        self, response: Response, peer: Peer, now: float
    ) -> list[TransactionOutput]:
        """Match an incoming response to a client transaction (RFC 3261 §17.1.3).

        Returns:
            ``ResponseReceived(key=...)`` when the transaction passes it up (and the ACK's
            ``Transmit`` for a non-2xx final to an INVITE); only the re-sent ACK for an
            absorbed retransmission; ``ResponseReceived(key=None)`` when nothing matches;
            ``MessageDropped`` for a status code outside 100-699.

        Raises:
            SipParseError: if the top Via or CSeq needed to match is malformed.
        """
        if not 100 <= response.status <= 699:
            return [MessageDropped(reason=f"status code {response.status}", peer=peer)]
        key = client_key_for_response(response)
        txn = self._transactions.get(key) if key is not None else None
        if not isinstance(txn, _CLIENT):
            self._count["unmatched_responses"] += 1
            return [ResponseReceived(response=response, peer=peer, key=None, rtime=now)]
        kind = response_input(response.status, from_tu=False)
        return self._feed(txn, TransactionInput(kind=kind, message=response, peer=peer), now)

    def transport_failed(self, peer: Peer, now: float) -> list[TransactionOutput]:
        """Report a transport error to every transaction with ``peer`` (RFC 3261 §17.1.4,
        §17.2.4); those whose state acts on it emit ``TransactionFailed`` and terminate."""
        out: list[TransactionOutput] = []
        for key in list(self._by_peer.get(peer, ())):
            txn = self._transactions.get(key)
            if txn is not None:
                inp = TransactionInput(kind=InputKind.TRANSPORT_ERROR, peer=peer)
                out.extend(self._feed(txn, inp, now))
        return out

    # -- TU input --------------------------------------------------------------------------

    def send_request(
        self, request: Request, peer: Peer, now: float
    ) -> tuple[ClientKey, list[TransactionOutput]]:
        """Create the client transaction for ``request`` and send it (RFC 3261 §17.1).

        Returns:
            The transaction key and the actions (the request's ``Transmit``).

        Raises:
            LocalProtocolError: for an ACK (the ACK for a 2xx is no transaction, §17.1.1.3),
                a branch without the magic cookie (§8.1.1.7 "MUST begin with z9hG4bK"), a CSeq
                method that differs from the request method, or a key already in use.
        """
        if request.method == "ACK":
            raise LocalProtocolError("an ACK is sent by the TU directly, not as a transaction")
        branch = request.top_via().branch
        if branch is None or not branch.startswith(MAGIC_COOKIE):
            raise LocalProtocolError(f"branch {branch!r} does not begin with {MAGIC_COOKIE}")
        if request.cseq().method != request.method:
            raise LocalProtocolError("CSeq method differs from the request method")
        key = ClientKey(branch, request.method)
        if key in self._transactions:
            raise LocalProtocolError(f"a client transaction with branch {branch} exists")
        cls = ClientInviteTransaction if request.method == "INVITE" else ClientNonInviteTransaction
        txn = cls(key, request, peer, self.timers)
        self._add(txn)
        return key, self._start(txn, now)

    def send_response(
        self, key: TransactionKey, response: Response, now: float
    ) -> list[TransactionOutput]:
        """Send ``response`` through server transaction ``key`` (RFC 3261 §17.2).

        Raises:
            LocalProtocolError: if ``key`` names no live server transaction, or its state does
                not accept this response (e.g. a 1xx after the final).
        """
        txn = self._transactions.get(key)
        if not isinstance(txn, _SERVER):
            raise LocalProtocolError(f"no live server transaction {key!r}")
        kind = response_input(response.status, from_tu=True)
        return self._feed(txn, TransactionInput(kind=kind, message=response), now)

    def cancel_sent(self, key: TransactionKey, now: float) -> list[TransactionOutput]:
        """The TU sent a CANCEL for INVITE client transaction ``key``: without a final
        response 64*T1 from ``now`` it times out and ends (RFC 3261 §9.1). A key that names
        no live transaction, or one past Proceeding, changes nothing."""
        txn = self._transactions.get(key)
        if not isinstance(txn, ClientInviteTransaction):
            return []
        return self._feed(txn, TransactionInput(kind=InputKind.CANCEL_SENT), now)

    def discard(self, key: TransactionKey) -> list[TransactionOutput]:
        """Forget server transaction ``key`` without answering its request.

        For a request the TU will not answer at all (a source refused for abuse, RFC 3261
        §26.3.2.4 leaves such defences to the implementation): nothing is sent, a
        retransmission of the request starts a new transaction. A key that names no live
        server transaction changes nothing.

        Returns:
            ``TransactionTerminated`` for the forgotten transaction, or nothing.
        """
        txn = self._transactions.get(key)
        if not isinstance(txn, _SERVER):
            return []
        self._remove(txn)
        return [TransactionTerminated(key=key)]

    def find_invite_for_cancel(self, cancel: Request) -> TransactionKey | None:
        """The key of the INVITE server transaction ``cancel`` targets, or None (RFC 3261 §9.2).

        Raises:
            SipParseError: if a header field the match needs is malformed.
        """
        key = server_key(cancel, method="INVITE")
        return key if isinstance(self._transactions.get(key), ServerInviteTransaction) else None

    def has(self, key: TransactionKey) -> bool:
        """True while transaction ``key`` is alive."""
        return key in self._transactions

    def request_for(self, key: TransactionKey) -> Request:
        """The request that created transaction ``key``.

        Raises:
            LocalProtocolError: if ``key`` names no live transaction, or a non-INVITE server
                transaction that has sent its final response (it keeps only those bytes).
        """
        txn = self._transactions.get(key)
        if txn is None:
            raise LocalProtocolError(f"no live transaction {key!r}")
        if isinstance(txn, ServerNonInviteTransaction) and txn.state is TransactionState.COMPLETED:
            raise LocalProtocolError(f"transaction {key!r} has sent its final response")
        return txn.request

    def state_of(self, key: TransactionKey) -> TransactionState | None:
        """The state of transaction ``key``, or None once it is gone."""
        txn = self._transactions.get(key)
        return None if txn is None else txn.state

    # -- time ------------------------------------------------------------------------------

    def handle_timer(self, now: float) -> list[TransactionOutput]:
        """Fire every timer due at ``now`` (RFC 3261 §17, Table 4); O(log n) per due entry.

        Returns:
            Retransmissions, ``TransactionTimedOut`` and ``TransactionTerminated`` events.
        """
        out: list[TransactionOutput] = []
        while (key := self._heap.pop_due(now)) is not None:
            txn = self._transactions.get(key)
            if txn is not None:
                before = txn.retransmissions
                out.extend(self._settle(txn, before, txn.fire_due(now)))
        return out

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction (absolute, like ``now``), or None."""
        return self._heap.earliest()

    def statistics(self) -> TransactionStatistics:
        """A snapshot of the layer's counters."""
        c = self._count
        return TransactionStatistics(
            client_invite=self._live[ClientInviteTransaction],
            client_non_invite=self._live[ClientNonInviteTransaction],
            server_invite=self._live[ServerInviteTransaction],
            server_non_invite=self._live[ServerNonInviteTransaction],
            created=c["created"],
            terminated=c["terminated"],
            timed_out=c["timed_out"],
            failed=c["failed"],
            retransmissions=c["retransmissions"],
            unmatched_responses=c["unmatched_responses"],
            unmatched_acks=c["unmatched_acks"],
            timer_entries=self._heap.entries,
            timer_pops=self._heap.pops,
        )

    # -- internals -------------------------------------------------------------------------

    def _receive_ack(self, ack: Request, peer: Peer, now: float) -> list[TransactionOutput]:
        txn = match_ack(ack, self._transactions.get)
        if txn is None:
            self._count["unmatched_acks"] += 1
            return [RequestReceived(request=ack, peer=peer, key=None, rtime=now)]
        inp = TransactionInput(kind=InputKind.RECV_ACK, message=ack, peer=peer)
        return self._feed(txn, inp, now)

    def _start(self, txn: TransactionMachine, now: float) -> list[TransactionOutput]:
        return self._settle(txn, 0, txn.start(now))

    def _feed(
        self, txn: TransactionMachine, inp: TransactionInput, now: float
    ) -> list[TransactionOutput]:
        before = txn.retransmissions
        return self._settle(txn, before, txn.handle(inp, now))

    def _settle(
        self, txn: TransactionMachine, before: int, out: list[TransactionOutput]
    ) -> list[TransactionOutput]:
        """Account for what ``txn`` just did; forget it if it terminated, else re-arm it."""
        self._count["retransmissions"] += txn.retransmissions - before
        for event in out:
            if isinstance(event, TransactionFailed):
                self._count["failed"] += 1
            elif isinstance(event, TransactionTimedOut):
                self._count["timed_out"] += 1
        if txn.state is TransactionState.TERMINATED:
            self._remove(txn)
            out.append(TransactionTerminated(key=txn.key))
        else:
            self._heap.schedule(txn.key, txn.deadline)
        return out

    def _add(self, txn: TransactionMachine) -> None:
        self._transactions[txn.key] = txn
        self._by_peer.setdefault(txn.peer, {})[txn.key] = None
        self._live[type(txn)] += 1
        self._count["created"] += 1

    def _remove(self, txn: TransactionMachine) -> None:
        del self._transactions[txn.key]
        keys = self._by_peer[txn.peer]
        del keys[txn.key]
        if not keys:
            del self._by_peer[txn.peer]
        self._heap.schedule(txn.key, None)
        self._live[type(txn)] -= 1
        self._count["terminated"] += 1
