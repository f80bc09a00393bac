"""Tests for pre-encoded playback slicing (callserver.media.playback)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from callserver.media.playback import Playback

FRAME = 160
SILENCE = b"\xff" * FRAME


def payload_of(size: int) -> bytes:
    """``size`` bytes that differ from their neighbours, so slices are easy to tell apart."""
    return bytes(i % 251 for i in range(size))


def frames(playback: Playback, count: int) -> list[tuple[bytes, bool]]:
    """The next ``count`` frames and end flags."""
    return [playback.next_frame(SILENCE) for _ in range(count)]


def test_frames_are_payload_slices_and_the_last_is_padded() -> None:
    """Each frame is the next 160-byte slice; the last is padded with silence and ends it."""
    payload = payload_of(400)
    assert frames(Playback(payload, FRAME), 3) == [
        (payload[0:160], False),
        (payload[160:320], False),
        (payload[320:400] + SILENCE[:80], True),
    ]


def test_exact_multiple_ends_on_the_last_whole_frame() -> None:
    """A payload of whole frames ends with its last frame, unpadded."""
    payload = payload_of(320)
    assert frames(Playback(payload, FRAME), 2) == [
        (payload[:160], False),
        (payload[160:], True),
    ]


def test_empty_payload_is_one_silent_frame() -> None:
    """An empty payload plays one frame of silence and ends, even when asked to loop."""
    assert Playback(b"", FRAME).next_frame(SILENCE) == (SILENCE, True)
    looped = Playback(b"", FRAME, loop=True)
    assert not looped.loop
    assert looped.next_frame(SILENCE) == (SILENCE, True)


def test_loop_wraps_around_without_ending() -> None:
    """A looping playback continues from the start of the payload inside the frame that wraps."""
    payload = payload_of(400)
    got = frames(Playback(payload, FRAME, loop=True), 10)
    assert not any(ended for _, ended in got)
    assert b"".join(frame for frame, _ in got) == (payload * 4)[: 10 * FRAME]


def test_loop_of_a_payload_shorter_than_a_frame() -> None:
    """A 50-byte looped payload fills every frame with repeats of itself, in phase."""
    payload = payload_of(50)
    got = frames(Playback(payload, FRAME, loop=True), 7)
    assert b"".join(frame for frame, _ in got) == (payload * 23)[: 7 * FRAME]


def test_loop_of_exact_frames_wraps_to_the_start() -> None:
    """A looped payload of whole frames restarts at byte 0 after its last frame."""
    payload = payload_of(320)
    got = [frame for frame, _ in frames(Playback(payload, FRAME, loop=True), 4)]
    assert got == [payload[:160], payload[160:], payload[:160], payload[160:]]


@given(size=st.integers(0, 2000), frame=st.integers(1, 400))
def test_concatenated_frames_are_the_payload_then_silence(size: int, frame: int) -> None:
    """Played to the end, frames join to the payload padded to whole frames; only the last ends."""
    payload = payload_of(size)
    silence = b"\x00" * frame
    playback = Playback(payload, frame)
    out = [playback.next_frame(silence) for _ in range(max(1, -(-size // frame)))]
    assert [ended for _, ended in out] == [False] * (len(out) - 1) + [True]
    assert all(len(chunk) == frame for chunk, _ in out)
    assert b"".join(chunk for chunk, _ in out) == payload.ljust(len(out) * frame, b"\x00")


@given(size=st.integers(1, 700), frame=st.integers(1, 400), count=st.integers(1, 30))
def test_looped_frames_repeat_the_payload(size: int, frame: int, count: int) -> None:
    """Looped, ``count`` frames join to the payload repeated, cut at ``count`` frames."""
    payload = payload_of(size)
    playback = Playback(payload, frame, loop=True)
    out = [playback.next_frame(b"\x00" * frame) for _ in range(count)]
    assert not any(ended for _, ended in out)
    repeats = count * frame // size + 1
    assert b"".join(chunk for chunk, _ in out) == (payload * repeats)[: count * frame]
