"""Tests for RTP packets and wrap-aware arithmetic (RFC 3550 §5.1, §5.3.1; RFC 5761 §4)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.media.rtp import (
    MAX_PACKET_BYTES,
    RtpPacket,
    build_header,
    is_rtcp,
    peek_header,
    peek_payload,
    seq_add,
    seq_diff,
    seq_newer,
    ts_add,
    ts_diff,
)

U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)


@st.composite
def packets(draw: st.DrawFn) -> RtpPacket:
    """Any valid RTP packet that fits in MAX_PACKET_BYTES."""
    profile = draw(st.none() | U16)
    words = draw(st.integers(0, 40)) if profile is not None else 0
    return RtpPacket(
        payload_type=draw(st.integers(0, 127)),
        sequence_number=draw(U16),
        timestamp=draw(U32),
        ssrc=draw(U32),
        marker=draw(st.booleans()),
        payload=draw(st.binary(max_size=400)),
        csrc=tuple(draw(st.lists(U32, max_size=15))),
        padding_size=draw(st.integers(0, 255)),
        extension_profile=profile,
        extension_data=draw(st.binary(min_size=4 * words, max_size=4 * words)),
    )


def packet(**fields: object) -> bytes:
    """A serialized G.711 packet with the given fields overriding defaults."""
    values: dict[str, object] = {
        "payload_type": 8,
        "sequence_number": 1000,
        "timestamp": 160000,
        "ssrc": 0x1234ABCD,
        "payload": bytes(160),
    }
    values.update(fields)
    return RtpPacket(**values).serialize()  # type: ignore[arg-type]


@given(packets())
def test_parse_serialize_round_trip(original: RtpPacket) -> None:
    """Every field survives serialize then parse, and the peek helpers agree with parse."""
    data = original.serialize()
    assert RtpPacket.parse(data) == original
    pt, marker, seq, timestamp, ssrc = peek_header(data)
    assert (pt, marker, seq, timestamp, ssrc) == (
        original.payload_type,
        original.marker,
        original.sequence_number,
        original.timestamp,
        original.ssrc,
    )
    assert peek_payload(data) == original.payload


def test_wire_format_of_a_plain_packet() -> None:
    """A packet without extras is the 12-octet header then the payload, V=2 in the top bits."""
    data = packet(marker=True, payload=b"\xd5\xd5")
    assert data == bytes.fromhex("8088 03e8 00027100 1234abcd d5d5")
    assert build_header(8, True, 1000, 160000, 0x1234ABCD) == data[:12]
    assert build_header(0, False, 65535, 0xFFFFFFFF, 1) == bytes.fromhex("8000ffffffffffff00000001")


def test_padding_is_written_with_its_count_last() -> None:
    """Padding ends with the count of padding octets, itself included (RFC 3550 §5.1)."""
    data = packet(payload=b"ab", padding_size=4)
    assert data[0] == 0xA0
    assert data[-6:] == b"ab\x00\x00\x00\x04"
    assert peek_payload(data) == b"ab"


def test_short_packet_is_refused() -> None:
    """Fewer than 12 octets cannot hold the fixed header."""
    with pytest.raises(ValueError, match="RTP packet is 9 bytes, shorter than the 12-byte"):
        RtpPacket.parse(bytes(9))
    with pytest.raises(ValueError, match="shorter than the 12-byte fixed header"):
        peek_header(b"\x80")
    with pytest.raises(ValueError, match="RTP packet is 0 bytes"):
        peek_payload(b"")


def test_other_versions_are_refused() -> None:
    """Only version 2 is RTP as RFC 3550 defines it."""
    data = bytearray(packet())
    data[0] = 0x40
    with pytest.raises(ValueError, match="RTP version is 1, not 2"):
        RtpPacket.parse(bytes(data))
    with pytest.raises(ValueError, match="RTP version is 1, not 2"):
        peek_header(bytes(data))
    with pytest.raises(ValueError, match="RTP version is 1, not 2"):
        peek_payload(bytes(data))


def test_csrc_list_past_the_end_is_refused() -> None:
    """A CSRC count the packet has no room for is refused."""
    data = bytes([0x83]) + packet(payload=b"")[1:] + bytes(8)
    with pytest.raises(ValueError, match="CSRC list of 3 entries runs past the end of the 20-byte"):
        RtpPacket.parse(data)
    with pytest.raises(ValueError, match="CSRC list of 3 entries"):
        peek_payload(data)


def test_truncated_extension_header_is_refused() -> None:
    """The X bit with fewer than 4 octets left has no extension header."""
    data = bytes([0x90]) + packet(payload=b"")[1:] + b"\xbe\xde"
    with pytest.raises(ValueError, match="header extension is truncated: no room"):
        RtpPacket.parse(data)
    with pytest.raises(ValueError, match="header extension is truncated: no room"):
        peek_payload(data)


def test_extension_longer_than_the_packet_is_refused() -> None:
    """An extension length running past the end of the packet is refused."""
    data = bytes([0x90]) + packet(payload=b"")[1:] + b"\xbe\xde\x00\x02" + bytes(4)
    with pytest.raises(ValueError, match="extension of 2 words is truncated"):
        RtpPacket.parse(data)


def test_zero_padding_count_is_refused() -> None:
    """A padding count of 0 cannot count its own octet."""
    data = bytes([0xA0]) + packet(payload=b"abc\x00")[1:]
    with pytest.raises(ValueError, match="padding length is 0"):
        RtpPacket.parse(data)
    with pytest.raises(ValueError, match="padding length is 0"):
        peek_payload(data)


def test_padding_beyond_the_payload_is_refused() -> None:
    """A padding count larger than what follows the header is refused."""
    data = bytes([0xA0]) + packet(payload=b"abc\x05")[1:]
    with pytest.raises(ValueError, match="padding length 5 is beyond the 4-byte payload"):
        RtpPacket.parse(data)
    assert RtpPacket.parse(bytes([0xA0]) + packet(payload=b"abc\x04")[1:]).payload == b""


def test_oversized_packet_is_refused() -> None:
    """A packet over MAX_PACKET_BYTES is refused; exactly the limit is accepted."""
    with pytest.raises(ValueError, match="RTP packet is 1501 bytes, larger than 1500"):
        RtpPacket.parse(packet(payload=bytes(MAX_PACKET_BYTES - 11)))
    assert len(RtpPacket.parse(packet(payload=bytes(MAX_PACKET_BYTES - 12))).payload) == 1488


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"payload_type": 128}, "payload type 128 is outside 0..127"),
        ({"sequence_number": 65536}, "sequence number 65536"),
        ({"timestamp": -1}, "timestamp -1"),
        ({"csrc": tuple(range(16))}, "16 entries, more than 15"),
        ({"padding_size": 256}, "padding size 256"),
        ({"extension_data": b"abcd"}, "needs an extension profile"),
        ({"extension_profile": 1, "extension_data": b"abc"}, "32-bit words"),
    ],
)
def test_out_of_range_fields_are_refused(fields: dict[str, object], message: str) -> None:
    """A packet value with a field its wire format cannot carry cannot be built."""
    with pytest.raises(ValueError, match=message):
        packet(**fields)


def test_extension_and_csrc_fields_on_the_wire() -> None:
    """CSRCs follow the fixed header, then the extension header with its length in words."""
    data = packet(csrc=(7,), extension_profile=0xBEDE, extension_data=b"\x10\xaa\x00\x00")
    assert data[0] == 0x91
    assert data[12:16] == struct.pack("!I", 7)
    assert data[16:24] == b"\xbe\xde\x00\x01\x10\xaa\x00\x00"
    assert peek_payload(data) == bytes(160)


def test_sequence_numbers_wrap_at_65535() -> None:
    """seq_add, seq_diff and seq_newer work across 65535 -> 0."""
    assert seq_add(65535, 1) == 0
    assert seq_add(65530, 10) == 4
    assert seq_diff(0, 65535) == 1
    assert seq_diff(65535, 0) == -1
    assert seq_diff(3, 65533) == 6
    assert seq_newer(0, 65535)
    assert not seq_newer(65535, 0)
    assert not seq_newer(5, 5)


def test_half_way_sequence_numbers_are_neither_newer() -> None:
    """Two numbers 32768 apart compare as neither newer, and their distance is -32768."""
    assert seq_diff(32768, 0) == -32768
    assert seq_diff(0, 32768) == -32768
    assert not seq_newer(32768, 0)
    assert not seq_newer(0, 32768)


def test_timestamps_wrap_at_2_to_the_32() -> None:
    """ts_add and ts_diff work across 2^32 - 1 -> 0."""
    assert ts_add(0xFFFFFFFF, 1) == 0
    assert ts_add(0xFFFFFF60, 160) == 0
    assert ts_diff(0, 0xFFFFFFFF) == 1
    assert ts_diff(0xFFFFFFFF, 0) == -1
    assert ts_diff(80, 0xFFFFFFB0) == 160


@given(U16, U16)
def test_seq_diff_is_the_signed_inverse_of_seq_add(a: int, b: int) -> None:
    """seq_diff is in -32768..32767 and adding it back to b gives a."""
    diff = seq_diff(a, b)
    assert -32768 <= diff <= 32767
    assert seq_add(b, diff) == a
    assert seq_newer(a, b) == (diff > 0)


@given(U32, U32)
def test_ts_diff_is_the_signed_inverse_of_ts_add(a: int, b: int) -> None:
    """ts_diff is a signed 32-bit distance and adding it back to b gives a."""
    diff = ts_diff(a, b)
    assert -(2**31) <= diff < 2**31
    assert ts_add(b, diff) == a


@pytest.mark.parametrize("payload_type", [0, 8, 101])
@pytest.mark.parametrize("marker", [False, True])
def test_rtp_is_not_rtcp(payload_type: int, marker: bool) -> None:
    """RTP with payload type 0, 8 or 101 is not taken for RTCP, marker or not (RFC 5761 §4)."""
    assert not is_rtcp(build_header(payload_type, marker, 1, 2, 3) + bytes(160))


@pytest.mark.parametrize("packet_type", [200, 201, 202, 203])
def test_rtcp_is_recognised(packet_type: int) -> None:
    """SR, RR, SDES and BYE have their packet type in the second octet (RFC 5761 §4)."""
    assert is_rtcp(bytes([0x81, packet_type, 0, 6]) + bytes(24))


def test_tiny_datagrams_are_not_rtcp() -> None:
    """Fewer than two octets cannot be classified as RTCP."""
    assert not is_rtcp(b"")
    assert not is_rtcp(b"\x81")
