"""A minimal reader and writer of classic libpcap capture files, enough for RTP in tests.

Reads the global header (either byte order, microsecond or nanosecond timestamps) and the
record headers, and unwraps Ethernet II (with any 802.1Q tags) + IPv4 + UDP. Records of other
link, network or transport types, and IP fragments after the first, are passed over. The pcapng
format is not supported. ``write_udp_pcap`` writes what ``udp_payloads`` reads (and SIPp's
``play_pcap_audio`` replays): Ethernet II + IPv4 + UDP, microsecond timestamps.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["udp_payloads", "write_udp_pcap"]

_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_LINKTYPE_ETHERNET = 1
_ETHERTYPE_IPV4 = 0x0800
_ETHERTYPE_VLAN = (0x8100, 0x88A8)
_IPPROTO_UDP = 17


def udp_payloads(path: Path) -> Iterator[tuple[float, bytes]]:
    """Yield ``(timestamp, udp_payload)`` for every IPv4/UDP packet in a pcap file.

    Raises:
        ValueError: if the file is not a classic pcap file or its link type is not Ethernet.
    """
    data = path.read_bytes()
    if len(data) < 24 or data[:4] not in _MAGIC:
        raise ValueError(f"{path} is not a classic libpcap file")
    order, tick = _MAGIC[data[:4]]
    (linktype,) = struct.unpack_from(order + "I", data, 20)
    if linktype & 0x0FFFFFFF != _LINKTYPE_ETHERNET:
        raise ValueError(f"{path} has link type {linktype}, not Ethernet")
    record = struct.Struct(order + "IIII")
    offset = 24
    while offset + record.size <= len(data):
        seconds, fraction, captured, _original = record.unpack_from(data, offset)
        offset += record.size
        frame = data[offset : offset + captured]
        offset += captured
        payload = _udp_payload(frame)
        if payload is not None:
            yield seconds + fraction * tick, payload


def _udp_payload(frame: bytes) -> bytes | None:
    """The UDP payload of an Ethernet frame, or None for anything but IPv4/UDP."""
    offset = 12
    (ethertype,) = struct.unpack_from("!H", frame, offset)
    while ethertype in _ETHERTYPE_VLAN:
        offset += 4
        (ethertype,) = struct.unpack_from("!H", frame, offset)
    ip = frame[offset + 2 :]
    if ethertype != _ETHERTYPE_IPV4 or len(ip) < 20 or ip[0] >> 4 != 4:
        return None
    header = (ip[0] & 0x0F) * 4
    total, fragment, protocol = struct.unpack_from("!H2xHxB", ip, 2)
    if protocol != _IPPROTO_UDP or fragment & 0x1FFF:
        return None
    udp = ip[header:total]
    if len(udp) < 8:
        return None
    (length,) = struct.unpack_from("!H", udp, 4)
    return udp[8:length]


def write_udp_pcap(
    path: Path, packets: list[tuple[float, bytes]], *, src_port: int = 4000, dst_port: int = 6000
) -> None:
    """Write ``(timestamp, udp_payload)`` records as IPv4/UDP frames from 127.0.0.1 to itself.

    The IPv4 header checksum is computed; the UDP checksum is 0 (none, RFC 768).
    """
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, _LINKTYPE_ETHERNET)]
    for stamp, payload in packets:
        udp = struct.pack("!HHHH", src_port, dst_port, 8 + len(payload), 0) + payload
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, _IPPROTO_UDP, 0,
                         bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))  # fmt: skip
        ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
        frame = bytes(12) + struct.pack("!H", _ETHERTYPE_IPV4) + ip + udp
        seconds, micros = int(stamp), round((stamp - int(stamp)) * 1e6)
        out.append(struct.pack("<IIII", seconds, micros, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))


def _checksum(header: bytes) -> int:
    """The Internet checksum of an IPv4 header (RFC 791, RFC 1071)."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
