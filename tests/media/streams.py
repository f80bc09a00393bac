"""Shared builders for the stream tests: streams, configs and RTP packets from a fake peer."""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np

from callserver.media.dtmf import DIGITS
from callserver.media.negotiated import StreamConfig
from callserver.media.rtp import RtpPacket
from callserver.media.stream import MediaStream

OUR_SSRC = 0x0A0B0C0D
PEER = ("192.0.2.10", 40000)
PEER_SSRC = 0x55667788
PT = {"PCMU": 0, "PCMA": 8}
TE = 101
PEER_B = ("192.0.2.20", 42000)
B_SSRC = 0x0B0B0B0B


def make_stream(
    codec: str = "PCMU", te: int | None = TE, *, direction: str = "sendrecv",
    symmetric: bool = True, timestamp: int = 0xFFFFFF00,
) -> MediaStream:  # fmt: skip
    """Stream 1 configured at now=0 towards PEER (sequence and timestamp about to wrap)."""
    stream = MediaStream(
        1, 20000, ssrc=OUR_SSRC, sequence=65534, timestamp=timestamp, symmetric=symmetric
    )
    stream.configure(config(codec, te, direction=direction), 0.0)
    return stream


def config(
    codec: str = "PCMU", te: int | None = TE, *, direction: str = "sendrecv",
    also: tuple[str, ...] = (),
) -> StreamConfig:  # fmt: skip
    """The negotiated stream towards PEER; ``also``: other codecs of the answer, taken too."""
    receive = tuple((PT[name], name) for name in (codec, *also)) if also else ()
    return StreamConfig(
        codec=codec, payload_type=PT[codec], telephone_event_pt=te, receive=receive,
        remote_host=PEER[0], remote_port=PEER[1], direction=direction,
    )  # fmt: skip


def bridged(b_te: int | None = 96) -> tuple[MediaStream, MediaStream]:
    """A (PCMU, te 101) and B (PCMA) bridged, both having sent two packets of their own."""
    a = make_stream("PCMU", TE, timestamp=1000)
    b = MediaStream(2, 20002, ssrc=B_SSRC, sequence=300, timestamp=70000)
    b.configure(replace(config("PCMA", b_te), remote_host=PEER_B[0], remote_port=PEER_B[1]), 0.0)
    sent(a, [1, 2])
    sent(b, [1, 2])
    a.peer, b.peer = b, a
    return a, b


def rtp(
    seq: int, ts: int, *, pt: int = 0, ssrc: int = PEER_SSRC, payload: bytes = b"\xff" * 160
) -> bytes:
    """An RTP packet from the peer."""
    return RtpPacket(
        payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload
    ).serialize()


def event_payload(digit: str, duration: int, *, end: bool = False) -> bytes:
    """A telephone-event payload (RFC 4733 §2.3) built by hand."""
    return struct.pack("!BBH", DIGITS.index(digit), (0x80 if end else 0) | 10, duration)


def key_press(digit: str, seq: int, ts: int) -> list[bytes]:
    """One key press: three updates, then the end packet three times (RFC 4733 §2.5.1.4)."""
    durations = [(160, False), (320, False), (480, False), (640, True), (640, True), (640, True)]
    return [
        rtp(seq + i, ts, pt=TE, payload=event_payload(digit, d, end=e))
        for i, (d, e) in enumerate(durations)
    ]


def sent(stream: MediaStream, ticks: range | list[int], now: float = 0.0) -> list[RtpPacket]:
    """The packets the stream sends on ``ticks``, parsed (every tick must send one)."""
    out = []
    for tick in ticks:
        data = stream.next_packet(tick, now + tick * 0.02)
        assert data is not None
        out.append(RtpPacket.parse(data))
    return out


def feed(stream: MediaStream, packets: list[bytes], *, start: float = 1.0) -> float:
    """Deliver ``packets`` from PEER 20 ms apart; returns the last ``now``."""
    now = start
    for data in packets:
        now += 0.02
        assert stream.receive(data, PEER, now) is None
    return now


def dominant_frequencies(samples: np.ndarray) -> tuple[float, float]:
    """The strongest frequency below and above 1100 Hz (FFT, 8 kHz)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(samples), 1 / 8000)
    low = freqs < 1100
    return float(freqs[low][spectrum[low].argmax()]), float(freqs[~low][spectrum[~low].argmax()])


def receive_after_live_source(stream: MediaStream, data: bytes, addr: tuple[str, int]) -> None:
    """Latch PEER with one packet at now=1.0, then deliver ``data`` from ``addr`` 20 ms later."""
    assert stream.receive(rtp(1, 160), PEER, 1.0) is None
    assert stream.receive(data, addr, 1.02) is None
