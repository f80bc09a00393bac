"""The usual-packet path of MediaStream.receive agrees with the general path (RFC 3550 §5.1).

``receive`` takes the common datagram (version 2 without padding, extension or CSRCs, in our
codec, from the latched source and SSRC) on a short path of its own. Hypothesis feeds two
identical streams the same datagrams, one through ``receive`` and one through the general
``_receive`` alone, and every result and every observable piece of state must be equal.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media.stream import MediaStream
from tests.media.streams import PEER, PEER_B, PEER_SSRC, TE, bridged, make_stream, rtp

_ADDRESSES = st.sampled_from([PEER, PEER, PEER, PEER_B])
_SSRCS = st.sampled_from([PEER_SSRC, PEER_SSRC, PEER_SSRC, 0x99])
_PAYLOAD_TYPES = st.sampled_from([0, 0, 0, 8, TE, 13, 200 & 0x7F])


@st.composite
def datagrams(draw: st.DrawFn) -> tuple[bytes, tuple[str, int], float]:
    """A datagram, its source and its arrival: mostly the usual packet, sometimes not."""
    seq = draw(st.integers(0, 40))
    data = rtp(seq, seq * 160, pt=draw(_PAYLOAD_TYPES), ssrc=draw(_SSRCS))
    first = draw(st.sampled_from([0x80, 0x80, 0x80, 0xA0, 0x90, 0x81, 0x40]))
    second = data[1] | (0x80 if draw(st.booleans()) else 0)
    data = bytes([first, second]) + data[2:]
    if draw(st.integers(0, 9)) == 0:
        data = data[: draw(st.integers(0, 11))]  # short
    return data, draw(_ADDRESSES), draw(st.floats(0.0, 0.019))


def state(stream: MediaStream) -> tuple[object, ...]:
    """What receiving may change, as one comparable value."""
    stats = stream.rtcp.stats
    return (
        stream.packets_received, stream.last_rx, dict(stream.drops), stream.latch.address,
        stream.latch.ssrc, stream.latch.candidate, stream.remote, stats.received, stats.jitter,
        stats.extended_highest_sequence, list(stream.rx_audio), len(stream.events),
        stream.late_packets,
    )  # fmt: skip


Datagrams = list[tuple[bytes, tuple[str, int], float]]


def run(usual: MediaStream, general: MediaStream, packets: Datagrams) -> None:
    """Feed both streams; their results and states must match after every datagram."""
    for i, (data, source, jitter) in enumerate(packets):
        now = 1.0 + 0.02 * i + jitter
        a = usual.receive(data, source, now)
        b = general._receive(data, source, now)
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert a[1] == b[1]
        assert state(usual) == state(general)


@settings(max_examples=300, deadline=None)
@given(st.lists(datagrams(), min_size=1, max_size=60), st.booleans())
def test_usual_path_matches_the_general_path(packets: Datagrams, capture: bool) -> None:
    """Alone or capturing for recording, a stream ends in the same state on either path."""
    usual, general = make_stream(), make_stream()
    usual.capture_rx = general.capture_rx = capture
    run(usual, general, packets)


@settings(max_examples=150, deadline=None)
@given(st.lists(datagrams(), min_size=1, max_size=40))
def test_usual_path_matches_the_general_path_when_bridged(packets: Datagrams) -> None:
    """Bridged, both paths relay the same packets to the peer and leave it in the same state."""
    (usual, peer_u), (general, peer_g) = bridged(), bridged()
    run(usual, general, packets)
    assert state(peer_u) == state(peer_g)
    assert (peer_u.packets_sent, peer_u.octets_sent) == (peer_g.packets_sent, peer_g.octets_sent)
