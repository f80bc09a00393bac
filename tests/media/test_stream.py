"""Tests for one RTP stream's sans-IO state (callserver.media.stream; RFC 3550, 4733, 4961).

No sockets: streams are built directly and driven with ``configure``, ``next_packet`` and
``receive`` at fake ``now`` values.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media import g711
from callserver.media.events import DtmfReceived, PlaybackFinished, RtpTimedOut
from callserver.media.rtcp import (
    ReceiverReport,
    SenderReport,
    build_compound,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
)
from callserver.media.rtp import RtpPacket
from callserver.media.stream import MediaStream
from tests.media.streams import (
    B_SSRC,
    OUR_SSRC,
    PEER,
    PEER_B,
    PEER_SSRC,
    TE,
    bridged,
    config,
    dominant_frequencies,
    feed,
    key_press,
    make_stream,
    receive_after_live_source,
    rtp,
    sent,
)

# -- hold and inactivity ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "sends", "times_out"),
    [
        ("sendrecv", True, True),
        ("sendonly", True, False),
        ("recvonly", False, False),
        ("inactive", False, False),
    ],
)
def test_direction(direction: str, sends: bool, times_out: bool) -> None:
    """Our direction decides whether we send; the RTP timeout runs only off hold (sendrecv)."""
    stream = make_stream(direction=direction)
    assert (stream.next_packet(1, 0.02) is not None) is sends
    stream.check_timeout(100.0, 30.0)
    assert stream.events == (
        [RtpTimedOut(stream_id=1, idle=100.0, rtime=100.0)] if times_out else []
    )


def test_timeout_fires_once_and_received_audio_defers_it() -> None:
    """Received RTP refreshes the timer; the timeout is reported once; 0 disables it."""
    stream = make_stream()
    assert stream.receive(rtp(1, 160), PEER, 10.0) is None
    stream.check_timeout(10.0 + 29.9, 30.0)
    stream.check_timeout(100.0, 0.0)
    assert stream.events == []
    stream.check_timeout(40.0, 30.0)
    stream.check_timeout(41.0, 30.0)
    assert stream.events == [RtpTimedOut(stream_id=1, idle=30.0, rtime=40.0)]


def test_unhold_restarts_the_timer() -> None:
    """Back from hold the inactivity timer counts from the re-INVITE, not the last packet."""
    stream = make_stream()
    stream.configure(config(direction="inactive"), 10.0)
    assert stream.next_packet(1, 10.02) is None
    stream.check_timeout(500.0, 30.0)
    stream.configure(config(direction="sendrecv"), 500.0)
    assert stream.next_packet(2, 500.02) is not None
    stream.check_timeout(529.0, 30.0)
    assert stream.events == []
    stream.check_timeout(530.0, 30.0)
    assert stream.events == [RtpTimedOut(stream_id=1, idle=30.0, rtime=530.0)]


def test_a_held_party_has_no_timeout_until_it_is_resumed() -> None:
    """A party held by its bridged peer (hearing music) may fall silent: no RTP timeout until
    resumed, then the timer counts from the resume."""
    stream = make_stream()
    stream.hold(b"", 10.0)
    stream.check_timeout(500.0, 30.0)
    assert stream.events == []
    stream.resume(500.0)
    stream.check_timeout(529.0, 30.0)
    assert [type(e) for e in stream.events] == [PlaybackFinished]
    stream.check_timeout(530.0, 30.0)
    assert stream.events[-1] == RtpTimedOut(stream_id=1, idle=30.0, rtime=530.0)


# -- receiving ------------------------------------------------------------------------------------

OTHER = ("203.0.113.9", 5004)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x80\x00" + bytes(9), "short"),
        (rtp(2, 320, payload=bytes(1489)), "oversized"),
        (b"\x40" + rtp(2, 320)[1:], "version"),
        (rtp(2, 320, pt=18), "payload_type"),
        (rtp(2, 320, ssrc=0xDEAD), "ssrc"),
        (b"\x8f" + rtp(2, 320, payload=bytes(8))[1:], "malformed"),  # 15 CSRCs, 8 bytes left
        (rtp(2, 320, pt=TE, payload=b"\x01\x0a"), "malformed"),  # telephone-event too short
    ],
)
def test_drop_reasons(data: bytes, reason: str) -> None:
    """Each kind of bad packet is dropped and counted under its reason, and reports nothing."""
    stream = make_stream()
    receive_after_live_source(stream, data, PEER)
    assert stream.drops == {reason: 1}
    assert stream.events == []


def test_every_codec_of_the_answer_is_taken_in_its_own_codec() -> None:
    """Answered PCMA then PCMU, the caller's PCMU is accepted, captured as PCMU, no drop."""
    stream = MediaStream(1, 20000, ssrc=OUR_SSRC, sequence=0, timestamp=0)
    stream.configure(config("PCMA", also=("PCMU",)), 0.0)
    stream.capture_rx = True
    assert stream.receive(rtp(1, 160, pt=0, payload=b"\x11" * 160), PEER, 5.0) is None
    assert stream.receive(rtp(2, 320, pt=8, payload=b"\x22" * 160), PEER, 5.02) is None
    assert list(stream.rx_audio) == [("PCMU", b"\x11" * 160), ("PCMA", b"\x22" * 160)]
    assert (stream.drops, stream.packets_received, stream.last_rx) == ({}, 2, 5.02)
    assert sent(stream, [1])[0].payload_type == 8  # we send the first codec


