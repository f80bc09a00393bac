"""Tests for RTCP SR/RR, SDES CNAME and receiver statistics (RFC 3550 §6, Appendix A)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.media.reception import ReceptionStats
from callserver.media.rtcp import (
    ReceiverReport,
    ReportBlock,
    SenderReport,
    build_compound,
    build_sdes,
    ntp_middle32,
    ntp_timestamp,
    parse_compound,
)

U32 = st.integers(0, 0xFFFFFFFF)
BLOCKS = st.lists(
    st.builds(
        ReportBlock,
        ssrc=U32,
        fraction_lost=st.integers(0, 255),
        cumulative_lost=st.integers(-0x800000, 0x7FFFFF),
        highest_sequence=U32,
        jitter=U32,
        last_sr=U32,
        delay_since_last_sr=U32,
    ),
    max_size=31,
).map(tuple)
SENDER_REPORTS = st.builds(
    SenderReport,
    ssrc=U32,
    ntp_timestamp=st.integers(0, 2**64 - 1),
    rtp_timestamp=U32,
    packet_count=U32,
    octet_count=U32,
    reports=BLOCKS,
)
RECEIVER_REPORTS = st.builds(ReceiverReport, ssrc=U32, reports=BLOCKS)
BLOCK = ReportBlock(ssrc=0x0A0B0C0D, fraction_lost=64, cumulative_lost=3, highest_sequence=70000)


def feed(stats: ReceptionStats, seqs: list[int], spacing: int = 160) -> list[bool]:
    """Feed packets sent every ``spacing`` timestamp units that arrive on time."""
    return [stats.update(seq & 0xFFFF, seq * spacing, 5000 + seq * spacing) for seq in seqs]


@given(SENDER_REPORTS)
def test_sender_report_round_trip(report: SenderReport) -> None:
    """An SR survives serialize then parse, alone or as a compound packet."""
    data = report.serialize()
    assert len(data) == 28 + 24 * len(report.reports)
    assert SenderReport.parse(data) == report
    assert parse_compound(data) == [report]


@given(RECEIVER_REPORTS)
def test_receiver_report_round_trip(report: ReceiverReport) -> None:
    """An RR survives serialize then parse, alone or as a compound packet."""
    data = report.serialize()
    assert len(data) == 8 + 24 * len(report.reports)
    assert ReceiverReport.parse(data) == report
    assert parse_compound(data) == [report]


def test_report_block_wire_format() -> None:
    """Fraction lost shares a word with the signed 24-bit cumulative loss (RFC 3550 §6.4.1)."""
    block = ReportBlock(ssrc=1, fraction_lost=0x40, cumulative_lost=-1, highest_sequence=2)
    data = block.serialize()
    assert data == bytes.fromhex("00000001 40ffffff 00000002") + bytes(12)
    assert ReportBlock.parse(data) == block
    with pytest.raises(ValueError, match="report block has 23 bytes, not 24"):
        ReportBlock.parse(data[:-1])


def test_hand_built_compound_sr_and_sdes() -> None:
    """A compound SR + SDES CNAME written byte by byte parses to the SR alone."""
    sender_info = struct.pack("!IQIII", 0x11223344, 0xE8F5_0000_8000_0000, 160000, 50, 8000)
    block = struct.pack("!IIIIII", 0x0A0B0C0D, (64 << 24) | 3, 70000, 12, 0xF5000080, 65536)
    sr = bytes([0x81, 200]) + struct.pack("!H", 12) + sender_info + block
    chunk = struct.pack("!I", 0x11223344) + b"\x01\x05alice" + b"\x00"
    sdes = bytes([0x81, 202]) + struct.pack("!H", 3) + chunk
    assert parse_compound(sr + sdes) == [
        SenderReport(
            ssrc=0x11223344,
            ntp_timestamp=0xE8F5_0000_8000_0000,
            rtp_timestamp=160000,
            packet_count=50,
            octet_count=8000,
            reports=(
                ReportBlock(
                    ssrc=0x0A0B0C0D,
                    fraction_lost=64,
                    cumulative_lost=3,
                    highest_sequence=70000,
                    jitter=12,
                    last_sr=0xF5000080,
                    delay_since_last_sr=65536,
                ),
            ),
        )
    ]


def test_compound_keeps_reports_in_order_and_skips_bye() -> None:
    """Every SR and RR of a compound packet comes back in order; BYE is skipped."""
    rr = ReceiverReport(ssrc=9, reports=(BLOCK,))
    bye = bytes([0x81, 203, 0, 1]) + struct.pack("!I", 9)
    sr = SenderReport(ssrc=9, ntp_timestamp=1, rtp_timestamp=2, packet_count=3, octet_count=4)
    assert parse_compound(rr.serialize() + build_sdes(9, "x") + bye + sr.serialize()) == [rr, sr]


def test_padding_at_the_end_of_a_compound_packet() -> None:
    """Padding on the last packet is counted in its length and removed (RFC 3550 §6.4.1)."""
    rr = ReceiverReport(ssrc=7).serialize()
    padded = bytes([0xA0, 201, 0, 2]) + rr[4:] + b"\x00\x00\x00\x04"
    assert parse_compound(padded) == [ReceiverReport(ssrc=7)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "compound packet is empty"),
        (b"\x80\xc9", "header is truncated: 2 bytes left"),
        (b"\x40\xc9\x00\x01\x00\x00\x00\x07", "RTCP version is 1, not 2"),
        (b"\x80\xc9\x00\x02\x00\x00\x00\x07", "packet of 12 bytes runs past the 8 bytes left"),
        (b"\xa0\xc9\x00\x01\x00\x00\x00\x00", "padding length 0 does not fit 8 bytes"),
        (b"\xa0\xc9\x00\x01\x00\x00\x00\x05", "padding length 5 does not fit 8 bytes"),
        (b"\x80\xc9\x00\x00", "RR with 0 report blocks needs 8 bytes, has 4"),
        (b"\x82\xc8\x00\x06" + bytes(24), "SR with 2 report blocks needs 76 bytes, has 28"),
        (b"\x80\xcb\x00\x01", "packet of 8 bytes runs past the 4 bytes left"),
    ],
)
def test_malformed_compound_packets_are_refused(data: bytes, message: str) -> None:
    """Bad lengths, versions and padding in any packet of a compound raise ValueError."""
    with pytest.raises(ValueError, match=message):
        parse_compound(data)


def test_parse_wants_exactly_one_packet_of_its_type() -> None:
    """SenderReport.parse refuses an RR, and ReceiverReport.parse a compound of two."""
    rr = ReceiverReport(ssrc=1).serialize()
    with pytest.raises(ValueError, match=r"type 200, found types \[201\]"):
        SenderReport.parse(rr)
    with pytest.raises(ValueError, match=r"type 201, found types \[201, 201\]"):
        ReceiverReport.parse(rr + rr)


def test_out_of_range_values_are_refused() -> None:
    """Values the wire format cannot carry cannot be built."""
    with pytest.raises(ValueError, match="fraction lost 256"):
        ReportBlock(ssrc=1, fraction_lost=256)
    with pytest.raises(ValueError, match="not signed 24-bit"):
        ReportBlock(ssrc=1, cumulative_lost=0x800000)
    with pytest.raises(ValueError, match="not an unsigned 32-bit value"):
        ReceiverReport(ssrc=-1)
    with pytest.raises(ValueError, match="not a 64-bit value"):
        SenderReport(ssrc=1, ntp_timestamp=2**64, rtp_timestamp=0, packet_count=0, octet_count=0)
    with pytest.raises(ValueError, match="32 blocks or chunks, more than 31"):
        ReceiverReport(ssrc=1, reports=(BLOCK,) * 32).serialize()


def test_sdes_cname_chunk_is_null_terminated_and_word_aligned() -> None:
    """The CNAME item ends with at least one null octet, up to a 32-bit boundary (§6.5)."""
    assert build_sdes(5, "abcde") == bytes.fromhex("81ca0003 00000005 0105") + b"abcde\x00"
    assert build_sdes(5, "abcdefg") == bytes.fromhex("81ca0004 00000005 0107") + b"abcdefg" + bytes(
        3
    )
    # 4 + 2 + 6 octets end on a boundary, so a whole word of nulls terminates the list.
    assert build_sdes(5, "abcdef") == bytes.fromhex("81ca0004 00000005 0106") + b"abcdef" + bytes(4)
    with pytest.raises(ValueError, match="CNAME is 256 bytes"):
        build_sdes(5, "x" * 256)
    with pytest.raises(ValueError, match="CNAME is 0 bytes"):
        build_sdes(5, "")


def test_build_compound_is_the_report_then_its_cname() -> None:
    """The compound packet starts with the report and carries the reporter's CNAME (§6.1)."""
    report = ReceiverReport(ssrc=0xCAFE, reports=(BLOCK,))
    data = build_compound(report, "callserver@192.0.2.1")
    assert data == report.serialize() + build_sdes(0xCAFE, "callserver@192.0.2.1")
    assert parse_compound(data) == [report]


