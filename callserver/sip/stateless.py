"""Answering without a transaction: the stateless UAS of RFC 3261 §8.2.7.

``answer_unparsed`` answers a request that did not parse with its status hint, when the parts
a response needs did parse. The rest of this module refuses new INVITEs under overload.

Theory of operation
-------------------
Under overload the work a server transaction costs — its state, Timer G's retransmissions of
the final response over UDP, Timer H, the ACK it absorbs — is work the server does not have.
RFC 3261 §8.2.7 allows a UAS to answer without one: a stateless UAS "receives requests
directly from the transport layer and sends responses directly to the transport layer", and
"if a stateless UAS receives a retransmission of a request, it regenerates the response and
resends it, just as if it were replying to the first instance of the request".

``StatelessRefusals`` remembers, for each INVITE it refused, only the transaction key, the
To tag of its response and the gate's answer, for ``hold`` seconds (64*T1, the life of the
client transaction, RFC 3261 §17.1.1.2). A retransmission then gets the same response (same
tag), is not decided again and is not counted or recorded twice: it is absorbed. The To tags
of refusals start with a marker drawn once per process (32 random bits; another 32 follow
it), so the ACK for a refusal is recognised in the datagram's bytes and dropped before it
is parsed (``is_refusal_ack``): under overload, half the datagrams a refusal brings. The
memory is bounded: past ``limit`` keys the oldest are forgotten first (a retransmission of
one of those is decided afresh, as a new request).

What decides about a refusal is the gate (``Gate``), the application's: it sees the time
only, answers in microseconds, and returns a ``Shed`` (why, and the Retry-After to give) or
None to let the INVITE create its transaction as usual.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from callserver.sip.errors import SipParseError
from callserver.sip.events import Peer, Transmit
from callserver.sip.ids import new_tag
from callserver.sip.message import Request, Response
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.uas import build_response, response_peer

__all__ = ["Gate", "Shed", "StatelessRefusals", "refusal"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Shed:
    """A gate's refusal: ``reason`` for the logs and the CDR, ``retry_after`` in seconds."""

    reason: str
    retry_after: int


Gate = Callable[[float], Shed | None]  # (now) -> a refusal, or None to serve the INVITE


class StatelessRefusals:
    """The INVITEs refused without a transaction, each with its To tag, kept ``hold`` seconds.

    Args:
        hold: How long a refusal is remembered (64*T1).
        limit: Most refusals remembered at once.
    """

    def __init__(self, hold: float, limit: int = 65536) -> None:
        self._hold = hold
        self._limit = limit
        self._refused: OrderedDict[TransactionKey, tuple[float, str, Shed]] = OrderedDict()
        self._marker = new_tag()[:8]
        self._marked = f"tag={self._marker}".encode()

    def __len__(self) -> int:
        return len(self._refused)

    def find(self, key: TransactionKey, now: float) -> tuple[str, Shed] | None:
        """The To tag and refusal already given to the request of ``key``, or None."""
        self._expire(now)
        entry = self._refused.get(key)
        return None if entry is None else (entry[1], entry[2])

    def remember(self, key: TransactionKey, shed: Shed, now: float) -> str:
        """Record the refusal of ``key``'s request; returns the To tag its response carries."""
        tag = self._marker + new_tag()[:8]
        self._refused[key] = (now + self._hold, tag, shed)
        while len(self._refused) > self._limit:
            self._refused.popitem(last=False)
        return tag

    def is_refusal_ack(self, data: bytes) -> bool:
        """True for the datagram of an ACK to one of our refusals (its To tag has the marker)."""
        return data[:4] == b"ACK " and bool(self._refused) and self._marked in data

    def _expire(self, now: float) -> None:
        refused = self._refused
        while refused:
            key, (expires, _, _) = next(iter(refused.items()))
            if expires > now:
                return
            del refused[key]


def refusal(request: Request, shed: Shed, to_tag: str, server: str) -> Response:
    """The 503 for ``request`` (RFC 3261 §21.5.4) with ``Retry-After`` (§20.33)."""
    response = build_response(request, 503, to_tag=to_tag)
    response.headers.add("Server", server)
    response.headers.add("Retry-After", str(shed.retry_after))
    return response


def answer_unparsed(exc: SipParseError, peer: Peer, server: str) -> Transmit | None:
    """The response to a malformed request, with its status hint, or None to drop it.

    It can be answered when it is a request other than ACK, its top Via parses (the response
    must be routed) and From, To, Call-ID and CSeq are present, copied as they came (RFC 3261
    §8.2.6.2).
    """
    partial = exc.partial
    if not isinstance(partial, Request) or partial.method == "ACK":
        return None
    try:
        partial.top_via()
        target = response_peer(partial, peer)
    except SipParseError:
        return None
    if not all(name in partial.headers for name in ("From", "To", "Call-ID", "CSeq")):
        return None
    response = build_response(partial, exc.status_hint, to_tag=new_tag())
    response.headers.add("Server", server)
    response.headers.add("Warning", f'399 callserver "{_warning_text(str(exc))}"')
    return Transmit(data=response.serialize(), peer=target)


def _warning_text(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')[:120]
