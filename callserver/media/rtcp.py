"""RTCP sender and receiver reports (RFC 3550 §6.4), SDES CNAME (§6.5) and reception statistics.

Theory of operation
-------------------
``parse_compound`` checks every packet's version and length in a compound packet (§6.1) and
returns its SRs and RRs, skipping other types. ``build_compound`` adds the SDES CNAME §6.1 requires.
:class:`ReceptionStats` is the receiver side of one source in RFC 3550 Appendix A: A.1 sequence
validation, A.3 loss, A.8 jitter. Time comes in as arguments: arrival times in RTP timestamp
units, and ``now`` in seconds for reports.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from callserver.media.rtp import ts_diff

__all__ = [
    "ReceiverReport",
    "ReceptionStats",
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


class ReceptionStats:
    """Receiver statistics for one source (RFC 3550 Appendix A.1, A.3, A.8).

    Args:
        min_sequential: packets in sequence before a new source is valid (A.1 ``MIN_SEQUENTIAL``).
        max_dropout: the largest forward jump taken as loss, not a restart (``MAX_DROPOUT``).
        max_misorder: how far behind a packet may be and still count (``MAX_MISORDER``).
    """

    def __init__(
        self, *, min_sequential: int = 2, max_dropout: int = 3000, max_misorder: int = 100
    ) -> None:
        self._min_sequential = min_sequential
        self._max_dropout = max_dropout
        self._max_misorder = max_misorder
        self.reset()

    def reset(self) -> None:
        """Forget the source: the next packet starts probation again (a new SSRC, A.1)."""
        self._started = self._valid = False
        self._probation = self._min_sequential
        self._init_seq(0)
        self._transit: int | None = None
        self._jitter16 = 0  # A.8: the jitter estimate scaled by 16, kept as an integer

    def _init_seq(self, seq: int) -> None:
        """A.1 ``init_seq``: count from ``seq``."""
        self._base_seq = self._max_seq = seq
        self._bad_seq = 0x10001  # matches no sequence number
        self._cycles = 0
        self.received = 0
        self._received_prior = self._expected_prior = 0
        self._seen = 1  # bit k: max_seq - k arrived; duplicates within max_misorder show up

    @property
    def jitter(self) -> int:
        """The interarrival jitter in RTP timestamp units (A.8)."""
        return self._jitter16 >> 4

    @property
    def extended_highest_sequence(self) -> int:
        """The cycle count and the highest sequence number received (§6.4.1)."""
        return (self._cycles + self._max_seq) & 0xFFFFFFFF

    def update(self, seq: int, timestamp: int, arrival: int) -> bool:
        """Account for one RTP packet, ``arrival`` being its arrival time in RTP units (A.8).

        Returns:
            False while the source is on probation, for a far jump (A.1 restarts only once the
            next packet follows it), a packet more than ``max_misorder`` behind, or a duplicate
            (which §6.4.1 still counts as received); True otherwise.
        """
        if not self._started:
            self._started = True
            self._init_seq(seq)
            self._max_seq = (seq - 1) & 0xFFFF
        if not self._update_seq(seq):
            return False
        transit = (arrival - timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            # A.8: J(i) = J(i-1) + (|D(i-1,i)| - J(i-1))/16, integer form with J scaled by 16.
            d = abs(ts_diff(transit, self._transit))
            self._jitter16 += d - ((self._jitter16 + 8) >> 4)
        self._transit = transit
        return True

    def _update_seq(self, seq: int) -> bool:
        """A.1 ``update_seq``, plus duplicate detection within the misorder window."""
        if self._probation:
            return self._on_probation(seq)
        udelta = (seq - self._max_seq) & 0xFFFF
        if udelta < self._max_dropout:
            if udelta == 0:
                self.received += 1
                return False
            if seq < self._max_seq:
                self._cycles += 0x10000
            self._max_seq = seq
            self._seen = ((self._seen << udelta) | 1) & ((2 << self._max_misorder) - 1)
        elif udelta <= 0x10000 - self._max_misorder:
            if seq != self._bad_seq:
                self._bad_seq = (seq + 1) & 0xFFFF
                return False
            # "two sequential packets -- assume that the other side restarted without telling us"
            self._init_seq(seq)
            self._transit = None
        else:
            behind = 1 << (0x10000 - udelta)
            self.received += 1
            if self._seen & behind:
                return False
            self._seen |= behind
            return True
        self.received += 1
        return True

    def _on_probation(self, seq: int) -> bool:
        if seq != (self._max_seq + 1) & 0xFFFF:
            self._probation = self._min_sequential - 1
            self._max_seq = seq
            return False
        self._probation -= 1
        self._max_seq = seq
        if self._probation:
            return False
        self._init_seq(seq)
        self._valid = True
        self.received = 1
        return True

    def report_block(self, ssrc: int, now: float, last_sr: tuple[int, float] | None) -> ReportBlock:
        """The report block for this source, and a new interval for the fraction lost (A.3).

        Args:
            ssrc: the source's SSRC; ``now``: seconds, on the clock of ``last_sr``'s arrival.
            last_sr: (LSR, arrival time) of the source's last SR, LSR being ``ntp_middle32`` of
                its NTP timestamp; None if no SR has arrived (LSR and DLSR are then 0).
        """
        expected = self._cycles + self._max_seq - self._base_seq + 1 if self._valid else 0
        interval_expected = expected - self._expected_prior
        interval_lost = interval_expected - (self.received - self._received_prior)
        self._expected_prior, self._received_prior = expected, self.received
        fraction = 0
        if interval_expected > 0 and interval_lost > 0:
            fraction = min((interval_lost << 8) // interval_expected, 255)
        lsr = dlsr = 0
        if last_sr is not None:
            lsr = last_sr[0] & 0xFFFFFFFF
            dlsr = min(max(int((now - last_sr[1]) * 65536), 0), 0xFFFFFFFF)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=min(max(expected - self.received, -0x800000), 0x7FFFFF),
            highest_sequence=self.extended_highest_sequence if self._valid else 0,
            jitter=self.jitter,
            last_sr=lsr,
            delay_since_last_sr=dlsr,
        )
