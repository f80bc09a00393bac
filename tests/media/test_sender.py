"""Tests for the sending half of a stream (callserver.media.sender; RFC 3550 §5.1, RFC 4733).

No sockets: streams are built directly and driven with ``next_packet`` at fake times.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest

from callserver.media import g711
from callserver.media.events import DtmfReceived, PlaybackFinished
from callserver.media.rtp import RtpPacket
from callserver.media.stream import MediaStream
from callserver.media.tones import DTMF_FREQUENCIES
from tests.media.streams import (
    OUR_SSRC,
    PT,
    TE,
    dominant_frequencies,
    feed,
    key_press,
    make_stream,
    sent,
)

# -- sending ------------------------------------------------------------------------------------


def test_sent_headers() -> None:
    """Version 2, the codec's PT, marker on the first only, seq + 1 and ts + 160 across the wrap."""
    stream = make_stream()
    raw = [stream.next_packet(tick, tick * 0.02) for tick in range(5)]
    assert all(data is not None and data[0] == 0x80 for data in raw)  # V=2, no P/X/CC
    packets = [RtpPacket.parse(data) for data in raw if data is not None]
    assert [p.marker for p in packets] == [True, False, False, False, False]
    assert {p.payload_type for p in packets} == {0}
    assert {p.ssrc for p in packets} == {OUR_SSRC}
    assert [p.sequence_number for p in packets] == [65534, 65535, 0, 1, 2]
    assert [p.timestamp for p in packets] == [(0xFFFFFF00 + 160 * i) % 2**32 for i in range(5)]


def test_tick_gap_is_a_timestamp_gap() -> None:
    """Skipped ticks leave a timestamp gap of 160 per tick but no sequence gap."""
    packets = sent(make_stream(timestamp=1000), [3, 4, 9])
    assert [p.timestamp for p in packets] == [1000 + 480, 1000 + 640, 1000 + 1440]
    assert [p.sequence_number for p in packets] == [65534, 65535, 0]


@pytest.mark.parametrize("codec", ["PCMU", "PCMA"])
def test_idle_stream_sends_silence(codec: str) -> None:
    """With nothing to play, each packet carries 160 samples of the codec's encoded zero."""
    packets = sent(make_stream(codec), range(3))
    silence = g711.encode(codec, np.zeros(160, dtype=np.int16))
    assert [p.payload for p in packets] == [silence] * 3
    assert {p.payload_type for p in packets} == {PT[codec]}


def test_not_configured_sends_nothing() -> None:
    """A stream that has not been configured sends no packet."""
    stream = MediaStream(1, 20000, ssrc=1, sequence=0, timestamp=0)
    assert stream.next_packet(1, 0.02) is None


# -- playback -----------------------------------------------------------------------------------


def test_playback_frames_and_one_finished_event() -> None:
    """Frames are the payload's slices, the last padded; PlaybackFinished comes once, on time."""
    stream = make_stream()
    payload = bytes(range(200)) * 2
    stream.play(payload, 0.0)
    packets = sent(stream, range(1, 6))
    assert [p.payload for p in packets] == [
        payload[:160],
        payload[160:320],
        payload[320:] + b"\xff" * 80,
        b"\xff" * 160,
        b"\xff" * 160,
    ]
    assert stream.events == [PlaybackFinished(stream_id=1, interrupted=False, rtime=0.06)]
    assert not stream.playing


def test_looped_playback_wraps() -> None:
    """A looped playback wraps round, including a payload shorter than one frame."""
    stream = make_stream()
    stream.play(b"\x01\x02\x03" * 20, 0.0, loop=True)  # 60 bytes
    payloads = b"".join(p.payload for p in sent(stream, range(1, 6)))
    assert payloads == (b"\x01\x02\x03" * 20 * 14)[:800]
    assert stream.events == []
    assert stream.playing


def test_play_while_playing_interrupts() -> None:
    """A new playback ends the current one with PlaybackFinished(interrupted=True)."""
    stream = make_stream()
    stream.play(b"\x11" * 1600, 0.0)
    sent(stream, [1])
    stream.play(b"\x22" * 160, 0.5)
    assert stream.events == [PlaybackFinished(stream_id=1, interrupted=True, rtime=0.5)]
    assert sent(stream, [2])[0].payload == b"\x22" * 160


