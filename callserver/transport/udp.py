"""The asyncio UDP adapter: one socket, datagrams in and out (RFC 3261 §18.1.1, §18.2.1).

Theory of operation
-------------------
``UdpTransport`` owns one datagram socket and carries bytes only. Every datagram that arrives is
handed, as it is, to ``DatagramHandler.datagram_received`` together with the sender as a
``Peer("udp", host, port)``; the sans-IO core does all parsing and answers through ``send``.

A UDP peer going away is normal life, not an error: ``send`` never raises. Anything that stops a
datagram from leaving (an ICMP error reported by the kernel, a host that is not an IP literal, a
full write buffer) is counted in ``send_errors`` and logged once per kind of failure, so a dead
trunk cannot flood the log. Host names are resolved before a message is sent
(``transport.resolver``, RFC 3263, without blocking the loop), so one that still reaches
``send`` is refused rather than handed to ``sendto``, which would resolve it synchronously.

``receive_backlog`` reports the bytes waiting in the kernel's receive queue (Linux
``SO_MEMINFO``: buffer memory, a little over twice the datagrams' size): requests the loop has
not read yet, which no measure taken on the loop can see. Overload control reads it.

A socket bound to ``::`` on Linux also receives IPv4 traffic as v4-mapped addresses
(``::ffff:192.0.2.1``). Those are reported to the core as plain IPv4 (``192.0.2.1``) and mapped
back on the way out, so the core sees one spelling per peer whatever the bind address.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from dataclasses import dataclass
from typing import Protocol, cast

import structlog

from callserver.sip.events import Peer

__all__ = ["DatagramHandler", "UdpStatistics", "UdpTransport"]

_SO_MEMINFO = 55  # Linux, include/uapi/asm-generic/socket.h
_MEMINFO_SIZE = 9 * 4  # SK_MEMINFO_VARS u32 values; the first is the receive queue's memory

_log = structlog.get_logger("callserver.transport")

_V4_MAPPED = "::ffff:"


class DatagramHandler(Protocol):
    """What a ``UdpTransport`` delivers datagrams to (the sans-IO endpoint, wired by the app)."""

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        """Take one datagram; ``peer.transport`` is ``"udp"`` and ``peer.conn_id`` is None."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UdpStatistics:
    """Counters of one ``UdpTransport`` since it opened."""

    datagrams_in: int
    datagrams_out: int
    bytes_in: int
    bytes_out: int
    send_errors: int


class _UdpProtocol(asyncio.DatagramProtocol):
    """The asyncio side of ``UdpTransport``: counts traffic and calls the handler."""

    def __init__(self, handler: DatagramHandler) -> None:
        self.handler = handler
        self.family = socket.AF_INET
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.send_errors = 0
        self._logged_errors: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.family = transport.get_extra_info("socket").family

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.datagrams_in += 1
        self.bytes_in += len(data)
        host = str(addr[0])
        if host.startswith(_V4_MAPPED) and "." in host:
            host = host[len(_V4_MAPPED) :]
        peer = Peer("udp", host, int(addr[1]))
        try:
            self.handler.datagram_received(data, peer)
        except Exception:
            _log.exception("transport.handler_error", transport="udp", peer=peer)

    def error_received(self, exc: Exception) -> None:
        # The kernel reports ICMP errors (port unreachable, ...) for earlier datagrams here.
        self.record_send_error(type(exc).__name__, str(exc), None)

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            _log.error("transport.socket_lost", transport="udp", error=str(exc))

    def record_send_error(self, kind: str, detail: str, peer: Peer | None) -> None:
        """Count a datagram that could not leave; log the first failure of each kind only."""
        self.send_errors += 1
        if kind not in self._logged_errors:
            self._logged_errors.add(kind)
            _log.warning(
                "transport.send_failed", transport="udp", kind=kind, error=detail, peer=peer
            )


