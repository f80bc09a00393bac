"""The engine's conference rooms: what participants receive, play-out, tones, rooms coming and
going, with real streams fed real RTP packets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from callserver.media import g711
from callserver.media.conferencing import ConferenceMixer
from callserver.media.rtp import RtpPacket
from callserver.media.stream import MediaStream
from callserver.media.tones import join_tone
from tests.media.streams import PT, config, rtp


def _party(sid: int, codec: str = "PCMU") -> MediaStream:
    """Stream ``sid`` configured towards its own peer port in ``codec``."""
    stream = MediaStream(sid, 20000 + 2 * sid, ssrc=sid, sequence=10, timestamp=0)
    stream.configure(replace(config(codec, None), remote_port=40000 + sid), 0.0)
    return stream


def _feed(stream: MediaStream, level: int, seq: int) -> None:
    """One 20 ms packet of a constant ``level`` from the stream's peer, in its codec."""
    codec = stream.codec
    payload = g711.encode(codec, np.full(160, level, np.int16))
    peer = ("192.0.2.10", 40000 + stream.stream_id)
    stream.receive(rtp(seq, seq * 160, pt=PT[codec], payload=payload), peer, 0.0)


def _heard(mixer: ConferenceMixer, tick: int) -> dict[int, np.ndarray]:
    """One tick: each stream's packet decoded, by stream id."""
    out = {}
    for sid, data, _addr in mixer.tick(tick):
        packet = RtpPacket.parse(data)
        codec = "PCMA" if packet.payload_type == PT["PCMA"] else "PCMU"
        out[sid] = g711.decode(codec, packet.payload)
    return out


def _level(samples: np.ndarray) -> int:
    return int(np.median(samples))


def test_three_participants_each_hear_the_other_two_across_codecs() -> None:
    """Levels 1000, 2000 (PCMU) and 4000 (PCMA): each hears about the sum of the other two."""
    mixer = ConferenceMixer()
    parties = [_party(1), _party(2), _party(3, "PCMA")]
    for stream in parties:
        mixer.join(stream, "100")
    for seq in (1, 2):
        for stream, level in zip(parties, (1000, 2000, 4000), strict=True):
            _feed(stream, level, seq)
    heard = _heard(mixer, 1)
    assert set(heard) == {1, 2, 3}
    assert abs(_level(heard[1]) - 6000) < 200
    assert abs(_level(heard[2]) - 5000) < 200
    assert abs(_level(heard[3]) - 3000) < 200
    assert all(packet.ssrc == sid for sid, packet in _parsed(mixer, 2).items())


def _parsed(mixer: ConferenceMixer, tick: int) -> dict[int, RtpPacket]:
    return {sid: RtpPacket.parse(data) for sid, data, _ in mixer.tick(tick)}


def test_play_out_waits_for_two_frames_then_takes_one_a_tick() -> None:
    """One buffered frame gives silence; with two, the other hears the first, then the second."""
    mixer = ConferenceMixer()
    a, b = _party(1), _party(2)
    mixer.join(a, "r")
    mixer.join(b, "r")
    _feed(a, 1000, 1)
    assert _level(_heard(mixer, 1)[2]) == 0
    _feed(a, 3000, 2)
    assert abs(_level(_heard(mixer, 2)[2]) - 1000) < 50
    assert abs(_level(_heard(mixer, 3)[2]) - 3000) < 100
    assert _level(_heard(mixer, 4)[2]) == 0  # an underrun: silence until two frames again


def test_rooms_do_not_hear_each_other_and_go_with_their_last_participant() -> None:
    """Two rooms: a speaker in one is not heard in the other; leaving empties and removes."""
    mixer = ConferenceMixer()
    a, b, c, d = (_party(i) for i in (1, 2, 3, 4))
    for stream, room in ((a, "x"), (b, "x"), (c, "y"), (d, "y")):
        mixer.join(stream, room)
    for seq in (1, 2):
        _feed(a, 2000, seq)
    heard = _heard(mixer, 1)
    assert abs(_level(heard[2]) - 2000) < 100
    assert _level(heard[3]) == 0 and _level(heard[4]) == 0
    assert mixer.leave(a) == "x" and mixer.leave(b) == "x"
    assert mixer.participants("x") == 0 and not a.mixed
    assert set(_heard(mixer, 2)) == {3, 4}
    assert mixer.leave(a) is None


def test_a_room_tone_reaches_everyone_in_the_room() -> None:
    """The join tone is heard by both participants, frame by frame, until it has been played."""
    mixer = ConferenceMixer()
    a, b = _party(1), _party(2)
    mixer.join(a, "r")
    mixer.join(b, "r")
    tone = join_tone()
    mixer.tone("r", tone)
    first = _heard(mixer, 1)
    expected = g711.decode("PCMU", g711.encode("PCMU", tone[:160]))
    assert np.array_equal(first[1], expected) and np.array_equal(first[2], expected)
    for tick in range(2, len(tone) // 160 + 2):
        _heard(mixer, tick)
    assert _level(np.abs(_heard(mixer, 99)[1])) == 0


def test_a_mixed_stream_sends_nothing_of_its_own() -> None:
    """In a room the stream's own tick sends nothing; out of it, its silence again."""
    mixer = ConferenceMixer()
    a = _party(1)
    mixer.join(a, "r")
    assert a.next_packet(1, 0.0) is None
    mixer.leave(a)
    assert a.next_packet(2, 0.0) is not None


def test_a_stream_that_may_not_send_gets_no_mix() -> None:
    """A participant that holds the call (recvonly towards it) is sent nothing."""
    mixer = ConferenceMixer()
    a, b = _party(1), _party(2)
    b.configure(replace(config("PCMU", None), remote_port=40002, direction="recvonly"), 0.0)
    mixer.join(a, "r")
    mixer.join(b, "r")
    assert set(_heard(mixer, 1)) == {1}


def test_a_participant_holding_the_call_is_not_heard() -> None:
    """A phone that holds (sendonly towards us) is muted; taken off hold it is heard again."""
    mixer = ConferenceMixer()
    a, b = _party(1), _party(2)
    mixer.join(a, "r")
    mixer.join(b, "r")
    held = replace(config("PCMU", None), remote_port=40001, direction="recvonly")
    a.configure(held, 0.0)
    mixer.reconfigured(a)
    for seq in (1, 2):
        _feed(a, 2000, seq)
    assert _level(_heard(mixer, 1)[2]) == 0
    a.configure(replace(held, direction="sendrecv"), 0.0)
    mixer.reconfigured(a)
    for seq in (3, 4):
        _feed(a, 2000, seq)
    assert abs(_level(_heard(mixer, 2)[2]) - 2000) < 100
