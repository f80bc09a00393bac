"""The N-1 conference mix: exact sums without one's own frame, clipping, rooms apart, laws."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from callserver.media import g711
from callserver.media.conference import decode_rows, encode_rows, law_of, mix_minus


def _rows(*values: int, n: int = 4) -> npt.NDArray[np.int16]:
    """One constant frame of ``n`` samples per value."""
    return np.array([[v] * n for v in values], dtype=np.int16)


def test_each_participant_hears_the_exact_sum_of_the_others() -> None:
    """Three in one room: each row is the sum of the other two rows, sample for sample."""
    rng = np.random.default_rng(7)
    frames = rng.integers(-8000, 8000, size=(3, 160)).astype(np.int16)
    out = mix_minus(frames, np.zeros(3, np.intp), np.array([0], np.intp))
    wide = frames.astype(np.int32)
    assert np.array_equal(out[0], wide[1] + wide[2])
    assert np.array_equal(out[1], wide[0] + wide[2])
    assert np.array_equal(out[2], wide[0] + wide[1])
    assert out.dtype == np.int16


def test_a_participant_never_hears_itself() -> None:
    """Only one participant speaks: it hears silence, the others hear it exactly."""
    frames = _rows(1234, 0, 0)
    out = mix_minus(frames, np.zeros(3, np.intp), np.array([0], np.intp))
    assert np.array_equal(out, _rows(0, 1234, 1234))


def test_rooms_are_mixed_apart_in_one_pass() -> None:
    """Rooms of 2, 3 and 1 participants: no sound crosses from one room to another."""
    frames = _rows(1, 2, 10, 20, 30, 500)
    room_of = np.array([0, 0, 1, 1, 1, 2], np.intp)
    out = mix_minus(frames, room_of, np.array([0, 2, 5], np.intp))
    assert np.array_equal(out, _rows(2, 1, 50, 40, 30, 0))


def test_loud_sums_clip_at_the_rails_instead_of_wrapping() -> None:
    """30000 + 30000 saturates at 32767 and -30000 - 30000 at -32768."""
    frames = _rows(30000, 30000, 30000, -30000, -30000, -30000)
    room_of = np.array([0, 0, 0, 1, 1, 1], np.intp)
    out = mix_minus(frames, room_of, np.array([0, 3], np.intp))
    assert np.array_equal(out, _rows(32767, 32767, 32767, -32768, -32768, -32768))


def test_a_room_tone_is_heard_by_everyone_in_that_room_only() -> None:
    """A tone added to room 1 reaches both of its participants and nobody in room 0."""
    frames = _rows(5, 6, 7, 8)
    room_of = np.array([0, 0, 1, 1], np.intp)
    tones = np.array([[0] * 4, [100] * 4], np.int32)
    out = mix_minus(frames, room_of, np.array([0, 2], np.intp), tones)
    assert np.array_equal(out, _rows(6, 5, 108, 107))


def test_mismatched_shapes_are_refused() -> None:
    """A room index per row and one tone frame per room, or ValueError."""
    with pytest.raises(ValueError, match="do not agree"):
        mix_minus(_rows(1, 2), np.zeros(3, np.intp), np.array([0], np.intp))
    with pytest.raises(ValueError, match="one frame per room"):
        mix_minus(_rows(1, 2), np.zeros(2, np.intp), np.array([0], np.intp), np.zeros((2, 4)))


def test_rows_decode_and_encode_in_each_participants_law() -> None:
    """A µ-law row and an A-law row decode and encode as g711 does each of them alone."""
    ulaw, alaw = bytes(range(160)), bytes(range(96, 256))
    codes = np.frombuffer(ulaw + alaw, np.uint8).reshape(2, 160)
    law = np.array([law_of("PCMU"), law_of("PCMA")], np.intp)
    decoded = decode_rows(codes, law)
    assert np.array_equal(decoded[0], g711.decode("PCMU", ulaw))
    assert np.array_equal(decoded[1], g711.decode("PCMA", alaw))
    samples = np.linspace(-32768, 32767, 320).astype(np.int16).reshape(2, 160)
    encoded = encode_rows(samples, law)
    assert encoded[:160] == g711.encode("PCMU", samples[0])
    assert encoded[160:] == g711.encode("PCMA", samples[1])


def test_an_unknown_codec_has_no_law() -> None:
    """Only the G.711 laws can be mixed."""
    with pytest.raises(ValueError, match=r"not G\.711"):
        law_of("G722")
