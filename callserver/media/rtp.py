"""RTP data packets (RFC 3550 §5.1, §5.3.1) and wrap-aware sequence/timestamp arithmetic.

Theory of operation
-------------------
Two ways in. :class:`RtpPacket` is the full value: ``parse`` checks every length the header
announces (CSRC list, header extension, padding) and raises ``ValueError`` with a sentence saying
what is wrong; ``serialize`` writes it back. The per-packet hot path of the media engine does not
need all that: ``peek_header`` reads the fixed 12 octets with one ``struct`` call,
``peek_payload`` slices the payload out (a plain slice when there is no CSRC, extension or
padding, the usual case for G.711), and ``build_header`` packs an outgoing fixed header.

Sequence numbers (16 bits) and timestamps (32 bits) wrap; compare them only with the helpers
here (``seq_diff``, ``seq_newer``, ``ts_diff``), never with ``<`` (as aiortc's ``uint16_gt``).
``is_rtcp`` tells RTCP from RTP on a port that carries both (RFC 5761 §4).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "HEADER",
    "MAX_PACKET_BYTES",
    "RtpPacket",
    "build_header",
    "is_rtcp",
    "peek_header",
    "peek_payload",
    "seq_add",
    "seq_diff",
    "seq_newer",
    "ts_add",
    "ts_diff",
]

# RFC 3550 §5.1: V/P/X/CC, M/PT, sequence number, timestamp, SSRC.
HEADER = struct.Struct("!BBHII")
MAX_PACKET_BYTES = 1500  # one Ethernet MTU; a G.711 packet at 20 ms is 172 octets
_HEADER_BYTES = 12
_VERSION = 2
_EXTENSION_HEADER = struct.Struct("!HH")
_CSRC = struct.Struct("!I")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP data packet (RFC 3550 §5.1).

    ``padding_size`` is the number of padding octets at the end of the packet, the count octet
    included (0: no padding, P bit clear). ``extension_profile`` is None when the packet has no
    header extension (X bit clear); ``extension_data`` is then empty. The extension data is a
    whole number of 32-bit words (RFC 3550 §5.3.1).
    """

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    marker: bool = False
    payload: bytes = b""
    csrc: tuple[int, ...] = ()
    padding_size: int = 0
    extension_profile: int | None = None
    extension_data: bytes = b""

    def __post_init__(self) -> None:
        _check_range("payload type", self.payload_type, 0x7F)
        _check_range("sequence number", self.sequence_number, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFFFFFF)
        _check_range("SSRC", self.ssrc, 0xFFFFFFFF)
        _check_range("padding size", self.padding_size, 0xFF)
        if len(self.csrc) > 15:
            raise ValueError(f"RTP CSRC list has {len(self.csrc)} entries, more than 15")
        for csrc in self.csrc:
            _check_range("CSRC", csrc, 0xFFFFFFFF)
        if self.extension_profile is None:
            if self.extension_data:
                raise ValueError("RTP extension data needs an extension profile")
        else:
            _check_range("extension profile", self.extension_profile, 0xFFFF)
            if len(self.extension_data) % 4 or len(self.extension_data) > 0x3FFFC:
                raise ValueError("RTP extension data must be whole 32-bit words, at most 65535")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet (RFC 3550 §5.1; extension §5.3.1).

        Raises:
            ValueError: with a specific sentence for a packet shorter than the fixed header,
                larger than ``MAX_PACKET_BYTES``, of another version, or with a CSRC list,
                header extension or padding that does not fit in it.
        """
        size = len(data)
        if size > MAX_PACKET_BYTES:
            raise ValueError(f"RTP packet is {size} bytes, larger than {MAX_PACKET_BYTES}")
        first, second, seq, timestamp, ssrc = _unpack_fixed(data)
        offset = _HEADER_BYTES + 4 * (first & 0x0F)
        if offset > size:
            raise ValueError(
                f"RTP CSRC list of {first & 0x0F} entries runs past the end of the "
                f"{size}-byte packet"
            )
        csrc = tuple(_CSRC.unpack_from(data, at)[0] for at in range(_HEADER_BYTES, offset, 4))
        profile: int | None = None
        extension = b""
        if first & 0x10:
            profile, extension, offset = _parse_extension(data, offset)
        padding = _padding_size(data, offset) if first & 0x20 else 0
        return cls(
            payload_type=second & 0x7F,
            sequence_number=seq,
            timestamp=timestamp,
            ssrc=ssrc,
            marker=bool(second & 0x80),
            payload=bytes(data[offset : size - padding]),
            csrc=csrc,
            padding_size=padding,
            extension_profile=profile,
            extension_data=extension,
        )

    def serialize(self) -> bytes:
        """The packet as sent on the wire (RFC 3550 §5.1)."""
        first = (
            (_VERSION << 6)
            | (0x20 if self.padding_size else 0)
            | (0x10 if self.extension_profile is not None else 0)
            | len(self.csrc)
        )
        second = (0x80 if self.marker else 0) | self.payload_type
        parts = [HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc)]
        parts.extend(_CSRC.pack(csrc) for csrc in self.csrc)
        if self.extension_profile is not None:
            words = len(self.extension_data) // 4
            parts += [_EXTENSION_HEADER.pack(self.extension_profile, words), self.extension_data]
        parts.append(self.payload)
        if self.padding_size:
            # §5.1: "The last octet of the padding contains a count of how many padding octets
            # should be ignored, including itself."
            parts.append(bytes(self.padding_size - 1) + bytes([self.padding_size]))
        return b"".join(parts)


def _check_range(name: str, value: int, largest: int) -> None:
    if not 0 <= value <= largest:
        raise ValueError(f"RTP {name} {value} is outside 0..{largest}")


def _unpack_fixed(data: bytes) -> tuple[int, int, int, int, int]:
    if len(data) < _HEADER_BYTES:
        raise ValueError(f"RTP packet is {len(data)} bytes, shorter than the 12-byte fixed header")
    fields: tuple[int, int, int, int, int] = HEADER.unpack_from(data)
    if fields[0] >> 6 != _VERSION:
        raise ValueError(f"RTP version is {fields[0] >> 6}, not 2")
    return fields


def _parse_extension(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """The header extension at ``offset`` (§5.3.1): profile, data, and the payload offset."""
    if offset + 4 > len(data):
        raise ValueError("RTP header extension is truncated: no room for its 4-byte header")
    profile, words = _EXTENSION_HEADER.unpack_from(data, offset)
    end = offset + 4 + 4 * words
    if end > len(data):
        raise ValueError(
            f"RTP header extension of {words} words is truncated by the end of the packet"
        )
    return profile, bytes(data[offset + 4 : end]), end


def _padding_size(data: bytes, payload_offset: int) -> int:
    count = data[-1]
    if count == 0:
        # §5.1: the count includes the count octet itself, so 0 cannot be right.
        raise ValueError("RTP padding length is 0; it must count at least its own octet")
    if count > len(data) - payload_offset:
        raise ValueError(
            f"RTP padding length {count} is beyond the {len(data) - payload_offset}-byte payload"
        )
    return count


def build_header(
    payload_type: int, marker: bool, sequence_number: int, timestamp: int, ssrc: int
) -> bytes:
    """The 12-octet fixed header of an outgoing packet: no CSRC, extension or padding (§5.1).

    The caller passes values in range (payload type 0..127, ``seq_add``/``ts_add`` results).
    """
    second = (payload_type | 0x80) if marker else payload_type
    return HEADER.pack(0x80, second, sequence_number, timestamp, ssrc)


def peek_header(data: bytes) -> tuple[int, bool, int, int, int]:
    """Read the fixed header: ``(payload_type, marker, sequence_number, timestamp, ssrc)``.

    Only the length (12 octets or more) and the version (2) are checked (RFC 3550 §5.1); use
    ``peek_payload`` for the payload, which accounts for CSRCs, extension and padding.

    Raises:
        ValueError: for a packet shorter than 12 octets or of another version.
    """
    _, second, seq, timestamp, ssrc = _unpack_fixed(data)
    return second & 0x7F, second > 0x7F, seq, timestamp, ssrc


def peek_payload(data: bytes) -> bytes:
    """The payload of an RTP packet, after any CSRC list and extension, before any padding.

    Raises:
        ValueError: as ``RtpPacket.parse`` does, except that the size limit is not checked.
    """
    first = data[0] if data else 0
    if first == 0x80 and len(data) >= _HEADER_BYTES:
        return data[_HEADER_BYTES:]  # the common case: version 2, nothing but the fixed header
    _unpack_fixed(data)
    offset = _HEADER_BYTES + 4 * (first & 0x0F)
    if offset > len(data):
        raise ValueError(
            f"RTP CSRC list of {first & 0x0F} entries runs past the end of the "
            f"{len(data)}-byte packet"
        )
    if first & 0x10:
        offset = _parse_extension(data, offset)[2]
    padding = _padding_size(data, offset) if first & 0x20 else 0
    return data[offset : len(data) - padding]


def seq_add(a: int, b: int) -> int:
    """``a + b`` modulo 2^16, for sequence numbers (RFC 3550 §5.1)."""
    return (a + b) & 0xFFFF


def seq_diff(a: int, b: int) -> int:
    """``a - b`` modulo 2^16 as a signed distance in -32768..32767."""
    return ((a - b + 0x8000) & 0xFFFF) - 0x8000


def seq_newer(a: int, b: int) -> bool:
    """True if sequence number ``a`` comes after ``b``, across the wrap (RFC 1982 style)."""
    return 0 < ((a - b) & 0xFFFF) < 0x8000


def ts_add(a: int, b: int) -> int:
    """``a + b`` modulo 2^32, for RTP timestamps (RFC 3550 §5.1)."""
    return (a + b) & 0xFFFFFFFF


def ts_diff(a: int, b: int) -> int:
    """``a - b`` modulo 2^32 as a signed distance in -2^31..2^31-1."""
    return ((a - b + 0x80000000) & 0xFFFFFFFF) - 0x80000000


def is_rtcp(data: bytes) -> bool:
    """True if a packet on an rtcp-mux port is RTCP, not RTP (RFC 5761 §4).

    RTCP packet types 192..223 sit in the second octet where RTP has marker and payload type;
    RFC 5761 §4 keeps RTP payload types 64..95 free so that the two cannot be confused.
    """
    return len(data) >= 2 and 192 <= data[1] <= 223
