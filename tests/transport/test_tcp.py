"""Tests for the asyncio TCP adapter (callserver.transport.tcp)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, cast

import pytest
from structlog.testing import capture_logs

from callserver.sip.events import Peer
from callserver.transport.tcp import TcpTransport

WAIT = 5.0
LOOPBACK = "127.0.0.1"


class Recorder:
    """A StreamHandler that queues the data and connection ends it is given."""

    def __init__(self) -> None:
        self.data: asyncio.Queue[tuple[bytes, Peer]] = asyncio.Queue()
        self.closed: asyncio.Queue[Peer] = asyncio.Queue()

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        self.data.put_nowait((data, peer))

    def stream_closed(self, peer: Peer) -> None:
        self.closed.put_nowait(peer)

    async def read(self, size: int) -> tuple[bytes, Peer]:
        """Collect exactly ``size`` bytes, all from one connection, whatever the chunking."""
        buffer, peer = b"", None
        async with asyncio.timeout(WAIT):
            while len(buffer) < size:
                chunk, peer = await self.data.get()
                buffer += chunk
        assert peer is not None
        return buffer, peer

    async def next_closed(self) -> Peer:
        """Wait for the next stream_closed call."""
        async with asyncio.timeout(WAIT):
            return await self.closed.get()


class RawClient(asyncio.Protocol):
    """A plain TCP peer outside the adapter, collecting what it receives."""

    def __init__(self, *, reads: bool = True) -> None:
        self.reads = reads
        self.received = bytearray()
        self.arrived = asyncio.Event()
        self.lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        if not self.reads:
            self.transport.pause_reading()

    def data_received(self, data: bytes) -> None:
        self.received += data
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set()

    def send(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    @property
    def address(self) -> tuple[str, int]:
        assert self.transport is not None
        host, port = self.transport.get_extra_info("sockname")[:2]
        return str(host), int(port)

    async def read(self, size: int) -> bytes:
        """Wait until ``size`` bytes have arrived and return them."""
        async with asyncio.timeout(WAIT):
            while len(self.received) < size:
                self.arrived.clear()
                await self.arrived.wait()
        return bytes(self.received)

    async def wait_lost(self) -> None:
        """Wait until the adapter has closed this connection."""
        async with asyncio.timeout(WAIT):
            await self.lost.wait()


@asynccontextmanager
async def tcp(
    handler: Recorder, host: str = LOOPBACK, **limits: Any
) -> AsyncIterator[TcpTransport]:
    """Open a TcpTransport on an ephemeral port and close it afterwards."""
    transport = await TcpTransport.open(host, 0, handler, **limits)
    try:
        yield transport
    finally:
        await transport.aclose()


@asynccontextmanager
async def raw_client(server: TcpTransport, *, reads: bool = True) -> AsyncIterator[RawClient]:
    """Connect a RawClient to ``server`` and close it afterwards."""
    host, port = server.local_address
    client = RawClient(reads=reads)
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(WAIT):
        await loop.create_connection(lambda: client, host, port)
    try:
        yield client
    finally:
        assert client.transport is not None
        client.transport.abort()


@contextmanager
def refusing_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connects: bound, so no one takes it, but not listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])


def ipv6_loopback_available() -> bool:
    """True when this machine can bind ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_inbound_data_is_delivered_with_a_connection_id() -> None:
    """Bytes from a client reach the handler with a tcp Peer naming the connection."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as client:
        client.send(b"REGISTER sip:x SIP/2.0\r\n")
        data, peer = await handler.read(24)
    assert data == b"REGISTER sip:x SIP/2.0\r\n"
    assert (peer.transport, peer.host, peer.port) == ("tcp", *client.address)
    assert isinstance(peer.conn_id, int)


async def test_each_connection_gets_its_own_id() -> None:
    """Two clients are told apart by conn_id."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as one, raw_client(server) as two:
        one.send(b"1")
        _, first = await handler.read(1)
        two.send(b"2")
        _, second = await handler.read(1)
    assert first.conn_id != second.conn_id


async def test_response_by_conn_id_goes_back_over_the_same_connection() -> None:
    """send() with the Peer a request came with answers on that connection (RFC 3261 §18.2.2)."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as client:
        client.send(b"INVITE")
        _, peer = await handler.read(6)
        server.send(b"SIP/2.0 100 Trying\r\n", peer)
        assert await client.read(20) == b"SIP/2.0 100 Trying\r\n"
        stats = server.statistics()
    assert (stats.accepted, stats.connected, stats.bytes_in, stats.bytes_out) == (1, 0, 6, 20)


async def test_send_by_address_reuses_the_open_inbound_connection() -> None:
    """A Peer without conn_id goes over the open connection to that address, with no connect."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as client:
        client.send(b"hello")
        await handler.read(5)
        host, port = client.address
        server.send(b"BYE", Peer("tcp", host, port))
        assert await client.read(3) == b"BYE"
        stats = server.statistics()
    assert (stats.accepted, stats.connected, stats.connections_open) == (1, 0, 1)


