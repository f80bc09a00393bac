"""ICE on one address: host candidates gathered there only, and the browser's candidates the
server would not try left out of its offer."""

from __future__ import annotations

import aioice.ice
from aiortc import RTCPeerConnection

from callserver.softphone.ice import host_candidates_on, reachable_candidates, rtc_configuration

OFFER = (
    "v=0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\n"
    "a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\n"
    "a=candidate:2 1 udp 2122194687 127.0.0.1 50001 typ host\r\n"
    "a=candidate:3 1 udp 2122129151 4f1a-9c2e.local 50002 typ host\r\n"
    "a=candidate:4 1 udp 2122063615 ::1 50003 typ host\r\n"
    "a=candidate:bad\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def _candidates(sdp: str) -> list[str]:
    return [line.split()[4] for line in sdp.splitlines() if line.startswith("a=candidate:")]


def test_on_loopback_only_loopback_candidates_are_kept() -> None:
    """127.0.0.1 and ::1 stay; the LAN address, the mDNS name and a broken line go."""
    kept = reachable_candidates(OFFER, "127.0.0.1")
    assert _candidates(kept) == ["127.0.0.1", "::1"]
    assert "a=rtpmap:0 PCMU/8000" in kept


def test_on_another_address_only_mdns_names_are_dropped() -> None:
    """A server on its LAN address tries every IP candidate but mDNS names (multicast)."""
    assert _candidates(reachable_candidates(OFFER, "192.0.2.1")) == [
        "192.0.2.7",
        "127.0.0.1",
        "::1",
    ]


def test_gathering_uses_the_address_set_and_aioice_s_own_elsewhere() -> None:
    """Inside the block aioice's host addresses are the one given; outside, its own list
    (which never holds loopback)."""
    with host_candidates_on("127.0.0.1"):
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_an_offer_made_inside_the_block_has_loopback_host_candidates_only() -> None:
    """A peer connection's offer gathered inside the block lists 127.0.0.1 alone, and no
    STUN server is asked (no server-reflexive candidate)."""
    pc = RTCPeerConnection(rtc_configuration())
    try:
        pc.addTransceiver("audio")
        with host_candidates_on("127.0.0.1"):
            await pc.setLocalDescription(await pc.createOffer())
        sdp = pc.localDescription.sdp
        assert _candidates(sdp) == ["127.0.0.1"]
        assert "typ srflx" not in sdp
    finally:
        await pc.close()
