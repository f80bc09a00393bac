"""Tests for hold in a bridge (RFC 3264 §8.4) and the digit forms of a bridged stream (RFC 4733).

Sans-IO like tests/media/test_stream.py: two streams bridged by hand, driven with ``receive``
and ``next_packet`` at fake ``now`` values. Also the generated music on hold itself.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from callserver.media import g711
from callserver.media.events import DtmfReceived, PlaybackFinished
from callserver.media.hold_music import MUSIC_FILE, load_music
from callserver.media.music import MUSIC_DBFS, music_on_hold
from callserver.media.negotiated import StreamConfig
from callserver.media.rtp import RtpPacket
from callserver.media.settings import MediaSettings
from callserver.media.stream import MediaStream
from tests.media.streams import PEER, PEER_B, bridged, config, key_press, make_stream, rtp, sent

MUSIC = bytes(range(256)) * 2  # 512 octets: a frame of 160 wraps within a few ticks
SHIPPED = Path(__file__).resolve().parents[2] / "prompts"


def _towards_b(*, direction: str) -> StreamConfig:
    """B's negotiated stream (PCMA, telephone-event 96) with ``direction``."""
    return replace(
        config("PCMA", 96, direction=direction), remote_host=PEER_B[0], remote_port=PEER_B[1]
    )


def _relayed(a: MediaStream, seq: int, payload: bytes, now: float) -> bytes | None:
    """What A relays to B for one audio packet from A's peer (None: nothing)."""
    result = a.receive(rtp(seq, 160 * seq, payload=payload), PEER, now)
    return None if result is None else result[1]


def test_a_held_party_hears_looped_music_not_the_holder() -> None:
    """B held: A's audio is not relayed and B's own ticks send the music, looped."""
    a, b = bridged()
    b.hold(MUSIC, 1.0)
    assert _relayed(a, 1, b"\x55" * 160, 1.0) is None
    frames = [p.payload for p in sent(b, range(3, 9))]
    assert b"".join(frames) == (MUSIC * 2)[: 6 * 160]
    assert a.next_packet(9, 0.18) is None, "the holder's side still only relays"


def test_resume_stops_the_music_and_relaying_restarts_with_a_marker() -> None:
    """Off hold, B's ticks are silent again and A's audio is relayed, a new talkspurt."""
    a, b = bridged()
    assert _relayed(a, 1, b"\x55" * 160, 1.0) is not None
    b.hold(MUSIC, 1.02)
    sent(b, [3, 4])
    b.resume(1.1)
    assert b.held is False
    assert [type(e) for e in b.events] == [PlaybackFinished]
    assert b.next_packet(5, 1.12) is None
    relayed = _relayed(a, 2, b"\x55" * 160, 1.14)
    assert relayed is not None
    packet = RtpPacket.parse(relayed)
    assert packet.marker and packet.payload == g711.transcode(b"\x55" * 160, "PCMU", "PCMA")


def test_a_held_party_without_music_hears_silence() -> None:
    """An empty music payload (no moh prompt) gives the held party silence, never a dead line."""
    _, b = bridged()
    b.hold(b"", 1.0)
    payloads = {p.payload for p in sent(b, range(3, 6))}
    assert payloads == {bytes([g711.SILENCE_BYTE["PCMA"]]) * 160}


@pytest.mark.parametrize(
    ("te", "direction", "form"),
    [
        (101, "sendrecv", "rfc4733"),
        (None, "sendrecv", "inband"),
        (101, "recvonly", "info"),
        (None, "inactive", "info"),
        (101, "sendonly", "rfc4733"),
    ],
)
def test_dtmf_form(te: int | None, direction: str, form: str) -> None:
    """RFC 4733 when negotiated, else in-band; INFO when we may not send RTP at all."""
    assert make_stream(te=te, direction=direction).dtmf_form == form


def test_rfc4733_digit_to_a_held_party_is_sent_as_our_own_events() -> None:
    """A key press towards a held B is not relayed beside the music but sent by B's ticks."""
    a, b = bridged(b_te=96)
    b.hold(MUSIC, 1.0)
    for i, data in enumerate(key_press("7", 30, 9000)):
        assert a.receive(data, PEER, 1.0 + 0.02 * i) is None
    first = RtpPacket.parse(b.next_packet(3, 1.2) or b"")
    assert (first.payload_type, first.marker, first.payload[0]) == (96, True, 7)
    assert first.timestamp == b.timestamp(3)


def test_digits_towards_a_party_that_takes_no_rtp_are_left_to_the_calls_layer() -> None:
    """B recvonly (it holds A): A's RFC 4733 and INFO digits queue nothing on B, A reports both."""
    a, b = bridged(b_te=96)
    b.configure(_towards_b(direction="recvonly"), 1.0)
    for i, data in enumerate(key_press("3", 30, 9000)):
        assert a.receive(data, PEER, 1.0 + 0.02 * i) is None
    a.report_digit("9", "info", 1.5)
    assert [(e.digit, e.source) for e in a.events if isinstance(e, DtmfReceived)] == [
        ("3", "rfc4733"),
        ("9", "info"),
    ]
    b.configure(_towards_b(direction="sendrecv"), 2.0)
    assert b.next_packet(10, 2.0) is None, "nothing was queued to leak out after the hold"


def test_music_on_hold_is_an_8_second_loop_at_its_level() -> None:
    """The generated music lasts 8 s at 8 kHz and peaks at MUSIC_DBFS."""
    music = music_on_hold()
    assert music.dtype == np.int16 and len(music) == 64000
    peak = 20 * np.log10(np.max(np.abs(music.astype(np.float64))) / 32767)
    assert peak == pytest.approx(MUSIC_DBFS, abs=0.01)


def test_music_on_hold_loops_without_a_click() -> None:
    """The step across the loop's seam is no larger than the steps inside the music."""
    music = music_on_hold().astype(np.int32)
    inside = np.abs(np.diff(music))
    seam = abs(int(music[0]) - int(music[-1]))
    assert seam <= np.percentile(inside, 99)


def test_music_on_hold_lies_in_the_telephone_band() -> None:
    """At least 99 % of the music's energy lies between 250 and 3400 Hz."""
    music = music_on_hold().astype(np.float64)
    power = np.abs(np.fft.rfft(music)) ** 2
    freqs = np.fft.rfftfreq(len(music), 1 / 8000)
    band = power[(freqs >= 250) & (freqs <= 3400)].sum()
    assert band / power.sum() > 0.99


def test_shipped_music_is_the_generated_piece() -> None:
    """prompts/moh/ (the default music directory) holds exactly what music_on_hold() makes."""
    directory = MediaSettings(prompts_dir=SHIPPED).hold_music_dir
    music, failed = load_music(directory)
    assert failed == [] and music.files == (SHIPPED / "moh" / MUSIC_FILE,)
    assert np.array_equal(music.samples, music_on_hold())
    assert music.encoded("PCMA") == g711.encode("PCMA", music_on_hold())