async def test_stale_conn_id_falls_back_to_the_address() -> None:
    """A conn_id that is not open is ignored in favour of an open connection to (host, port)."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as client:
        client.send(b"x")
        _, peer = await handler.read(1)
        server.send(b"ok", Peer("tcp", peer.host, peer.port, 999_999))
        assert await client.read(2) == b"ok"


async def test_outbound_connect_delivers_queued_data_in_order() -> None:
    """Data sent before the connection is up is queued, then arrives in order on one connect."""
    near, far = Recorder(), Recorder()
    async with tcp(near) as a, tcp(far) as b:
        target = Peer("tcp", LOOPBACK, b.local_address[1])
        for part in (b"one,", b"two,", b"three"):
            a.send(part, target)
        data, far_peer = await far.read(13)
        b.send(b"reply", far_peer)
        reply, near_peer = await near.read(5)
        a.send(b"again", target)
        again, _ = await far.read(5)
        a_stats, b_stats = a.statistics(), b.statistics()
    assert (data, reply, again) == (b"one,two,three", b"reply", b"again")
    assert near_peer.port == b.local_address[1]
    assert (a_stats.connected, a_stats.accepted, b_stats.accepted) == (1, 0, 1)


async def test_host_spellings_reach_the_same_connection() -> None:
    """Bracketed or long-form addresses are normalised, so they reuse one connection."""
    near, far = Recorder(), Recorder()
    async with tcp(near) as a, tcp(far) as b:
        port = b.local_address[1]
        a.send(b"1", Peer("tcp", LOOPBACK, port))
        await far.read(1)
        a.send(b"2", Peer("tcp", "[127.0.0.1]", port))
        await far.read(1)
        assert a.statistics().connected == 1


async def test_connect_failure_reports_stream_closed() -> None:
    """A refused connect calls stream_closed with the Peer that was sent to (RFC 3261 §18.4)."""
    handler = Recorder()
    with refusing_port() as port:
        async with tcp(handler) as transport:
            target = Peer("tcp", LOOPBACK, port)
            with capture_logs() as logs:
                transport.send(b"INVITE", target)
                transport.send(b"INVITE again", target)
                closed = await handler.next_closed()
            stats = transport.statistics()
    assert closed == target
    assert handler.closed.empty()
    assert (stats.connect_failures, stats.connected, stats.connections_open) == (1, 0, 0)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["transport.connect_failed"]


async def test_idle_connection_is_closed() -> None:
    """A connection with no traffic for idle_timeout is closed by the sweep and reported."""
    handler = Recorder()
    async with tcp(handler, idle_timeout=0.2) as server, raw_client(server) as client:
        client.send(b"x")
        _, peer = await handler.read(1)
        await client.wait_lost()
        assert await handler.next_closed() == peer
        stats = server.statistics()
    assert (stats.closed_idle, stats.closed, stats.connections_open) == (1, 1, 0)


async def test_traffic_keeps_a_connection_open() -> None:
    """Regular traffic on a connection stops the idle sweep from closing it."""
    handler = Recorder()
    async with tcp(handler, idle_timeout=1.0) as server, raw_client(server) as client:
        for _ in range(15):  # 1.5 s in all, well past idle_timeout, with traffic every 0.1 s
            client.send(b"k")
            await handler.read(1)
            await asyncio.sleep(0.1)
        assert not client.lost.is_set()
        assert server.statistics().closed_idle == 0


async def test_close_connection_flushes_then_closes() -> None:
    """close_connection writes what was queued, closes, and the end is reported."""
    handler = Recorder()
    async with tcp(handler) as server, raw_client(server) as client:
        client.send(b"garbage")
        _, peer = await handler.read(7)
        assert peer.conn_id is not None
        server.send(b"SIP/2.0 400 Bad Request\r\n", peer)
        server.close_connection(peer.conn_id)
        server.close_connection(peer.conn_id)
        await client.wait_lost()
        assert await handler.next_closed() == peer
        stats = server.statistics()
    assert bytes(client.received) == b"SIP/2.0 400 Bad Request\r\n"
    assert (stats.closed_by_core, stats.connections_open) == (1, 0)


async def test_max_connections_refuses_new_connections() -> None:
    """Past max_connections a new connection is closed and counted; the others keep working."""
    handler = Recorder()
    async with tcp(handler, max_connections=1) as server, raw_client(server) as first:
        first.send(b"a")
        _, peer = await handler.read(1)
        with capture_logs() as logs:
            async with raw_client(server) as second:
                await second.wait_lost()
        server.send(b"still here", peer)
        assert await first.read(10) == b"still here"
        stats = server.statistics()
    assert (stats.refused, stats.accepted, stats.connections_open) == (1, 1, 1)
    assert [e["event"] for e in logs] == ["transport.connection_limit_reached"]


async def test_max_connections_refuses_outbound_connects() -> None:
    """At the limit, sending to a new address fails through stream_closed, never raising."""
    handler = Recorder()
    async with tcp(handler, max_connections=1) as server, raw_client(server) as client:
        client.send(b"a")
        await handler.read(1)
        target = Peer("tcp", LOOPBACK, 9)  # never dialled: the limit stops it first
        server.send(b"INVITE", target)
        assert await handler.next_closed() == target
        assert server.statistics().refused == 1


async def test_peer_that_never_reads_is_aborted() -> None:
    """A peer that stops reading while we write past max_write_buffer is aborted and counted."""
    handler = Recorder()
    chunk = b"x" * 65536
    async with (
        tcp(handler, max_write_buffer=len(chunk)) as server,
        raw_client(server, reads=False) as client,
    ):
        client.send(b"a")
        _, peer = await handler.read(1)
        for _ in range(2048):  # 128 MiB: far beyond any kernel socket buffers
            server.send(chunk, peer)
            if server.statistics().closed_overflow:
                break
        assert await handler.next_closed() == peer
        stats = server.statistics()
    assert (stats.closed_overflow, stats.connections_open) == (1, 0)


async def test_handler_exception_does_not_kill_the_connection() -> None:
    """A handler that raises is logged as transport.handler_error and the next bytes arrive."""

    class FailsOnce(Recorder):
        def __init__(self) -> None:
            super().__init__()
            self.failed = asyncio.Event()

        def stream_data_received(self, data: bytes, peer: Peer) -> None:
            if not self.failed.is_set():
                self.failed.set()
                raise RuntimeError("core bug")
            super().stream_data_received(data, peer)

    handler = FailsOnce()
    async with tcp(handler) as server, raw_client(server) as client:
        with capture_logs() as logs:
            client.send(b"first")
            async with asyncio.timeout(WAIT):
                await handler.failed.wait()
            client.send(b"second")
            data, _ = await handler.read(6)
    assert data == b"second"
    errors = [e for e in logs if e["event"] == "transport.handler_error"]
    assert len(errors) == 1
    assert errors[0]["exc_info"] is True


async def test_aclose_closes_every_connection_and_reports_it() -> None:
    """aclose() stops listening and closes connections, with stream_closed for each."""
    handler = Recorder()
    server = await TcpTransport.open(LOOPBACK, 0, handler)
    async with raw_client(server) as client:
        client.send(b"a")
        _, peer = await handler.read(1)
        await server.aclose()
        await client.wait_lost()
    assert handler.closed.get_nowait() == peer
    assert server.statistics().connections_open == 0
    server.send(b"late", peer)
    assert await handler.next_closed() == peer


async def test_open_rejects_non_positive_limits() -> None:
    """Limits and timeouts must be positive."""
    with pytest.raises(ValueError, match="positive"):
        await TcpTransport.open(LOOPBACK, 0, Recorder(), max_connections=0)


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback (::1) on this host")
async def test_ipv6_loopback_connections() -> None:
    """Inbound and outbound connections work over ::1."""
    near, far = Recorder(), Recorder()
    async with tcp(near, host="::1") as a, tcp(far, host="::1") as b:
        a.send(b"v6", Peer("tcp", "::1", b.local_address[1]))
        data, far_peer = await far.read(2)
        b.send(b"ok", far_peer)
        reply, near_peer = await near.read(2)
    assert (data, reply) == (b"v6", b"ok")
    assert far_peer.host == near_peer.host == "::1"


async def test_stream_closed_exception_is_logged_and_contained() -> None:
    """A stream_closed that raises is logged and the transport keeps serving connections."""

    class FailsOnClose(Recorder):
        def stream_closed(self, peer: Peer) -> None:
            super().stream_closed(peer)
            raise RuntimeError("core bug")

    handler = FailsOnClose()
    async with tcp(handler) as server:
        with capture_logs() as logs:
            async with raw_client(server) as first:
                first.send(b"a")
                _, peer = await handler.read(1)
                assert peer.conn_id is not None
                server.close_connection(peer.conn_id)
                await handler.next_closed()
        async with raw_client(server) as second:
            second.send(b"b")
            data, _ = await handler.read(1)
    assert data == b"b"
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["transport.handler_error"]


async def test_connect_timeout_reports_stream_closed() -> None:
    """A connect that does not complete within connect_timeout fails through stream_closed."""
    handler = Recorder()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)  # never accepted: once the queue is full, further SYNs are dropped
        port = int(listener.getsockname()[1])
        fillers = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex((LOOPBACK, port))
        try:
            async with tcp(handler, connect_timeout=0.2) as transport:
                target = Peer("tcp", LOOPBACK, port)
                transport.send(b"INVITE", target)
                assert await handler.next_closed() == target
                assert transport.statistics().connect_failures == 1
        finally:
            for filler in fillers:
                filler.close()
