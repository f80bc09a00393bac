"""RTCP sender and receiver reports (RFC 3550 §6.4) and SDES CNAME (§6.5).

Theory of operation
-------------------
``parse_compound`` checks every packet's version and length in a compound packet (§6.1) and
returns its SRs and RRs, skipping other types. ``build_compound`` adds the SDES CNAME §6.1 requires.
The statistics a report block carries are kept by ``reception.ReceptionStats``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "ReceiverReport",
    "ReportBlock",
    "SenderReport",
    "build_compound",
    "build_sdes",
    "ntp_middle32",
    "ntp_timestamp",
    "parse_compound",
]

PT_SR = 200
PT_RR = 201
PT_SDES = 202
_SDES_CNAME = 1
_VERSION = 2
_NTP_UNIX_OFFSET = 2_208_988_800  # seconds from 1900-01-01 (NTP era 0) to 1970-01-01
_HEADER = struct.Struct("!BBH")  # V/P/count, packet type, length in 32-bit words minus one
_SSRC = struct.Struct("!I")
_SENDER_INFO = struct.Struct("!IQIII")  # SSRC, NTP timestamp, RTP timestamp, packets, octets
_BLOCK = struct.Struct("!IIIIII")
_MAX_BLOCKS = 31  # the 5-bit reception report count


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1); ``delay_since_last_sr`` is in 1/65536 s."""

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def __post_init__(self) -> None:
        _check_u32(
            self.ssrc, self.highest_sequence, self.jitter, self.last_sr, self.delay_since_last_sr
        )
        if not 0 <= self.fraction_lost <= 0xFF:
            raise ValueError(f"RTCP fraction lost {self.fraction_lost} is outside 0..255")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise ValueError(f"RTCP cumulative lost {self.cumulative_lost} is not signed 24-bit")

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> ReportBlock:
        """Parse the 24-octet report block at ``offset`` (RFC 3550 §6.4.1); ValueError if short."""
        if len(data) < offset + _BLOCK.size:
            raise ValueError(f"RTCP report block has {len(data) - offset} bytes, not 24")
        ssrc, loss, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        lost = loss & 0xFFFFFF
        return cls(
            ssrc=ssrc,
            fraction_lost=loss >> 24,
            cumulative_lost=lost - 0x1000000 if lost & 0x800000 else lost,
            highest_sequence=highest,
            jitter=jitter,
            last_sr=lsr,
            delay_since_last_sr=dlsr,
        )

    def serialize(self) -> bytes:
        """The 24-octet block as sent (RFC 3550 §6.4.1)."""
        loss = (self.fraction_lost << 24) | (self.cumulative_lost & 0xFFFFFF)
        highest, lsr, dlsr = self.highest_sequence, self.last_sr, self.delay_since_last_sr
        return _BLOCK.pack(self.ssrc, loss, highest, self.jitter, lsr, dlsr)


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport:
    """An SR packet (RFC 3550 §6.4.1); ``parse`` skips profile-specific extensions."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        _check_u32(self.ssrc, self.rtp_timestamp, self.packet_count, self.octet_count)
        if not 0 <= self.ntp_timestamp < 1 << 64:
            raise ValueError(f"NTP timestamp {self.ntp_timestamp} is not a 64-bit value")

    @classmethod
    def parse(cls, data: bytes) -> SenderReport:
        """Parse ``data`` as exactly one SR packet (RFC 3550 §6.4.1); ValueError otherwise."""
        return _sender_report(*_only_packet(data, PT_SR))

    def serialize(self) -> bytes:
        """The SR packet as sent, without padding (RFC 3550 §6.4.1)."""
        info = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        return _packet(PT_SR, len(self.reports), info + _blocks(self.reports))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport:
    """An RR packet (RFC 3550 §6.4.2): the reporter's SSRC and up to 31 report blocks."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __post_init__(self) -> None:
        _check_u32(self.ssrc)

    @classmethod
    def parse(cls, data: bytes) -> ReceiverReport:
        """Parse ``data`` as exactly one RR packet (RFC 3550 §6.4.2); ValueError otherwise."""
        return _receiver_report(*_only_packet(data, PT_RR))

    def serialize(self) -> bytes:
        """The RR packet as sent, without padding (RFC 3550 §6.4.2)."""
        return _packet(PT_RR, len(self.reports), _SSRC.pack(self.ssrc) + _blocks(self.reports))


def _check_u32(*values: int) -> None:
    for value in values:
        if not 0 <= value <= 0xFFFFFFFF:
            raise ValueError(f"RTCP field value {value} is not an unsigned 32-bit value")


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(block.serialize() for block in reports)


