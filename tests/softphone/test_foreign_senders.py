"""The softphone hears only the call server: SIP from another peer and RTP from another
source than the server's SDP names are dropped and counted, never played or answered."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from callserver.media.rtp import build_header
from callserver.sip.events import Peer
from callserver.softphone.rtp_leg import RtpLeg
from callserver.softphone.session import SoftphoneSession
from tests.softphone.test_offer_refused import AGENT

INVITE = (
    "OPTIONS sip:201@127.0.0.1 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-foreign\r\n"
    "From: <sip:x@127.0.0.1>;tag=f\r\nTo: <sip:201@127.0.0.1>\r\n"
    "Call-ID: foreign-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _packet(seq: int) -> bytes:
    return build_header(0, False, seq, seq * 160, 1234) + b"\xff" * 160


async def _settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_rtp_only_from_the_sdp_address_and_the_port_it_latched() -> None:
    leg = await RtpLeg.open("127.0.0.1")
    heard: list[object] = []
    leg.hear = heard.append
    server, stranger = _udp(), _udp()
    try:
        leg.start("PCMU", server.getsockname())
        server.sendto(_packet(1), ("127.0.0.1", leg.port))
        await _settle()
        stranger.sendto(_packet(2), ("127.0.0.1", leg.port))
        await _settle()
        assert (len(heard), leg.packets_in, leg.packets_foreign) == (1, 1, 1)
        leg.start("PCMU", ("192.0.2.7", 4000))  # the server's SDP names another host now
        server.sendto(_packet(3), ("127.0.0.1", leg.port))
        await _settle()
        assert (len(heard), leg.packets_foreign) == (1, 2)
        leg.server_host = "127.0.0.1"  # the SDP names the advertised address, not the source
        leg.start("PCMU", ("192.0.2.8", 4000))
        server.sendto(_packet(4), ("127.0.0.1", leg.port))
        await _settle()
        assert (len(heard), leg.packets_foreign) == (2, 2)
    finally:
        leg.close()
        server.close()
        stranger.close()


async def test_sip_from_another_peer_than_the_server_is_dropped() -> None:
    server, stranger = _udp(), _udp()
    host, port = server.getsockname()
    sent: list[dict[str, Any]] = []
    session = SoftphoneSession(
        subscriber=AGENT,
        desk=None,  # type: ignore[arg-type]
        server=Peer("udp", host, port),
        bind_host="127.0.0.1",
        address="127.0.0.1",
        send=sent.append,
    )
    await session.open()
    try:
        agent = session.agent
        assert agent is not None
        target = ("127.0.0.1", agent.endpoint.config.port)
        stranger.sendto(INVITE.format(port=stranger.getsockname()[1]).encode(), target)
        await _settle()
        assert agent.foreign == 1
        try:
            answer = stranger.recv(4096)
        except BlockingIOError:
            answer = b""
        assert answer == b""
    finally:
        await session.close()
        server.close()
        stranger.close()