class UdpTransport:
    """A bound UDP socket that passes datagrams between the network and a ``DatagramHandler``.

    See RFC 3261 §18.1.1 and §18.2.1 (sending over UDP) and §18.1.2 / §18.2.2 (receiving).
    """

    def __init__(
        self, transport: asyncio.DatagramTransport, protocol: _UdpProtocol, max_write_buffer: int
    ) -> None:
        self._transport = transport
        self._protocol = protocol
        self._max_write_buffer = max_write_buffer
        # Both loops' UDP transports have it, though typeshed only declares it on WriteTransport.
        self._buffered = cast(asyncio.WriteTransport, transport).get_write_buffer_size
        sockname = transport.get_extra_info("sockname")
        self._local_address = (str(sockname[0]), int(sockname[1]))
        self._socket = transport.get_extra_info("socket")

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        handler: DatagramHandler,
        *,
        max_write_buffer: int = 1 << 20,
        receive_buffer: int = 4 << 20,
    ) -> UdpTransport:
        """Bind a UDP socket and start delivering datagrams to ``handler``.

        Args:
            host: IPv4 or IPv6 literal to bind (``0.0.0.0``, ``::``, ``127.0.0.1``, ``::1``).
            port: UDP port; 0 picks a free ephemeral port (see ``local_address``).
            handler: receives every datagram with its sender as a ``Peer``.
            max_write_buffer: bytes the socket may queue in user space when the kernel pushes
                back; datagrams beyond it are dropped and counted (SIP retransmits over UDP).
            receive_buffer: SO_RCVBUF asked of the kernel (capped by net.core.rmem_max), so a
                burst of requests waits in the kernel instead of being dropped.

        Returns:
            The open transport.

        Raises:
            OSError: the address cannot be bound.
        """
        loop = asyncio.get_running_loop()
        # The asyncio and uvloop transports both behave as DatagramTransport, though neither
        # subclasses it (CPython 3.11, uvloop), so no isinstance checks on them.
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(handler), local_addr=(host, port)
        )
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self = cls(transport, protocol, max_write_buffer)
        _log.info("transport.listening", transport="udp", address=self.local_address)
        return self

    def receive_backlog(self) -> int:
        """Bytes of buffer the datagrams not yet read take in the kernel (0 where unknown)."""
        if self._socket is None:
            return 0
        try:
            meminfo = self._socket.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO_SIZE)
        except OSError:  # not Linux, or a kernel before 4.6
            return 0
        return int(struct.unpack_from("=I", meminfo)[0])  # SK_MEMINFO_RMEM_ALLOC

    @property
    def local_address(self) -> tuple[str, int]:
        """The (host, port) the socket is bound to, with the real port when opened with 0."""
        return self._local_address

    def send(self, data: bytes, peer: Peer) -> None:
        """Send one datagram to ``peer`` (RFC 3261 §18.1.1, §18.2.2); never raises.

        Args:
            data: a complete, serialised SIP message.
            peer: destination; ``host`` must be an IP literal (``transport.resolver`` finds it).
        """
        protocol = self._protocol
        host = self._wire_host(peer.host)
        if host is None:
            protocol.record_send_error("not_an_ip_literal", peer.host, peer)
            return
        if self._transport.is_closing():
            protocol.record_send_error("transport_closed", "datagram dropped", peer)
            return
        if self._buffered() > self._max_write_buffer:
            protocol.record_send_error("write_buffer_full", "datagram dropped", peer)
            return
        try:
            self._transport.sendto(data, (host, peer.port))
        except (OSError, ValueError, TypeError, RuntimeError) as exc:
            protocol.record_send_error(type(exc).__name__, str(exc), peer)
            return
        protocol.datagrams_out += 1
        protocol.bytes_out += len(data)

    def _wire_host(self, host: str) -> str | None:
        # inet_pton is a cheap C check that the host is a literal, so sendto never resolves a name.
        if host.startswith("["):
            host = host[1:-1]
        if self._protocol.family == socket.AF_INET6:
            if "." in host and ":" not in host:
                host = _V4_MAPPED + host
            family = socket.AF_INET6
        else:
            family = socket.AF_INET
        try:
            socket.inet_pton(family, host.partition("%")[0])
        except OSError:
            return None
        return host

    def close(self) -> None:
        """Stop receiving and close the socket once datagrams already queued are written."""
        self._transport.close()

    def statistics(self) -> UdpStatistics:
        """Return the traffic and error counters since the transport opened."""
        p = self._protocol
        return UdpStatistics(
            datagrams_in=p.datagrams_in,
            datagrams_out=p.datagrams_out,
            bytes_in=p.bytes_in,
            bytes_out=p.bytes_out,
            send_errors=p.send_errors,
        )