def test_other_codec_is_relayed_transcoded_from_its_own_codec() -> None:
    """PCMU arriving on a PCMA-first leg reaches a PCMU peer unchanged, not via A-law."""
    a = MediaStream(1, 20000, ssrc=OUR_SSRC, sequence=0, timestamp=0)
    a.configure(config("PCMA", also=("PCMU",)), 0.0)
    b = make_stream("PCMU")
    a.peer, b.peer = b, a
    speech = bytes(range(256))[:160]
    relayed = a.receive(rtp(1, 160, pt=0, payload=speech), PEER, 1.0)
    assert relayed is not None and relayed[0] is b
    packet = RtpPacket.parse(relayed[1])
    assert (packet.payload_type, packet.payload) == (0, speech)


def test_unknown_payload_type_from_the_source_counts_as_activity() -> None:
    """RTP of a payload type outside the answer is dropped, yet from the latched source (or
    the SDP address before any latch) it defers the inactivity timeout; from elsewhere not."""
    stream = make_stream()
    assert stream.receive(rtp(1, 160, pt=18), PEER, 5.0) is None  # nothing latched yet
    assert (stream.drops, stream.last_rx) == ({"payload_type": 1}, 5.0)
    stream.receive(rtp(2, 320), PEER, 6.0)
    stream.receive(rtp(3, 480, pt=18), PEER, 20.0)
    stream.receive(rtp(4, 640, pt=18), OTHER, 40.0)
    assert (stream.drops, stream.last_rx) == ({"payload_type": 3}, 20.0)
    stream.check_timeout(49.9, 30.0)
    assert stream.events == []
    stream.check_timeout(50.0, 30.0)
    assert stream.events == [RtpTimedOut(stream_id=1, idle=30.0, rtime=50.0)]


def test_oversized_limit_is_1500_bytes() -> None:
    """A 1500-byte packet is taken; 1501 bytes is oversized."""
    stream = make_stream()
    receive_after_live_source(stream, rtp(2, 320, payload=bytes(1488)), PEER)
    stream.receive(rtp(3, 480, payload=bytes(1489)), PEER, 1.04)
    assert stream.drops == {"oversized": 1}
    assert stream.packets_received == 2


def test_rfc4733_one_digit_per_key_press() -> None:
    """Two key presses with triple end packets give exactly two DtmfReceived events."""
    stream = make_stream()
    now = feed(stream, key_press("5", 10, 8000) + key_press("5", 16, 8800))
    assert [(e.digit, e.source) for e in stream.events] == [("5", "rfc4733")] * 2  # type: ignore[union-attr]
    stream.expire_dtmf(now + 5.0)
    assert len(stream.events) == 2
    assert stream.drops == {}


