"""Tests for the asyncio UDP adapter (callserver.transport.udp)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from structlog.testing import capture_logs

from callserver.sip.events import Peer
from callserver.transport.udp import UdpStatistics, UdpTransport

WAIT = 5.0


class Recorder:
    """A DatagramHandler that queues what it receives."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[tuple[bytes, Peer]] = asyncio.Queue()

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        self.received.put_nowait((data, peer))

    async def next(self) -> tuple[bytes, Peer]:
        async with asyncio.timeout(WAIT):
            return await self.received.get()


class Echo:
    """A DatagramHandler that sends every datagram back to where it came from."""

    def __init__(self) -> None:
        self.transport: UdpTransport | None = None
        self.peers: list[Peer] = []

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        self.peers.append(peer)
        assert self.transport is not None
        self.transport.send(data, peer)


class FailsFirst(Recorder):
    """A DatagramHandler whose first call raises, as a buggy core might."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("core bug")
        super().datagram_received(data, peer)


@asynccontextmanager
async def udp(host: str, handler: Recorder | Echo) -> AsyncIterator[UdpTransport]:
    """Open a UdpTransport on an ephemeral port and close it afterwards."""
    transport = await UdpTransport.open(host, 0, handler)
    if isinstance(handler, Echo):
        handler.transport = transport
    try:
        yield transport
    finally:
        transport.close()


def ipv6_loopback_available() -> bool:
    """True when this machine can bind ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def dual_stack_available() -> bool:
    """True when an IPv6 UDP socket bound to :: also receives IPv4 (IPV6_V6ONLY off)."""
    if not ipv6_loopback_available():
        return False
    with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as sock:
        return sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


def closed_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_local_address_reports_the_ephemeral_port() -> None:
    """Opening on port 0 binds a real port, which local_address reports."""
    async with udp("127.0.0.1", Recorder()) as transport:
        host, port = transport.local_address
    assert host == "127.0.0.1"
    assert port > 0


async def test_datagram_echoes_through_the_handler() -> None:
    """A datagram reaches the handler with a udp Peer, and send() takes the answer back."""
    echo, client_rx = Echo(), Recorder()
    async with udp("127.0.0.1", echo) as server, udp("127.0.0.1", client_rx) as client:
        server_port = server.local_address[1]
        client.send(b"OPTIONS sip:a@b SIP/2.0\r\n\r\n", Peer("udp", "127.0.0.1", server_port))
        data, peer = await client_rx.next()
    assert data == b"OPTIONS sip:a@b SIP/2.0\r\n\r\n"
    assert peer == Peer("udp", "127.0.0.1", server_port)
    assert echo.peers == [Peer("udp", "127.0.0.1", client.local_address[1], None)]


async def test_statistics_count_datagrams_and_bytes() -> None:
    """Both ends count datagrams and bytes in each direction."""
    echo, client_rx = Echo(), Recorder()
    async with udp("127.0.0.1", echo) as server, udp("127.0.0.1", client_rx) as client:
        target = Peer("udp", "127.0.0.1", server.local_address[1])
        for payload in (b"one", b"three"):
            client.send(payload, target)
            await client_rx.next()
        server_stats, client_stats = server.statistics(), client.statistics()
    expected = UdpStatistics(
        datagrams_in=2, datagrams_out=2, bytes_in=8, bytes_out=8, send_errors=0
    )
    assert server_stats == expected
    assert client_stats == expected


async def test_send_to_a_closed_port_does_not_raise() -> None:
    """Sending to a port nobody listens on neither raises nor breaks the socket."""
    echo, client_rx = Echo(), Recorder()
    async with udp("127.0.0.1", echo) as server, udp("127.0.0.1", client_rx) as client:
        for _ in range(3):
            client.send(b"ping", Peer("udp", "127.0.0.1", closed_udp_port()))
        client.send(b"still alive", Peer("udp", "127.0.0.1", server.local_address[1]))
        data, _ = await client_rx.next()
        stats = client.statistics()
    assert data == b"still alive"
    assert stats.datagrams_out + stats.send_errors == 4


