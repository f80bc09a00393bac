"""Tests for source latching and SSRC changes (callserver.media.latch; RFC 4961, RFC 3550 §8.2).

First on ``SourceLatch`` alone, then through ``MediaStream.receive``: what is dropped and where
the stream sends.
"""

from __future__ import annotations

from callserver.media.latch import RELATCH_AFTER, SSRC_QUIET, SSRC_SWITCH_PACKETS, SourceLatch
from tests.media.streams import (
    PEER,
    PEER_SSRC,
    feed,
    make_stream,
    receive_after_live_source,
    rtp,
)

SDP = PEER
NAT = ("198.51.100.7", 61000)
OTHER = ("203.0.113.9", 5004)


def test_first_packet_latches_any_source() -> None:
    """With symmetric RTP the first packet's source is latched, whatever the SDP said."""
    latch = SourceLatch(symmetric=True)
    latch.expect(*SDP)
    assert latch.accept_address(NAT, now=1.0, last_rx=0.0)
    assert latch.address == NAT
    assert latch.latches == 1


def test_second_source_rejected_while_latched_one_is_live() -> None:
    """Another source is refused while the latched one sent less than RELATCH_AFTER ago."""
    latch = SourceLatch(symmetric=True)
    latch.accept_address(NAT, now=1.0, last_rx=0.0)
    assert not latch.accept_address(OTHER, now=1.0 + RELATCH_AFTER - 0.01, last_rx=1.0)
    assert latch.address == NAT
    assert latch.latches == 1


def test_second_source_accepted_after_silence() -> None:
    """After RELATCH_AFTER seconds of silence a new source (a NAT rebinding) is latched."""
    latch = SourceLatch(symmetric=True)
    latch.accept_address(NAT, now=1.0, last_rx=0.0)
    assert latch.accept_address(OTHER, now=1.0 + RELATCH_AFTER, last_rx=1.0)
    assert latch.address == OTHER
    assert latch.latches == 2


def test_the_sdp_address_takes_over_a_live_latch_on_another_source() -> None:
    """Packets from the address the SDP names are the peer's own: they take the latch at once
    from another live source (the losing phone of a forked call that sent first)."""
    latch = SourceLatch(symmetric=True)
    latch.expect(*SDP)
    latch.accept_address(OTHER, now=1.0, last_rx=0.0)
    assert latch.accept_address(SDP, now=1.02, last_rx=1.0)
    assert latch.address == SDP and latch.latches == 2
    assert not latch.accept_address(OTHER, now=1.04, last_rx=1.02)


def test_expect_forgets_the_latch() -> None:
    """A new SDP address forgets the latched source, so the next packet latches at once."""
    latch = SourceLatch(symmetric=True)
    latch.accept_address(NAT, now=1.0, last_rx=0.0)
    latch.expect(*OTHER)
    assert latch.address is None
    assert latch.accept_address(OTHER, now=1.01, last_rx=1.0)


def test_without_symmetric_only_the_sdp_address_is_accepted() -> None:
    """Latching off: the SDP address (also in IPv6 four-tuple form) is accepted, nothing else."""
    latch = SourceLatch(symmetric=False)
    assert not latch.accept_address(SDP, now=1.0, last_rx=0.0)  # no SDP address yet
    latch.expect(*SDP)
    assert not latch.accept_address(NAT, now=100.0, last_rx=0.0)
    assert latch.accept_address(SDP, now=100.0, last_rx=0.0)
    v6 = SourceLatch(symmetric=False)
    v6.expect("2001:db8::1", 4000)
    assert v6.accept_address(("2001:db8::1", 4000, 0, 0), now=1.0, last_rx=0.0)
    assert not v6.accept_address(("2001:db8::2", 4000, 0, 0), now=50.0, last_rx=0.0)


def test_first_ssrc_is_taken() -> None:
    """The first SSRC seen becomes the stream's SSRC."""
    latch = SourceLatch(symmetric=True)
    assert latch.accept_ssrc(0xA, now=1.0, last_rx=0.0) is True
    assert latch.ssrc == 0xA
    assert latch.ssrc_changes == 0


def test_ssrc_switch_after_consecutive_packets() -> None:
    """A new SSRC is refused until its SSRC_SWITCH_PACKETS-th packet in a row, then adopted."""
    latch = SourceLatch(symmetric=True)
    latch.accept_ssrc(0xA, now=1.0, last_rx=0.0)
    now = 1.0
    results = []
    for _ in range(SSRC_SWITCH_PACKETS):
        now += 0.02
        results.append(latch.accept_ssrc(0xB, now=now, last_rx=1.0))
    assert results == [False] * (SSRC_SWITCH_PACKETS - 1) + [None]
    assert latch.ssrc == 0xB
    assert latch.ssrc_changes == 1