def test_a_key_press_says_when_it_began() -> None:
    """key_began: an RFC 4733 key's first packet (also when its end was lost), an in-band
    digit's detection delay before its report, an INFO digit's own time."""
    stream = make_stream()
    feed(stream, key_press("#", 10, 8000), start=1.0)
    assert stream.key_began == pytest.approx(1.02)  # its first update, not its end at 1.08
    now = feed(stream, key_press("1", 20, 9600)[:3], start=2.0)
    stream.expire_dtmf(now + 0.5)
    assert stream.key_began == pytest.approx(2.02)
    stream.report_digit("5", "inband", 3.0)
    assert 2.9 <= stream.key_began < 3.0
    stream.report_digit("6", "info", 4.0)
    assert stream.key_began == 4.0


def test_rfc4733_lost_end_is_reported_on_expiry() -> None:
    """A key press whose end packets were all lost is reported by expire_dtmf."""
    stream = make_stream()
    now = feed(stream, key_press("3", 10, 8000)[:3])
    stream.expire_dtmf(now + 0.01)
    assert stream.events == []
    stream.expire_dtmf(now + 0.5)
    assert stream.events == [
        DtmfReceived(stream_id=1, digit="3", source="rfc4733", rtime=now + 0.5)
    ]


def test_comfort_noise_is_accepted_silently() -> None:
    """Comfort noise (PT 13, RFC 3389) is neither dropped nor reported, and refreshes the timer."""
    stream = make_stream()
    stream.receive(rtp(1, 160, pt=13, payload=b"\x40"), PEER, 7.0)
    assert stream.drops == {}
    assert stream.events == []
    assert stream.last_rx == 7.0


# -- RTCP -----------------------------------------------------------------------------------------


def peer_sr(ntp: int = 0xE1234567_89ABCDEF) -> bytes:
    """A compound SR + SDES from the peer's SSRC."""
    report = SenderReport(
        ssrc=PEER_SSRC, ntp_timestamp=ntp, rtp_timestamp=0, packet_count=5, octet_count=800
    )
    return build_compound(report, "peer@example")


def test_rtcp_multiplexed_on_the_rtp_port() -> None:
    """An RTCP packet (PT 200) on the RTP path goes to the RTCP side, not the audio path."""
    stream = make_stream()
    receive_after_live_source(stream, peer_sr(), PEER)
    assert stream.rtcp.received == 1
    assert stream.packets_received == 1
    assert stream.drops == {}
    stream.receive(b"\x80\xc8\x00\x09" + bytes(12), PEER, 1.1)  # SR claiming 40 bytes, has 16
    assert stream.drops == {"rtcp_malformed": 1}


def test_rtcp_report_rr_before_sending_then_sr() -> None:
    """Before we send the report is an RR without blocks; after sending, an SR with our counts."""
    stream = make_stream(timestamp=1000)
    (rr,) = parse_compound(stream.rtcp_report(1.0, 1_700_000_000.0))
    assert rr == ReceiverReport(ssrc=OUR_SSRC)
    sent(stream, range(1, 4))
    (sr,) = parse_compound(stream.rtcp_report(1.0, 1_700_000_000.0))
    assert isinstance(sr, SenderReport)
    assert (sr.ssrc, sr.packet_count, sr.octet_count) == (OUR_SSRC, 3, 480)
    assert sr.rtp_timestamp == 1000 + 3 * 160
    assert sr.ntp_timestamp == ntp_timestamp(1_700_000_000.0)
    assert sr.reports == ()


