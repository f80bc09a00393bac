"""How the server is reached, and how it reaches others: the address it advertises, TCP
listener ids, the resolver for the transports and address families it has."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from typing import Protocol

from callserver.sip.events import Peer
from callserver.transport.resolver import SipResolver
from callserver.transport.settings import DnsSettings, ListenAddress

__all__ = [
    "Listener",
    "StreamSink",
    "advertised",
    "bind_failure",
    "resolver_for",
]


class StreamSink(Protocol):
    """Where a listener reports its connections' bytes (the server)."""

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Bytes arrived on a connection."""

    def stream_closed(self, peer: Peer) -> None:
        """A connection closed."""


def bind_failure(address: ListenAddress, error: OSError) -> str:
    """Why ``address`` could not be bound, in the system's words ("Address already in use").

    uvloop reports a failed bind without its errno ("could not bind to local_addr"); binding
    a plain socket to the same address again names the cause.
    """
    if error.strerror:
        return error.strerror
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    kind = socket.SOCK_DGRAM if address.transport == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(family, kind) as probe:
            probe.bind((address.host, address.port))
    except OSError as again:
        return again.strerror or str(again)
    return str(error)


def advertised(configured: str | None, listen: ListenAddress) -> str:
    """The address peers reach us at: the configured one, else the listen address."""
    if configured:
        return configured
    if listen.host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if listen.host == "::":
        return "::1"
    return listen.host


def resolver_for(
    listen: Sequence[ListenAddress], dns: DnsSettings, clock: Callable[[], float]
) -> SipResolver:
    """The RFC 3263 resolver for ``dns``, limited to what the server can send on.

    Transports are those it listens on (requests leave through those sockets). UDP leaves from
    a listening socket, so UDP decides the address families: ``::`` also sends to IPv4 (as
    v4-mapped addresses), any other address only to its own family; TCP connects from any.
    """
    udp = [ipaddress.ip_address(a.host) for a in listen if a.transport == "udp"]
    families = {a.version for a in udp} | {4 for a in udp if a == ipaddress.IPv6Address("::")}
    return SipResolver(
        clock=clock,
        nameservers=dns.addresses(),
        transports=dict.fromkeys(a.transport for a in listen),
        families=families or (4, 6),
        timeout=dns.timeout,
        cache_size=dns.cache_size,
    )


class Listener:
    """One of ``count`` TCP listeners, reporting its connections under server-wide ids.

    Each ``TcpTransport`` numbers its connections from 1, so with several listeners (IPv4 and
    IPv6, say) listener ``index`` reports its connection ``c`` as ``c * count + index``: the
    endpoint's framing buffers and ``CloseConnection`` then never mix two listeners' streams.
    """

    __slots__ = ("count", "index", "server")

    def __init__(self, server: StreamSink, index: int, count: int) -> None:
        self.server = server
        self.index = index
        self.count = count

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Bytes arrived on one of this listener's connections."""
        self.server.stream_data_received(data, self._outward(peer))

    def stream_closed(self, peer: Peer) -> None:
        """One of this listener's connections closed (or a connect from it failed)."""
        self.server.stream_closed(self._outward(peer))

    def _outward(self, peer: Peer) -> Peer:
        if peer.conn_id is None:
            return peer
        return Peer(peer.transport, peer.host, peer.port, peer.conn_id * self.count + self.index)
