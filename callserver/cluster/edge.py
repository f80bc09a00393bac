"""Who called: the caller's address of a request that may have come through the SIP edge.

Theory of operation
-------------------
Behind a Kamailio edge (deploy/kamailio) every request a node gets from outside arrives from
the edge's address, so that address says nothing about the caller. The edge removes any
``X-Callserver-Source`` a caller sent and sets its own, ``X-Callserver-Source: $si:$sp``: the
address the request reached the edge from. :func:`caller_address` is the one decision, pure:
given the request's source (the peer it arrived from), that header's value(s) and the node's
``cluster.edge`` settings, it returns the :class:`Caller` whose address the node takes for
trunk identification (trunks.yaml ``match``), call-rate buckets, the password-guessing lockout
and the registrar's REGISTER rate, or an :class:`EdgeRefusal`:

* from one of ``edge.addresses`` with exactly one header holding ``IP:PORT`` (``[IPv6]:PORT``
  or Kamailio's bare ``IPv6:PORT``): the header's address;
* from the edge without it, or with a value that is no address: 400 (the edge is
  misconfigured: nothing it forwards can be trusted to say who called);
* from anywhere else: the source itself, the header ignored (a caller that forged one is not
  believed); with ``edge.only``, no answer at all (``not_from_edge``): a scanner learns
  nothing.

Responses are not the caller's concern here: they go back the way the request came (its top
Via: the edge), as RFC 3261 §18.2.2 has it.

:class:`EdgeSources` is the node's use of it. Its :meth:`EdgeSources.accept` is the SIP
endpoint's request filter under ``edge.only``: a request that does not come from the edge is
forgotten before any transaction, answer or CDR exists, and counted, unless it belongs to a
dialog this node holds. That exception is the far end of a leg the node placed itself: nodes
send their own requests to trunks and routes directly, so a trunk's BYE or re-INVITE on such a
leg comes straight to the node. Its :meth:`EdgeSources.caller` is asked where a new INVITE, a
REGISTER or a SUBSCRIBE is identified (``calls.screening``): a refusal is answered (400) or
the request discarded there, and counted. Without ``edge.addresses`` none of this exists: the
node takes the source address as before and nothing runs per request.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Container
from dataclasses import dataclass
from typing import Protocol

import structlog

from callserver.config.cluster import EdgeSettings
from callserver.sip.dialog import DialogId
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.errors import SipParseError
from callserver.sip.events import Peer, RequestReceived
from callserver.sip.message import Request
from callserver.sip.transaction_key import TransactionKey

__all__ = [
    "Caller",
    "EdgeRefusal",
    "EdgeSources",
    "EdgeStatistics",
    "caller_address",
    "open_edge",
    "parse_source",
]

log = structlog.get_logger("callserver.cluster")


@dataclass(frozen=True, slots=True)
class Caller:
    """The address a request's caller is known by; ``through_edge`` when the edge said so."""

    host: str
    port: int
    through_edge: bool


@dataclass(frozen=True, slots=True)
class EdgeRefusal:
    """A request refused for where it came from: answered ``status``, or (None) not at all."""

    status: int | None
    reason: str  # not_from_edge, no_source_header, bad_source_header


NOT_FROM_EDGE = EdgeRefusal(None, "not_from_edge")
NO_SOURCE_HEADER = EdgeRefusal(400, "no_source_header")
BAD_SOURCE_HEADER = EdgeRefusal(400, "bad_source_header")


def caller_address(source: Peer, header: list[str], settings: EdgeSettings) -> Caller | EdgeRefusal:
    """The caller of a request from ``source`` whose ``settings.source_header`` fields hold
    ``header`` (every value, in order; none: an empty list); see the module docstring.

    Args:
        source: the peer the request arrived from (its transport's source address).
        header: the values of the edge's source header in the request.
        settings: the node's ``cluster.edge`` settings.

    Returns:
        The :class:`Caller`, or the :class:`EdgeRefusal` to give.
    """
    sources = settings.sources
    if (source.host, source.port) not in sources and (source.host, None) not in sources:
        if settings.only:
            return NOT_FROM_EDGE
        return Caller(source.host, source.port, through_edge=False)
    if not header:
        return NO_SOURCE_HEADER
    parsed = parse_source(header[0]) if len(header) == 1 else None
    if parsed is None:
        return BAD_SOURCE_HEADER
    return Caller(parsed[0], parsed[1], through_edge=True)