def test_rtcp_report_block_after_receiving() -> None:
    """Once packets arrived the report has a block on the peer: highest seq, loss, LSR/DLSR."""
    stream = make_stream()
    now = feed(stream, [rtp(seq, 160 * seq) for seq in range(10) if seq != 5])
    stream.receive_rtcp(peer_sr(), now)
    (rr,) = parse_compound(stream.rtcp_report(now + 0.5, 1_700_000_000.0))
    assert isinstance(rr, ReceiverReport)
    (block,) = rr.reports
    assert (block.ssrc, block.highest_sequence, block.cumulative_lost) == (PEER_SSRC, 9, 1)
    assert block.last_sr == ntp_middle32(0xE1234567_89ABCDEF)
    assert block.delay_since_last_sr == 32768  # 0.5 s in 1/65536 s


# -- bridging -------------------------------------------------------------------------------------


def relay(a: MediaStream, packets: list[bytes], start: float = 1.0) -> list[RtpPacket]:
    """Deliver ``packets`` to A from PEER; return what A relays, all on B's socket, parsed."""
    out = []
    for i, data in enumerate(packets):
        result = a.receive(data, PEER, start + 0.02 * i)
        assert result is not None and result[0] is a.peer
        out.append(RtpPacket.parse(result[1]))
    return out


def test_bridged_streams_do_not_send_their_own_packets() -> None:
    """While bridged neither side sends on its own tick; unbridged, B sends again."""
    a, b = bridged()
    assert a.next_packet(3, 0.06) is None
    assert b.next_packet(3, 0.06) is None
    a.peer = b.peer = None
    assert b.next_packet(4, 0.08) is not None


def test_bridged_audio_is_transcoded_and_restamped() -> None:
    """A's PCMU audio leaves on B as PCMA with B's SSRC, PT, sequence and a fixed ts offset."""
    a, b = bridged()
    a.next_packet(5, 0.1)
    b.next_packet(5, 0.1)
    payloads = [bytes((i * 37 + k) % 256 for k in range(160)) for i in range(4)]
    src_ts = [0xFFFFFF00 + 160 * i for i in range(4)]
    out = relay(a, [rtp(50 + i, src_ts[i] % 2**32, payload=p) for i, p in enumerate(payloads)])
    assert [p.payload for p in out] == [g711.transcode(p, "PCMU", "PCMA") for p in payloads]
    assert {(p.ssrc, p.payload_type) for p in out} == {(B_SSRC, 8)}
    assert [p.marker for p in out] == [True, False, False, False]
    assert [p.sequence_number for p in out] == [302, 303, 304, 305]
    assert out[0].timestamp == b.timestamp(5)
    assert [(p.timestamp - out[0].timestamp) % 2**32 for p in out] == [0, 160, 320, 480]


def test_bridged_audio_back_from_b_to_a() -> None:
    """B's PCMA audio reaches A as PCMU."""
    a, b = bridged()
    payload = bytes(range(160))
    result = b.receive(rtp(7, 700, pt=8, payload=payload), PEER_B, 1.0)
    assert result is not None and result[0] is a
    packet = RtpPacket.parse(result[1])
    assert (packet.ssrc, packet.payload_type) == (OUR_SSRC, 0)
    assert packet.payload == g711.transcode(payload, "PCMA", "PCMU")


def test_telephone_event_relayed_with_b_payload_type() -> None:
    """A's RFC 4733 key press leaves on B with B's te PT; A reports the digit once."""
    a, b = bridged(b_te=96)
    out = relay(a, key_press("4", 30, 9000))
    assert {p.payload_type for p in out} == {96}
    assert [p.payload for p in out] == [
        p.payload for p in map(RtpPacket.parse, key_press("4", 30, 9000))
    ]
    assert len({p.timestamp for p in out}) == 1
    assert [e.digit for e in a.events] == ["4"]  # type: ignore[union-attr]
    assert b.events == []


