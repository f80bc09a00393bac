"""RFC 4733 telephone-events from SIPp's shipped captures (Debian package sip-tester).

Each ``dtmf_2833_<digit>.pcap`` holds one key press as SIPp plays it: payload type 101, one
ssrc, a first packet with the marker bit and duration 0, updates every 40 ms (320 samples) and
three identical end packets (same sequence number) with the E bit.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import NamedTuple

import pytest

from callserver.media.dtmf import TelephoneEventReceiver, parse_telephone_event
from tests.media.pcap import udp_payloads

CAPTURES = Path("/usr/share/sip-tester")
EXPECTED = {**{str(d): str(d) for d in range(10)}, "pound": "#", "star": "*"}
TELEPHONE_EVENT_PT = 101  # what every one of these captures uses (read from the files)
RTP_HEADER = struct.Struct("!BBHII")


class Rtp(NamedTuple):
    """The fields of an RTP packet these tests look at, and its capture time."""

    time: float
    marker: bool
    payload_type: int
    timestamp: int
    ssrc: int
    payload: bytes


def rtp_packets(name: str) -> list[Rtp]:
    """Every RTP packet of ``dtmf_2833_<name>.pcap``, parsed with ``struct`` (RFC 3550 §5.1)."""
    path = CAPTURES / f"dtmf_2833_{name}.pcap"
    if not path.is_file():
        pytest.fail(
            f"{path} is missing: SIPp's sample captures come with the Debian package sip-tester "
            "(run `apt-get install sip-tester`; `make test` installs it)"
        )
    packets = []
    for time, data in udp_payloads(path):
        first, second, _sequence, timestamp, ssrc = RTP_HEADER.unpack_from(data)
        assert first >> 6 == 2, "not RTP version 2"
        start = RTP_HEADER.size + 4 * (first & 0x0F)
        if first & 0x10:  # header extension: 4-byte header + length words
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)
        packets.append(
            Rtp(time, bool(second & 0x80), second & 0x7F, timestamp, ssrc, data[start:end])
        )
    return packets


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_is_what_the_tests_assume(name: str) -> None:
    """Each capture is one event on payload type 101 ending in three E-bit packets."""
    packets = rtp_packets(name)
    assert {p.payload_type for p in packets} == {TELEPHONE_EVENT_PT}
    assert len({(p.ssrc, p.timestamp) for p in packets}) == 1
    assert [p.marker for p in packets] == [True] + [False] * (len(packets) - 1)
    events = [parse_telephone_event(p.payload) for p in packets]
    assert [e.end for e in events[-3:]] == [True] * 3
    assert not any(e.end for e in events[:-3])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_gives_its_digit_once(name: str) -> None:
    """Feeding the capture's telephone-event packets yields the expected digit exactly once."""
    receiver = TelephoneEventReceiver()
    digits = []
    packets = rtp_packets(name)
    for p in packets:
        if p.payload_type == TELEPHONE_EVENT_PT:
            digit = receiver.receive(p.ssrc, p.timestamp, p.payload, p.time)
            digits += [digit] if digit is not None else []
    digits += receiver.expire(packets[-1].time + 10)
    assert digits == [EXPECTED[name]]
    assert receiver.statistics().duplicates_ignored == 2
