"""Tests for saturating PCM mixing and per-frame dBFS levels."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from callserver.media.mixer import DBFS_FLOOR, frame_dbfs, mix, mix_rows, silence_threshold

FRAME = 160
_int16 = st.integers(-32768, 32767)


def _frames(n: int = FRAME) -> st.SearchStrategy[npt.NDArray[np.int16]]:
    return hnp.arrays(np.int16, n, elements=_int16)


def _sine(amplitude: float, n: int = FRAME, hz: float = 1000.0) -> npt.NDArray[np.int16]:
    t = np.arange(n) / 8000.0
    return np.round(amplitude * np.sin(2 * np.pi * hz * t + 0.3)).astype(np.int16)


def _i16(values: list[int]) -> npt.NDArray[np.int16]:
    return np.array(values, dtype=np.int16)


def test_mix_saturates_at_both_rails() -> None:
    """Sums beyond int16 clip to 32767 and -32768 instead of wrapping around."""
    a = _i16([30000, -30000, 32767, -32768, 100])
    b = _i16([30000, -30000, 32767, -32768, -50])
    out = mix(a, b)
    assert out.dtype == np.int16
    assert out.tolist() == [32767, -32768, 32767, -32768, 50]


@given(_frames())
def test_mix_with_silence_is_identity(x: npt.NDArray[np.int16]) -> None:
    """Mixing any frame with digital silence returns that frame unchanged."""
    silence = np.zeros(FRAME, dtype=np.int16)
    assert np.array_equal(mix(x, silence), x)
    assert np.array_equal(mix(silence, x), x)


@given(_frames(), _frames())
def test_mix_is_the_clipped_int32_sum(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> None:
    """Every output sample is the exact sum clipped to the int16 range, in either order."""
    expected = np.clip(a.astype(np.int64) + b.astype(np.int64), -32768, 32767)
    assert np.array_equal(mix(a, b), expected)
    assert np.array_equal(mix(b, a), expected)


def test_mix_leaves_its_inputs_alone() -> None:
    """Mixing returns a new array and does not modify either input."""
    a, b = _i16([1, 2, 3]), _i16([30000, 30000, 30000])
    mix(a, b)
    assert a.tolist() == [1, 2, 3] and b.tolist() == [30000] * 3


def test_mix_rejects_frames_of_different_lengths() -> None:
    """Frames of different shapes cannot be mixed, not even by broadcasting."""
    with pytest.raises(ValueError, match=r"shape \(160,\) with one of shape \(1,\)"):
        mix(np.zeros(FRAME, dtype=np.int16), np.zeros(1, dtype=np.int16))


def test_mix_rows_sums_rows_and_saturates() -> None:
    """Rows are summed column by column and the result clipped to int16."""
    frames = np.array([[1, 20000, -20000], [2, 20000, -20000], [3, -1, -1]], dtype=np.int16)
    assert mix_rows(frames).tolist() == [6, 32767, -32768]


def test_mix_rows_clips_only_the_final_sum() -> None:
    """Two loud rows cancelled by a third are not clipped on the way."""
    frames = np.array([[30000], [30000], [-30000]], dtype=np.int16)
    assert mix_rows(frames).tolist() == [30000]


@given(_frames(), _frames())
def test_mix_rows_of_two_equals_mix(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> None:
    """Mixing a (2, n) array gives the same frame as mixing its two rows pairwise."""
    assert np.array_equal(mix_rows(np.stack([a, b])), mix(a, b))


def test_mix_rows_of_nothing_is_silence_and_one_row_is_itself() -> None:
    """Zero rows mix to n zeros, and a single row mixes to a copy of itself."""
    assert mix_rows(np.zeros((0, 4), dtype=np.int16)).tolist() == [0, 0, 0, 0]
    row = _i16([5, -5, 32767, -32768])
    assert mix_rows(row[np.newaxis, :]).tolist() == row.tolist()


def test_mix_rows_rejects_a_single_frame() -> None:
    """A one-dimensional array is refused: rows must be explicit."""
    with pytest.raises(ValueError, match="not 1-D"):
        mix_rows(np.zeros(FRAME, dtype=np.int16))


def test_full_scale_sine_is_minus_3_01_dbfs() -> None:
    """A sine reaching full scale measures about -3.01 dB (ITU-T G.100.1 dBov)."""
    level = float(frame_dbfs(_sine(32767)))
    assert level == pytest.approx(-3.0103, abs=0.01)


def test_full_scale_square_wave_is_0_dbfs() -> None:
    """A square wave at full scale measures 0 dB."""
    square = np.tile(_i16([-32768, -32768, 32767, 32767]), 40)
    assert float(frame_dbfs(square)) == pytest.approx(0.0, abs=0.001)


def test_halving_the_amplitude_lowers_the_level_by_6_02_db() -> None:
    """Levels are 20*log10 of RMS: half the amplitude is 6.02 dB quieter."""
    loud, quiet = frame_dbfs(np.stack([_sine(16000), _sine(8000)]))
    assert loud - quiet == pytest.approx(20 * math.log10(2), abs=0.01)


def test_silence_reads_the_floor() -> None:
    """Digital silence reads DBFS_FLOOR (-120 dB), a finite number, not -inf."""
    level = frame_dbfs(np.zeros((1, FRAME), dtype=np.int16))
    assert level.tolist() == [DBFS_FLOOR] and DBFS_FLOOR == -120.0


def test_one_lsb_is_about_minus_90_dbfs() -> None:
    """A constant of one LSB reads 20*log10(1/32768), well above the floor."""
    level = float(frame_dbfs(np.ones(FRAME, dtype=np.int16)))
    assert level == pytest.approx(20 * math.log10(1 / 32768), abs=1e-9)


def test_levels_are_vectorised_one_per_row() -> None:
    """A (k, n) array gives k levels, each equal to the level of its row alone."""
    rng = np.random.default_rng(7)
    frames = rng.integers(-32768, 32768, size=(1000, FRAME)).astype(np.int16)
    frames[3] = 0
    levels = frame_dbfs(frames)
    assert levels.shape == (1000,) and levels.dtype == np.float64
    assert levels[3] == DBFS_FLOOR
    for i in (0, 3, 999):
        assert levels[i] == pytest.approx(float(frame_dbfs(frames[i])))


def test_a_single_frame_gives_a_0d_array() -> None:
    """One frame of n samples gives a 0-d float64 array, not a bare scalar."""
    level = frame_dbfs(_sine(1000))
    assert isinstance(level, np.ndarray) and level.shape == () and level.dtype == np.float64


@given(hnp.arrays(np.int16, st.tuples(st.integers(1, 4), st.integers(1, 64)), elements=_int16))
def test_levels_stay_between_floor_and_zero(frames: npt.NDArray[np.int16]) -> None:
    """Any frames read between DBFS_FLOOR and 0 dB, with no nan or inf."""
    levels = frame_dbfs(frames)
    assert np.all(np.isfinite(levels))
    assert np.all((levels >= DBFS_FLOOR) & (levels <= 0.0))


def test_a_frame_without_samples_has_no_level() -> None:
    """An empty frame raises ValueError instead of dividing by zero."""
    with pytest.raises(ValueError, match="no samples"):
        frame_dbfs(np.zeros((3, 0), dtype=np.int16))


@st.composite
def _quiet_or_loud_frames(draw: st.DrawFn) -> npt.NDArray[np.int16]:
    peak = draw(st.sampled_from([1, 10, 100, 1000, 32767]))
    n = draw(st.integers(1, 400))
    return draw(hnp.arrays(np.int16, n, elements=st.integers(-peak, peak)))


@given(_quiet_or_loud_frames(), st.floats(-119.0, -0.5))
def test_silence_threshold_agrees_with_frame_dbfs(x: npt.NDArray[np.int16], dbfs: float) -> None:
    """Comparing energy with silence_threshold says the same as comparing frame_dbfs."""
    as_float = x.astype(np.float64)
    quieter = float(as_float @ as_float) < silence_threshold(dbfs, x.size)
    assert quieter == (float(frame_dbfs(x)) < dbfs)


def test_silence_threshold_scales_with_frame_length_and_level() -> None:
    """0 dB is one full-scale square sample per sample, and the threshold never reaches 0."""
    assert silence_threshold(0.0, 1) == 32768.0**2
    assert silence_threshold(-20.0, FRAME) == pytest.approx(FRAME * 32768.0**2 / 100)
    assert silence_threshold(-150.0, FRAME) > 0.0  # so digital silence is always quieter