def test_telephone_event_becomes_a_tone_when_b_has_none() -> None:
    """Without telephone-event on B, A's key press is played to B as a Q.23 tone, once."""
    a, b = bridged(b_te=None)
    for i, data in enumerate(key_press("6", 30, 9000)):
        assert a.receive(data, PEER, 1.0 + 0.02 * i) is None
    packets = sent(b, range(3, 8))
    assert {p.payload_type for p in packets} == {8}
    low, high = dominant_frequencies(g711.decode("PCMA", b"".join(p.payload for p in packets)))
    assert abs(low - 770) <= 10
    assert abs(high - 1477) <= 10
    sent(b, [8, 9])  # the 40 ms pause
    assert b.next_packet(10, 0.2) is None


@pytest.mark.parametrize(
    ("source", "b_te", "b_sends"),
    [
        ("inband", 96, "events"),
        ("inband", None, None),
        ("info", 96, "events"),
        ("info", None, "tone"),
    ],
)
def test_reported_digit_reaches_b(source: str, b_te: int | None, b_sends: str | None) -> None:
    """An in-band or INFO digit on A is sent by B as RFC 4733 if B negotiated it, INFO as a tone."""
    a, b = bridged(b_te=b_te)
    a.report_digit("2", source, 1.0)  # type: ignore[arg-type]
    packet = b.next_packet(3, 1.02)
    if b_sends is None:
        assert packet is None
        return
    assert packet is not None
    parsed = RtpPacket.parse(packet)
    if b_sends == "events":
        assert (parsed.payload_type, parsed.marker, parsed.payload[0]) == (96, True, 2)
    else:
        assert parsed.payload_type == 8


# -- robustness -----------------------------------------------------------------------------------

ADDRESSES = st.one_of(
    st.just(PEER),
    st.sampled_from([OTHER, ("::1", 5004, 0, 0)]),
    st.tuples(st.text(max_size=20), st.integers(0, 65535)),
)
DROP_REASONS = {"short", "oversized", "version", "source", "ssrc", "payload_type", "malformed"}
HEADERS = st.builds(
    lambda first, second, seq_ts, ssrc, payload: bytes([first, second]) + seq_ts + ssrc + payload,
    st.sampled_from([0x80, 0x80, 0x81, 0x8F, 0x90, 0xA0, 0xB3, 0x40]),
    st.sampled_from([0, 8, 13, TE, TE | 0x80, 0x80, 200, 201, 127]),
    st.binary(min_size=6, max_size=6),
    st.sampled_from([PEER_SSRC.to_bytes(4, "big"), b"\x00\x00\xbe\xef"]),
    st.one_of(st.binary(max_size=8), st.binary(min_size=20, max_size=200)),
)


DATAGRAMS = st.tuples(st.one_of(st.binary(max_size=1600), HEADERS), ADDRESSES, st.floats(0.0, 1.5))


@given(datagrams=st.lists(DATAGRAMS, min_size=1, max_size=30), bridge=st.booleans())
@settings(max_examples=300, deadline=None)
def test_receive_never_raises(
    datagrams: list[tuple[bytes, tuple[str, int], float]], bridge: bool
) -> None:
    """Arbitrary datagrams from arbitrary sources at any pace are taken or dropped, never raised."""
    a, b = bridged() if bridge else (make_stream(), None)
    now = 1.0
    for data, addr, gap in datagrams:
        now += gap
        result = a.receive(data, addr, now)
        assert result is None or (result[0] is b and isinstance(result[1], bytes))
        a.expire_dtmf(now)
        a.check_timeout(now, 1.0)
    assert set(a.drops) <= DROP_REASONS | {"rtcp_malformed"}


def test_reorder_buffer_puts_audio_in_order_and_counts_late_packets() -> None:
    """Captured audio comes out in sequence order; a packet older than the buffer is counted."""
    stream = make_stream()
    stream.capture_rx = True
    order = [1, 3, 2, *range(4, 20), 0]
    for n, seq in enumerate(order):
        stream.receive(rtp(100 + seq, 160 * seq, payload=bytes([seq]) * 160), PEER, 0.02 * n)
    assert [payload[0] for _codec, payload in stream.rx_audio] == list(range(1, 20))
    assert stream.late_packets == 1
