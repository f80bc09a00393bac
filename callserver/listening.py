"""How the server is reached: the endpoint's config for its address, TCP listener ids."""

from __future__ import annotations

from typing import Protocol

from callserver.config import ListenAddress, Settings
from callserver.sip.endpoint import EndpointConfig
from callserver.sip.events import Peer
from callserver.sip.parser import ParseLimits
from callserver.sip.timers import SipTimers

__all__ = ["Listener", "StreamSink", "advertised", "endpoint_config"]


class StreamSink(Protocol):
    """Where a listener reports its connections' bytes (the server)."""

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Bytes arrived on a connection."""

    def stream_closed(self, peer: Peer) -> None:
        """A connection closed."""


def endpoint_config(settings: Settings, host: str, port: int) -> EndpointConfig:
    """Build the endpoint's config from settings and the address we are reached at."""
    sip = settings.sip
    return EndpointConfig(
        host=host,
        port=port,
        user_agent=sip.user_agent,
        timers=SipTimers(t1=sip.t1, t2=sip.t2, t4=sip.t4),
        limits=ParseLimits(
            max_message_bytes=sip.max_message_bytes,
            max_headers=sip.max_headers,
            max_header_line=sip.max_header_line,
        ),
        session_expires=sip.session_expires,
        min_se=sip.min_se,
    )


def advertised(settings: Settings, listen: ListenAddress) -> str:
    """The address peers reach us at: the configured one, else the listen address."""
    if settings.sip.advertised_address:
        return settings.sip.advertised_address
    if listen.host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if listen.host == "::":
        return "::1"
    return listen.host


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
