"""A minimal reader of classic libpcap capture files, enough for the RTP captures in tests.

Reads the global header (either byte order, microsecond or nanosecond timestamps) and the
record headers, and unwraps Ethernet II (with any 802.1Q tags) + IPv4 + UDP. Records of other
link, network or transport types, and IP fragments after the first, are passed over. The pcapng
format is not supported.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

__all__ = ["udp_payloads"]

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
