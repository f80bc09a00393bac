"""The server's SIP sockets: every UDP socket and TCP listener it opened, and which one a
message to a peer leaves on.

``SipSockets.open`` binds each listen address of the settings in order (a bind that fails
closes what was opened and names the address and the system's reason). ``send`` takes the
endpoint's actions: a UDP message leaves on the first socket of the peer's address family (an
IPv6 socket sends to IPv6 peers); a TCP message goes to the listener that owns the connection
(with several listeners, connection ids are server-wide: ``listening.Listener``), or, for a
new connection, to the first listener of the peer's family.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Literal, Protocol

from callserver.sip.events import CloseConnection, Peer, Transmit
from callserver.transport.listening import Listener, StreamSink, bind_failure
from callserver.transport.settings import ListenAddress
from callserver.transport.tcp import TcpTransport
from callserver.transport.udp import DatagramHandler, UdpTransport

__all__ = ["SipSockets", "SocketHandler"]


class SocketHandler(DatagramHandler, StreamSink, Protocol):
    """What the sockets report to: datagrams, and the bytes and ends of TCP connections."""


class SipSockets:
    """The listening sockets of one server; see the module docstring."""

    def __init__(self) -> None:
        self.udp: list[UdpTransport] = []
        self.tcp: list[TcpTransport] = []
        self._udp_by_family: dict[bool, UdpTransport] = {}  # is IPv6 -> first such socket
        self._tcp_by_family: dict[bool, TcpTransport] = {}

    async def open(
        self,
        listen: Sequence[ListenAddress],
        handler: SocketHandler,
        *,
        idle_timeout: float,
        max_connections: int,
    ) -> None:
        """Bind every address of ``listen`` in order.

        Raises:
            OSError: an address cannot be bound ("cannot listen on udp:...: reason"); the
                sockets opened before it are closed.
        """
        streams = sum(1 for address in listen if address.transport == "tcp")
        for address in listen:
            try:
                if address.transport == "udp":
                    udp = await UdpTransport.open(address.host, address.port, handler)
                    self.udp.append(udp)
                else:
                    sink = handler if streams == 1 else Listener(handler, len(self.tcp), streams)
                    tcp = await TcpTransport.open(
                        address.host,
                        address.port,
                        sink,
                        idle_timeout=idle_timeout,
                        max_connections=max_connections,
                    )
                    self.tcp.append(tcp)
            except OSError as exc:
                await self.close()
                reason = bind_failure(address, exc)
                raise OSError(exc.errno, f"cannot listen on {address}: {reason}") from exc
        self._udp_by_family = {":" in t.local_address[0]: t for t in reversed(self.udp)}
        self._tcp_by_family = {":" in t.local_address[0]: t for t in reversed(self.tcp)}

    @property
    def first_port(self) -> int:
        """The port of the first socket opened (the one a listen port 0 got)."""
        opened: list[UdpTransport | TcpTransport] = [*self.udp, *self.tcp]
        return opened[0].local_address[1]

    def describe(self) -> list[str]:
        """Every socket as a listen address (``udp:127.0.0.1:5060``), for the log."""
        described: list[tuple[Literal["udp", "tcp"], tuple[str, int]]]
        described = [("udp", t.local_address) for t in self.udp]
        described += [("tcp", t.local_address) for t in self.tcp]
        return [
            str(ListenAddress(transport=kind, host=host, port=port))
            for kind, (host, port) in described
        ]

    def receive_backlog(self) -> int:
        """Datagrams waiting in the kernel on every UDP socket."""
        return sum(udp.receive_backlog() for udp in self.udp)

    def send(self, action: Transmit | CloseConnection) -> None:
        """Send a message, or close the TCP connection the endpoint is done with."""
        if isinstance(action, CloseConnection):
            if self.tcp:
                tcp, local = self._tcp_for(Peer("tcp", "", 0, action.conn_id))
                tcp.close_connection(action.conn_id if local.conn_id is None else local.conn_id)
            return
        peer = action.peer
        if peer.transport == "udp":
            if len(self.udp) == 1:
                self.udp[0].send(action.data, peer)
            elif self.udp:
                self._udp_by_family.get(":" in peer.host, self.udp[0]).send(action.data, peer)
        elif self.tcp:
            tcp, peer = self._tcp_for(peer)
            tcp.send(action.data, peer)

    def _tcp_for(self, peer: Peer) -> tuple[TcpTransport, Peer]:
        """The listener a stream peer belongs to, and the peer under that listener's own id."""
        count = len(self.tcp)
        if count == 1:
            return self.tcp[0], peer
        if peer.conn_id is None:
            return self._tcp_by_family.get(":" in peer.host, self.tcp[0]), peer
        local = Peer(peer.transport, peer.host, peer.port, peer.conn_id // count)
        return self.tcp[peer.conn_id % count], local

    async def close(self) -> None:
        """Close every socket and listener (their connections too)."""
        for udp in self.udp:
            udp.close()
        for tcp in self.tcp:
            with contextlib.suppress(Exception):
                await tcp.aclose()