def test_another_candidate_restarts_the_count() -> None:
    """Packets of two different new SSRCs alternating never reach the switch count."""
    latch = SourceLatch(symmetric=True)
    latch.accept_ssrc(0xA, now=1.0, last_rx=1.0)
    got = [latch.accept_ssrc(ssrc, now=1.05, last_rx=1.0) for ssrc in (0xB, 0xC, 0xB, 0xC)]
    assert got == [False] * 4
    assert latch.ssrc == 0xA


def test_ssrc_switch_at_once_after_quiet() -> None:
    """When the old SSRC has been quiet for SSRC_QUIET seconds, a new one is adopted at once."""
    latch = SourceLatch(symmetric=True)
    latch.accept_ssrc(0xA, now=0.0, last_rx=0.0)
    assert latch.accept_ssrc(0xB, now=SSRC_QUIET, last_rx=0.0) is None
    assert latch.ssrc == 0xB
    assert latch.accept_ssrc(0xC, now=SSRC_QUIET + 0.01, last_rx=SSRC_QUIET) is False


# -- through MediaStream.receive ----------------------------------------------------------------


def test_another_source_while_latched_is_dropped() -> None:
    """A packet from another address while the latched source is live is dropped as 'source'."""
    stream = make_stream()
    receive_after_live_source(stream, rtp(2, 320), OTHER)
    assert stream.drops == {"source": 1}
    assert stream.remote == PEER


def test_without_symmetric_rtp_another_address_is_dropped() -> None:
    """With symmetric RTP off only the SDP address is accepted, even on the first packet."""
    stream = make_stream(symmetric=False)
    assert stream.receive(rtp(1, 160), OTHER, 50.0) is None
    assert stream.receive(rtp(2, 320), PEER, 50.02) is None
    assert stream.drops == {"source": 1}
    assert stream.packets_received == 1
    assert stream.remote == PEER


def test_first_packet_latches_and_remote_follows() -> None:
    """The first packet's source (behind NAT) is latched and becomes where we send."""
    stream = make_stream()
    assert stream.remote == PEER
    stream.receive(rtp(1, 160), OTHER, 1.0)
    assert stream.remote == OTHER
    assert stream.drops == {}
    assert stream.last_rx == 1.0


def test_the_peer_named_by_the_sdp_is_sent_to_even_after_another_source_came_first() -> None:
    """Another source's packet latches first; the SDP address's next packet takes the stream
    back at once, and it is where we send."""
    stream = make_stream()
    stream.receive(rtp(1, 160), OTHER, 1.0)
    assert stream.remote == OTHER
    stream.receive(rtp(1, 160), PEER, 1.02)
    assert stream.remote == PEER
    assert "source" not in stream.drops


def test_new_source_accepted_after_relatch_time() -> None:
    """After RELATCH_AFTER of silence a new source is latched and we send to it."""
    stream = make_stream()
    stream.receive(rtp(1, 160), PEER, 1.0)
    stream.receive(rtp(2, 320), OTHER, 1.5)
    assert stream.remote == PEER
    stream.receive(rtp(3, 480), OTHER, 2.0)
    assert stream.remote == OTHER
    assert stream.drops == {"source": 1}
    assert stream.packets_received == 2


def test_ssrc_change_after_three_consecutive_packets() -> None:
    """A new SSRC is taken on its third packet in a row; the two before are dropped."""
    stream = make_stream()
    now = feed(stream, [rtp(i, 160 * i) for i in range(5)])
    feed(stream, [rtp(900 + i, 160 * i, ssrc=0xBEEF) for i in range(3)], start=now)
    assert stream.drops == {"ssrc": 2}
    assert stream.latch.ssrc == 0xBEEF
    assert stream.packets_received == 6


def test_interleaved_stray_ssrc_does_not_take_over() -> None:
    """A stray SSRC interleaved with the live one never has 3 packets in a row: it stays out."""
    stream = make_stream()
    packets = []
    for i in range(6):
        packets += [rtp(i, 160 * i), rtp(900 + i, 160 * i, ssrc=0xBEEF)]
    feed(stream, packets)
    assert stream.latch.ssrc_changes == 0
    assert stream.drops == {"ssrc": 6}
    assert stream.latch.ssrc == PEER_SSRC