def test_stop_playback() -> None:
    """stop_playback reports an interrupted playback; with none playing it reports nothing."""
    stream = make_stream()
    stream.stop_playback(0.1)
    stream.play(b"\x11" * 1600, 0.2)
    stream.stop_playback(0.3)
    assert stream.events == [PlaybackFinished(stream_id=1, interrupted=True, rtime=0.3)]
    assert sent(stream, [1])[0].payload == b"\xff" * 160


@pytest.mark.parametrize("barge_in", [True, False])
def test_barge_in(barge_in: bool) -> None:
    """An RFC 4733 digit stops a barge-in playback and leaves a plain one playing."""
    stream = make_stream()
    payload = bytes(range(160)) * 10
    stream.play(payload, 0.0, barge_in=barge_in)
    sent(stream, [1])
    now = feed(stream, key_press("7", 100, 8000))
    kinds = [type(e) for e in stream.events]
    frame = sent(stream, [2], now)[0].payload
    if barge_in:
        assert kinds == [PlaybackFinished, DtmfReceived]
        finished, digit = stream.events
        assert finished == PlaybackFinished(stream_id=1, interrupted=True, rtime=digit.rtime)
        assert digit.rtime == pytest.approx(1.08)  # on the first end packet
        assert frame == b"\xff" * 160
    else:
        assert kinds == [DtmfReceived]
        assert frame == payload[160:320]


def test_info_digit_barges_in() -> None:
    """A digit reported from SIP INFO stops a barge-in playback too."""
    stream = make_stream()
    stream.play(b"\x11" * 1600, 0.0, barge_in=True)
    stream.report_digit("#", "info", 0.5)
    assert stream.events == [
        PlaybackFinished(stream_id=1, interrupted=True, rtime=0.5),
        DtmfReceived(stream_id=1, digit="#", source="info", rtime=0.5),
    ]


# -- DTMF out ------------------------------------------------------------------------------------


def test_send_digit_as_rfc4733_events() -> None:
    """A digit goes out as telephone-events: te PT, one timestamp, marker first, E on the last 3."""
    stream = make_stream(timestamp=5000)
    sent(stream, [0])
    stream.send_digit("9", duration_ms=100)
    events = sent(stream, range(1, 8))
    assert {p.payload_type for p in events} == {TE}
    assert {p.timestamp for p in events} == {5000 + 160}
    assert [p.marker for p in events] == [True] + [False] * 6
    fields = [struct.unpack("!BBH", p.payload) for p in events]
    assert {code for code, _, _ in fields} == {9}
    assert [bool(flags & 0x80) for _, flags, _ in fields] == [False] * 4 + [True] * 3
    assert [duration for _, _, duration in fields] == [160, 320, 480, 640, 800, 800, 800]
    assert [p.sequence_number for p in events] == [65535, 0, 1, 2, 3, 4, 5]
    after = sent(stream, [8])[0]
    assert (after.payload_type, after.timestamp, after.marker) == (0, 5000 + 8 * 160, False)


@pytest.mark.parametrize(("codec", "digit"), [("PCMU", "1"), ("PCMA", "#"), ("PCMU", "D")])
def test_send_digit_in_band_without_telephone_event(codec: str, digit: str) -> None:
    """Without telephone-event a digit is a Q.23 tone in the audio PT, then 40 ms of silence."""
    stream = make_stream(codec, te=None)
    stream.send_digit(digit, duration_ms=100)
    packets = sent(stream, range(1, 9))
    assert {p.payload_type for p in packets} == {PT[codec]}
    samples = g711.decode(codec, b"".join(p.payload for p in packets[:5]))
    low, high = dominant_frequencies(samples)
    want_low, want_high = DTMF_FREQUENCIES[digit]
    assert abs(low - want_low) <= 10
    assert abs(high - want_high) <= 10
    silence = g711.encode(codec, np.zeros(160, dtype=np.int16))
    assert [p.payload for p in packets[5:]] == [silence] * 3


def test_send_digit_rejects_a_non_key() -> None:
    """send_digit raises ValueError for something that is not a DTMF key."""
    with pytest.raises(ValueError):
        make_stream(te=None).send_digit("x")