async def test_send_to_a_host_name_is_refused_counted_and_logged_once() -> None:
    """A host that is not an IP literal is never resolved: each send counts, one log line."""
    async with udp("127.0.0.1", Recorder()) as transport:
        with capture_logs() as logs:
            transport.send(b"x", Peer("udp", "sip.example.invalid", 5060))
            transport.send(b"x", Peer("udp", "sip.example.invalid", 5060))
        stats = transport.statistics()
    assert stats.send_errors == 2
    assert stats.datagrams_out == 0
    failures = [entry for entry in logs if entry["event"] == "transport.send_failed"]
    assert len(failures) == 1
    assert failures[0]["kind"] == "not_an_ip_literal"


async def test_send_to_the_wrong_address_family_is_counted() -> None:
    """An IPv6 destination on an IPv4 socket is a counted send error, not an exception."""
    async with udp("127.0.0.1", Recorder()) as transport:
        transport.send(b"x", Peer("udp", "::1", 5060))
        assert transport.statistics().send_errors == 1


async def test_send_after_close_is_counted_not_raised() -> None:
    """Sending on a closed transport drops the datagram and counts it."""
    transport = await UdpTransport.open("127.0.0.1", 0, Recorder())
    transport.close()
    transport.send(b"x", Peer("udp", "127.0.0.1", 9))
    assert transport.statistics().send_errors == 1


async def test_handler_exception_is_logged_and_the_transport_keeps_running() -> None:
    """A handler that raises is logged as transport.handler_error and later datagrams arrive."""
    handler, client_rx = FailsFirst(), Recorder()
    async with udp("127.0.0.1", handler) as server, udp("127.0.0.1", client_rx) as client:
        target = Peer("udp", "127.0.0.1", server.local_address[1])
        with capture_logs() as logs:
            client.send(b"first", target)
            client.send(b"second", target)
            data, _ = await handler.next()
    assert data == b"second"
    errors = [entry for entry in logs if entry["event"] == "transport.handler_error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1) on this host")
async def test_ipv6_loopback_echo() -> None:
    """Datagrams travel over ::1 and the Peer carries the IPv6 host."""
    echo, client_rx = Echo(), Recorder()
    async with udp("::1", echo) as server, udp("::1", client_rx) as client:
        client.send(b"v6", Peer("udp", "::1", server.local_address[1]))
        data, peer = await client_rx.next()
    assert data == b"v6"
    assert peer.host == "::1"
    assert echo.peers[0].host == "::1"


@pytest.mark.skipif(not dual_stack_available(), reason="no dual-stack IPv6 sockets on this host")
async def test_dual_stack_socket_reports_and_answers_plain_ipv4() -> None:
    """On a socket bound to ::, IPv4 senders appear as plain IPv4 and answers reach them."""
    echo, client_rx = Echo(), Recorder()
    async with udp("::", echo) as server, udp("127.0.0.1", client_rx) as client:
        client.send(b"mapped", Peer("udp", "127.0.0.1", server.local_address[1]))
        data, _ = await client_rx.next()
    assert data == b"mapped"
    assert echo.peers[0].host == "127.0.0.1"


async def test_receive_backlog_counts_what_waits_unread_in_the_kernel() -> None:
    """Datagrams not read yet show in receive_backlog; once the loop has read them, zero."""
    recorder = Recorder()
    async with udp("127.0.0.1", recorder) as transport:
        assert transport.receive_backlog() == 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(20):  # delivered on loopback before the loop runs again
                sender.sendto(b"x" * 700, transport.local_address)
            waiting = transport.receive_backlog()
            for _ in range(20):
                await recorder.next()
        assert waiting >= 20 * 700
        assert transport.receive_backlog() == 0