def parse_source(value: str) -> tuple[str, int] | None:
    """``(ip, port)`` of an ``IP:PORT`` header value (``[IPv6]:PORT`` or ``IPv6:PORT``, as
    Kamailio's ``$si:$sp`` writes an IPv6 source), the IP in canonical text; None when it is
    anything else."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return str(ipaddress.ip_address(host)), int(port)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class EdgeStatistics:
    """Requests dropped unanswered and answered 400, by reason, since start."""

    dropped: dict[str, int]
    refused: dict[str, int]


class Answering(Protocol):
    """What :class:`EdgeSources` answers a refused request with (the SIP endpoint)."""

    def respond(
        self,
        key: TransactionKey | None,
        status: int,
        now: float,
        *,
        reason: str | None = None,
    ) -> object:
        """Answer the request of server transaction ``key`` with ``status``."""

    def discard(self, key: TransactionKey | None, now: float) -> None:
        """Leave the request of ``key`` unanswered and forget it."""


class EdgeSources:
    """The node's side of the edge: its request filter and its callers' addresses.

    Args:
        settings: ``cluster.edge`` (with at least one address).
        endpoint: answers (400) or discards the requests :meth:`caller` refuses.
        dialogs: the endpoint's dialogs: a request of one of them passes the filter.
    """

    def __init__(
        self, settings: EdgeSettings, endpoint: Answering, dialogs: Container[DialogId]
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.dialogs = dialogs
        self._header = settings.source_header
        self._dropped: dict[str, int] = {}
        self._refused: dict[str, int] = {}

    def accept(self, request: Request, peer: Peer) -> bool:
        """False (counted) for a request the node drops before any work: under ``only``,
        one that is neither from the edge nor of a dialog this node holds."""
        if caller_address(peer, [], self.settings) is not NOT_FROM_EDGE:
            return True
        if self._of_a_dialog(request):
            return True
        self._dropped["not_from_edge"] = self._dropped.get("not_from_edge", 0) + 1
        return False

    def _of_a_dialog(self, request: Request) -> bool:
        try:
            to_tag, from_tag = request.to().tag, request.from_().tag
            if to_tag is None or from_tag is None:
                return False
            return DialogId(request.call_id(), to_tag, from_tag) in self.dialogs
        except SipParseError:
            return False

    def caller(self, event: RequestReceived, now: float) -> tuple[str, int] | None:
        """The caller's ``(host, port)`` of ``event``; None when it was refused here (400,
        or forgotten unanswered), counted by reason."""
        header = event.request.headers.get_all(self._header)
        found = caller_address(event.peer, header, self.settings)
        if isinstance(found, Caller):
            return found.host, found.port
        if found.status is None:
            self._dropped[found.reason] = self._dropped.get(found.reason, 0) + 1
            self.endpoint.discard(event.key, now)
        else:
            count = self._refused[found.reason] = self._refused.get(found.reason, 0) + 1
            if count == 1:  # the edge's configuration is wrong: say so once, count the rest
                log.error("edge.source_refused", reason=found.reason, edge=event.peer.host)
            reason = f"Missing or invalid {self._header}"
            self.endpoint.respond(event.key, found.status, now, reason=reason)
        return None

    def statistics(self) -> EdgeStatistics:
        """The counters since start."""
        return EdgeStatistics(dropped=dict(self._dropped), refused=dict(self._refused))


def open_edge(settings: EdgeSettings, endpoint: SipEndpoint) -> EdgeSources | None:
    """The node's :class:`EdgeSources` for ``settings`` (None without edge addresses: the
    source address is the caller's, nothing runs per request); under ``only`` its filter is
    put in front of ``endpoint``."""
    if not settings.addresses:
        return None
    edge = EdgeSources(settings, endpoint, endpoint.dialogs)
    if settings.only:
        endpoint.filter_requests(edge.accept)
    log.info("edge.configured", addresses=settings.addresses, only=settings.only)
    return edge