def _packet(packet_type: int, count: int, body: bytes) -> bytes:
    """Header + body; the body is a whole number of 32-bit words."""
    if count > _MAX_BLOCKS:
        raise ValueError(f"RTCP packet has {count} blocks or chunks, more than 31")
    return _HEADER.pack((_VERSION << 6) | count, packet_type, len(body) // 4) + body


def _report_blocks(body: bytes, offset: int, count: int, name: str) -> tuple[ReportBlock, ...]:
    needed = offset + count * _BLOCK.size
    if needed > len(body):
        raise ValueError(
            f"RTCP {name} with {count} report blocks needs {needed + 4} bytes, has {len(body) + 4}"
        )
    return tuple(ReportBlock.parse(body, at) for at in range(offset, needed, _BLOCK.size))


def _sender_report(count: int, body: bytes) -> SenderReport:
    reports = _report_blocks(body, _SENDER_INFO.size, count, "SR")
    ssrc, ntp, rtp_ts, packets, octets = _SENDER_INFO.unpack_from(body)
    return SenderReport(
        ssrc=ssrc,
        ntp_timestamp=ntp,
        rtp_timestamp=rtp_ts,
        packet_count=packets,
        octet_count=octets,
        reports=reports,
    )


def _receiver_report(count: int, body: bytes) -> ReceiverReport:
    reports = _report_blocks(body, _SSRC.size, count, "RR")
    return ReceiverReport(ssrc=_SSRC.unpack_from(body)[0], reports=reports)


def _packets(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """Each packet of a compound packet as (packet type, count, body without header/padding)."""
    if not data:
        raise ValueError("RTCP compound packet is empty")
    offset = 0
    while offset < len(data):
        left = len(data) - offset
        if left < _HEADER.size:
            raise ValueError(f"RTCP packet header is truncated: {left} bytes left")
        first, packet_type, words = _HEADER.unpack_from(data, offset)
        if first >> 6 != _VERSION:
            raise ValueError(f"RTCP version is {first >> 6}, not 2")
        size = 4 * (words + 1)
        if size > left:
            raise ValueError(f"RTCP packet of {size} bytes runs past the {left} bytes left")
        end = offset + size
        if first & 0x20 and not 0 < data[end - 1] <= size - 4:
            raise ValueError(f"RTCP padding length {data[end - 1]} does not fit {size} bytes")
        end -= data[end - 1] if first & 0x20 else 0
        yield packet_type, first & 0x1F, data[offset + 4 : end]
        offset += size


def _only_packet(data: bytes, packet_type: int) -> tuple[int, bytes]:
    """The (count, body) of ``data`` when it is exactly one packet of ``packet_type``."""
    found = list(_packets(data))
    if len(found) != 1 or found[0][0] != packet_type:
        types = [kind for kind, _, _ in found]
        raise ValueError(f"expected one RTCP packet of type {packet_type}, found types {types}")
    return found[0][1], found[0][2]


def parse_compound(data: bytes) -> list[SenderReport | ReceiverReport]:
    """The SRs and RRs of a compound RTCP packet, in order (RFC 3550 §6.1, §6.4).

    Other types (SDES, BYE, APP, ...) are skipped once their length has been checked.

    Raises:
        ValueError: for no data, a version other than 2, a length or padding that does not fit,
            or an SR/RR too short for its report count.
    """
    reports: list[SenderReport | ReceiverReport] = []
    for packet_type, count, body in _packets(data):
        if packet_type == PT_SR:
            reports.append(_sender_report(count, body))
        elif packet_type == PT_RR:
            reports.append(_receiver_report(count, body))
    return reports


def build_sdes(ssrc: int, cname: str) -> bytes:
    """An SDES packet: one chunk, one CNAME item (RFC 3550 §6.5.1); ValueError if over 255 B."""
    text = cname.encode("utf-8")
    if not 0 < len(text) <= 255:
        raise ValueError(f"SDES CNAME is {len(text)} bytes, outside 1..255")
    chunk = _SSRC.pack(ssrc) + bytes([_SDES_CNAME, len(text)]) + text
    # §6.5: "The list of items in each chunk MUST be terminated by one or more null octets",
    # then null octets up to the next 32-bit boundary.
    chunk += bytes(4 - len(chunk) % 4)
    return _packet(PT_SDES, 1, chunk)


def build_compound(report: SenderReport | ReceiverReport, cname: str) -> bytes:
    """The report, then SDES: "Each compound RTCP packet MUST include an SDES CNAME" (§6.1)."""
    return report.serialize() + build_sdes(report.ssrc, cname)


def ntp_timestamp(unix_time: float) -> int:
    """The 64-bit NTP timestamp (RFC 3550 §4) of a Unix time; seconds wrap in 2036 (era 1)."""
    seconds = math.floor(unix_time)
    fraction = int((unix_time - seconds) * 4294967296.0)
    return (((seconds + _NTP_UNIX_OFFSET) & 0xFFFFFFFF) << 32) | fraction


def ntp_middle32(ntp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp: the LSR field (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF
