"""Tests for the engine's batched socket I/O (callserver.media.engine on callserver.media.rtpio).

What changed when the engine began to read every ready socket in one call and send a tick in
one: RTCP on its own socket set, a stream closed by the events of a datagram while more of its
datagrams wait in the same batch, many streams served by one wake-up, IPv6, a registration
refused. Each test runs on both socket implementations (the ``sockets`` fixture) over real UDP
on the loopback, but the last, which needs a set that refuses.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import socket
import struct
import warnings
from collections.abc import Callable

import pytest

from callserver.media.engine import MediaEngine
from callserver.media.events import DtmfReceived, MediaEvent
from callserver.media.rtcp import ReceiverReport, SenderReport, build_compound, parse_compound
from callserver.media.rtpio import PythonRtpSockets, RtpSockets
from tests.media.engine_peers import (
    HOST,
    WAIT,
    Peer,
    Sink,
    can_bind,
    free_port_pair,
    port_range,
    settings_for,
    wait_until,
)
from tests.media.streams import event_payload


async def receive_rtcp(sock: socket.socket) -> list[SenderReport | ReceiverReport]:
    """The reports of the next RTCP compound packet on ``sock`` (RTP is skipped)."""
    loop = asyncio.get_running_loop()
    while True:
        data = await loop.sock_recv(sock, 2048)
        if 192 <= data[1] <= 223:
            return parse_compound(data)


async def test_rtcp_goes_out_and_comes_in_on_the_rtcp_sockets(engine: MediaEngine) -> None:
    """Our first report reaches the peer's port + 1, and the peer's SR to ours is taken."""
    port = free_port_pair()
    peer, peer_rtcp = Peer(port=port), Peer(port=port + 1)
    try:
        stream = engine.open_stream()
        engine.configure(stream, peer.config())
        async with asyncio.timeout(WAIT):
            (report,) = await receive_rtcp(peer_rtcp.sock)
            assert isinstance(report, SenderReport) and report.ssrc == stream.ssrc
            sr = SenderReport(
                ssrc=0x1234, ntp_timestamp=1 << 32, rtp_timestamp=0, packet_count=1,
                octet_count=160,
            )  # fmt: skip
            peer_rtcp.sock.sendto(build_compound(sr, "peer"), (HOST, stream.port + 1))
            await wait_until(lambda: stream.rtcp.received == 1)
    finally:
        peer.close()
        peer_rtcp.close()


async def test_rtcp_mux_reports_go_to_the_rtp_port(engine: MediaEngine, peer: Peer) -> None:
    """With rtcp-mux the report leaves from our RTP socket to the peer's RTP port."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config(rtcp_mux=True))
    async with asyncio.timeout(WAIT):
        (report,) = await receive_rtcp(peer.sock)
    assert isinstance(report, SenderReport) and report.ssrc == stream.ssrc


async def test_a_stream_closed_by_its_events_skips_the_rest_of_the_batch(
    sockets: Callable[[], RtpSockets],
) -> None:
    """The sink closes a stream on its digit; its other waiting datagrams are dropped unread,
    and the other stream of the same wake-up is served."""
    events: list[MediaEvent] = []
    media: MediaEngine

    def close_on_digit(event: MediaEvent) -> None:
        events.append(event)
        if isinstance(event, DtmfReceived):
            media.close_stream(pressed)

    media = MediaEngine(
        settings_for(*port_range()), bind_host=HOST, sink=close_on_digit, sockets=sockets
    )
    await media.start()
    peer, other = Peer(), Peer()
    try:
        pressed, listening = media.open_stream(), media.open_stream()
        media.configure(pressed, peer.config())
        media.configure(listening, other.config())
        for _ in range(3):  # RFC 4733 §2.5.1.4: the end packet three times, then audio
            peer.send(pressed, event_payload("5", 800, end=True), pt=101)
        peer.send(pressed, b"\xff" * 160)
        other.send(listening, b"\xff" * 160)
        async with asyncio.timeout(WAIT):
            await wait_until(lambda: listening.packets_received == 1 and not media.is_open(pressed))
            await asyncio.sleep(0.1)  # a wake-up or two more: nothing else may come of it
    finally:
        await media.stop()
        peer.close()
        other.close()
    digits = [e for e in events if isinstance(e, DtmfReceived)]
    assert [(d.stream_id, d.digit) for d in digits] == [(pressed.stream_id, "5")]
    assert pressed.packets_received == 1  # the first end packet; the three after it unread


async def test_one_wake_up_serves_many_streams(engine: MediaEngine) -> None:
    """Fifty streams each get a packet and each answers its own peer from its own port."""
    peers = [Peer() for _ in range(50)]
    try:
        streams = [engine.open_stream() for _ in peers]
        for stream, peer in zip(streams, peers, strict=True):
            engine.configure(stream, peer.config())
            peer.send(stream, b"\xff" * 160)
        async with asyncio.timeout(WAIT):
            await wait_until(lambda: all(s.packets_received == 1 for s in streams))
            for stream, peer in zip(streams, peers, strict=True):
                data, source = await asyncio.get_running_loop().sock_recvfrom(peer.sock, 2048)
                assert struct.unpack_from("!I", data, 8)[0] == stream.ssrc
                assert source == (HOST, stream.port)
        assert engine.statistics().packets_received == 50
    finally:
        for peer in peers:
            peer.close()


async def test_ipv6_streams_send_and_receive(sink: Sink, sockets: Callable[[], RtpSockets]) -> None:
    """An engine bound to ::1 latches an IPv6 peer and sends it RTP from the stream's port."""
    media = MediaEngine(settings_for(*port_range()), bind_host="::1", sink=sink, sockets=sockets)
    await media.start()
    peer = Peer("::1")
    try:
        stream = media.open_stream()
        media.configure(stream, peer.config())
        peer.send(stream, b"\xff" * 160)
        async with asyncio.timeout(WAIT):
            await wait_until(lambda: stream.packets_received == 1)
            data, source = await asyncio.get_running_loop().sock_recvfrom(peer.sock, 2048)
        assert struct.unpack_from("!I", data, 8)[0] == stream.ssrc
        assert source[:2] == ("::1", stream.port)
        assert stream.latch.address == (*peer.address, 0, 0)
    finally:
        await media.stop()
        peer.close()


class _Refusing(PythonRtpSockets):
    """A socket set that refuses every registration, as epoll does at its watch limit."""

    def register(self, sock: socket.socket, key: int) -> None:
        """Refuse with ENOSPC."""
        raise OSError(errno.ENOSPC, "no space for another watch")


async def test_a_refused_registration_leaks_no_socket_and_no_port(sink: Sink) -> None:
    """When the RTCP set refuses the socket, open_stream raises, the RTP registration is
    undone, both sockets are closed and the port pair can be bound again."""
    made: list[RtpSockets] = []

    def sockets() -> RtpSockets:
        made.append(PythonRtpSockets() if not made else _Refusing())
        return made[-1]

    port = free_port_pair()
    media = MediaEngine(settings_for(port, port + 1), bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(OSError, match="no space"):
                media.open_stream()
            gc.collect()
        assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
        assert len(made[0]) == 0
        assert can_bind(port) and can_bind(port + 1)
        assert media.statistics().ports_in_use == 0
    finally:
        await media.stop()