def test_ntp_timestamps() -> None:
    """Unix time maps to seconds since 1900 and a 32-bit fraction; LSR is the middle 32 bits."""
    assert ntp_timestamp(0.0) == 2_208_988_800 << 32
    assert ntp_timestamp(1.5) == (2_208_988_801 << 32) | 0x8000_0000
    assert ntp_timestamp(2_085_978_496.25) == 0x4000_0000  # 2036-02-07: NTP era 1 begins
    assert ntp_middle32(0x1234_5678_9ABC_DEF0) == 0x5678_9ABC


def test_probation_then_valid() -> None:
    """A new source is valid only after two packets in sequence (A.1 MIN_SEQUENTIAL)."""
    stats = ReceptionStats()
    assert feed(stats, [100, 300, 301, 302]) == [False, False, True, True]
    assert stats.received == 2
    assert stats.extended_highest_sequence == 302


def test_report_before_a_valid_source_is_empty() -> None:
    """Before validation the report block carries no counts."""
    stats = ReceptionStats()
    feed(stats, [40])
    assert stats.report_block(1, 0.0, None) == ReportBlock(ssrc=1)


def test_fraction_lost_after_dropping_packets() -> None:
    """Ten dropped packets out of 99 expected give fraction 25/256, then 0 without loss (A.3)."""
    stats = ReceptionStats()
    dropped = set(range(20, 30))
    feed(stats, [seq for seq in range(100) if seq not in dropped])
    block = stats.report_block(0xBEEF, 10.0, None)
    assert (block.fraction_lost, block.cumulative_lost) == (10 * 256 // 99, 10)
    assert block.highest_sequence == 99
    feed(stats, list(range(100, 200)))
    block = stats.report_block(0xBEEF, 15.0, None)
    assert (block.fraction_lost, block.cumulative_lost) == (0, 10)


def test_lost_counts_the_gaps_and_leaves_the_report_interval_alone() -> None:
    """``lost`` is the cumulative loss (RFC 3550 §6.4.1) and reading it starts no interval."""
    stats = ReceptionStats()
    assert stats.lost == 0
    feed(stats, [seq for seq in range(100) if seq not in range(20, 30)])
    assert stats.lost == 10
    assert stats.report_block(0xBEEF, 10.0, None).fraction_lost == 10 * 256 // 99


def test_jitter_is_zero_for_constant_spacing() -> None:
    """Packets arriving exactly as they were sent have no interarrival jitter (A.8)."""
    stats = ReceptionStats()
    feed(stats, list(range(500)))
    assert stats.jitter == 0
    assert stats.report_block(1, 0.0, None).jitter == 0


def test_jitter_grows_with_varied_spacing() -> None:
    """Arrivals alternating 80 units early and late drive the jitter towards 80 (A.8)."""
    stats = ReceptionStats()
    seen = []
    for seq in range(300):
        stats.update(seq, seq * 160, seq * 160 + (80 if seq % 2 else 0))
        seen.append(stats.jitter)
    assert seen[10] > 0
    assert seen[10] < seen[40] < seen[299]
    assert 70 <= stats.jitter <= 80


def test_sequence_wrap_counts_a_cycle() -> None:
    """Crossing 65535 -> 0 adds a cycle to the extended highest sequence, with no loss (A.1)."""
    stats = ReceptionStats()
    assert all(feed(stats, list(range(65530, 65546)))[1:])
    block = stats.report_block(1, 0.0, None)
    assert block.highest_sequence == 65536 + 9
    assert (block.cumulative_lost, block.fraction_lost) == (0, 0)


def test_large_jump_restarts_after_a_second_packet() -> None:
    """A far jump is dropped until the next packet confirms it, then the counts restart (A.1)."""
    stats = ReceptionStats()
    feed(stats, list(range(10)))
    assert feed(stats, [30000, 30001, 30002]) == [False, True, True]
    block = stats.report_block(1, 0.0, None)
    assert stats.received == 2
    assert (block.highest_sequence, block.cumulative_lost) == (30002, 0)


def test_lone_stray_packet_does_not_restart() -> None:
    """One packet far off the sequence is dropped and the sequence carries on (A.1)."""
    stats = ReceptionStats()
    feed(stats, list(range(10)))
    assert feed(stats, [40000, 10, 11]) == [False, True, True]
    assert stats.report_block(1, 0.0, None).highest_sequence == 11


def test_packets_too_old_are_dropped_but_reordered_ones_count() -> None:
    """A packet up to MAX_MISORDER behind counts; one further behind is refused (A.1)."""
    stats = ReceptionStats()
    feed(stats, [seq for seq in range(300) if seq not in (150, 250)])
    assert feed(stats, [250, 150]) == [True, False]
    assert stats.report_block(1, 0.0, None).cumulative_lost == 1


def test_duplicates_are_refused_but_counted_as_received() -> None:
    """A duplicate returns False yet counts as received, so loss may go negative (§6.4.1)."""
    stats = ReceptionStats()
    feed(stats, list(range(10)))
    assert feed(stats, [9, 5, 10]) == [False, False, True]
    assert stats.report_block(1, 0.0, None).cumulative_lost == -2


def test_lsr_and_dlsr_from_the_last_sender_report() -> None:
    """LSR is the middle of the SR's NTP time; DLSR the delay since it arrived in 1/65536 s."""
    stats = ReceptionStats()
    feed(stats, list(range(5)))
    lsr = ntp_middle32(ntp_timestamp(1_700_000_000.25))
    block = stats.report_block(1, 51.5, (lsr, 50.0))
    assert block.last_sr == lsr == ((ntp_timestamp(1_700_000_000.25) >> 16) & 0xFFFFFFFF)
    assert block.delay_since_last_sr == 98304
    assert stats.report_block(1, 52.0, None).last_sr == 0


def test_reset_starts_probation_again() -> None:
    """After reset (a new SSRC) the source must pass probation again."""
    stats = ReceptionStats()
    feed(stats, list(range(50)))
    stats.reset()
    assert feed(stats, [7, 8]) == [False, True]
    assert stats.received == 1
    assert stats.jitter == 0
