"""Tests for crash-safe WAV recording: limits, trailing silence, discarding and write failures."""

from __future__ import annotations

import errno
import os
import tempfile
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media import recording
from callserver.media.recording import KEPT_SILENCE_SECONDS, Recorder, temporary_path
from callserver.media.settings import RecordingSettings

RATE = 8000
FRAME = 160
TICK = 0.02


def _tone(seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    t = np.arange(round(seconds * RATE)) / RATE
    return np.round(amplitude * np.sin(2 * np.pi * 440.0 * t)).astype(np.int16)


def _silence(seconds: float) -> npt.NDArray[np.int16]:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


def _chunks(samples: npt.NDArray[np.int16], size: int = FRAME) -> Iterator[npt.NDArray[np.int16]]:
    for start in range(0, samples.size, size):
        yield samples[start : start + size]


def _feed(rec: Recorder, samples: npt.NDArray[np.int16], size: int = FRAME) -> list[bool]:
    return [rec.write(frame, i * TICK) for i, frame in enumerate(_chunks(samples, size))]


def _read_wav(path: Path) -> tuple[tuple[int, int, int], npt.NDArray[np.int16]]:
    with wave.open(str(path), "rb") as wav:
        params = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return params, data.astype(np.int16)


def _settings(**overrides: float) -> RecordingSettings:
    values = {"max_seconds": 60.0, "min_seconds": 1.0, "silence_seconds": 1.0}
    values.update(overrides)
    return RecordingSettings(silence_dbfs=-45.0, **values)


def test_tone_recorded_and_stopped_is_a_valid_wav_with_exactly_the_samples(tmp_path: Path) -> None:
    """A 3 s tone gives an 8 kHz mono 16-bit WAV holding exactly the samples written."""
    path, tone = tmp_path / "msg.wav", _tone(3.0)
    rec = Recorder(path, _settings())
    assert all(_feed(rec, tone))
    result = rec.stop(3.0)
    assert (result.reason, result.path, result.error) == ("stopped", path, None)
    assert (result.duration, result.samples, result.frames) == (3.0, 24000, 150)
    assert (result.started_at, result.ended_at, result.trimmed_samples) == (0.0, 3.0, 0)
    params, data = _read_wav(path)
    assert params == (8000, 1, 2)
    assert np.array_equal(data, tone)
    assert sorted(tmp_path.iterdir()) == [path]


def test_the_file_has_a_plain_44_byte_pcm_header(tmp_path: Path) -> None:
    """The RIFF and data chunk sizes are patched to the audio actually written."""
    path = tmp_path / "msg.wav"
    rec = Recorder(path, _settings())
    _feed(rec, _tone(1.5))
    rec.stop(1.5)
    raw = path.read_bytes()
    assert len(raw) == 44 + 1.5 * RATE * 2
    assert raw[:4] == b"RIFF" and int.from_bytes(raw[4:8], "little") == len(raw) - 8
    assert raw[36:40] == b"data" and int.from_bytes(raw[40:44], "little") == len(raw) - 44


def test_directories_are_created_on_the_first_frame(tmp_path: Path) -> None:
    """Missing parent directories are created, but only once audio arrives."""
    path = tmp_path / "recordings" / "2024" / "call.wav"
    rec = Recorder(path, _settings())
    assert not (tmp_path / "recordings").exists()
    _feed(rec, _tone(1.0))
    assert rec.stop(1.0).path == path and path.is_file()


def test_only_the_temporary_file_exists_while_recording(tmp_path: Path) -> None:
    """Until the recording completes the final name does not exist, so a crash never leaves a
    truncated file that looks finished."""
    path = tmp_path / "msg.wav"
    rec = Recorder(path, _settings())
    _feed(rec, _tone(2.0))
    part = temporary_path(path)
    assert part == tmp_path / ".msg.wav.part"
    assert not path.exists() and part.exists()
    assert sorted(tmp_path.iterdir()) == [part]
    rec.stop(2.0)
    assert path.exists() and not part.exists()


@pytest.mark.parametrize("size", [FRAME, 300])
def test_max_length_stops_at_max_seconds_exactly(tmp_path: Path, size: int) -> None:
    """The recording ends on the frame reaching max_seconds, cut at exactly that many samples."""
    path, tone = tmp_path / "msg.wav", _tone(1.5)
    rec = Recorder(path, _settings(max_seconds=1.0))
    returned = _feed(rec, tone, size)
    last = -(-RATE // size)  # the frame that reaches 8000 samples
    assert returned == [True] * (last - 1) + [False] * (len(returned) - last + 1)
    result = rec.stop(9.0)
    assert (result.reason, result.samples, result.duration, result.frames) == (
        "max_length",
        RATE,
        1.0,
        last,
    )
    assert result.ended_at == (last - 1) * TICK
    assert np.array_equal(_read_wav(path)[1], tone[:RATE])


def test_trailing_silence_ends_the_recording_and_is_trimmed(tmp_path: Path) -> None:
    """silence_seconds of silence ends it; only the first 0.5 s of that silence is kept."""
    path, tone = tmp_path / "msg.wav", _tone(2.0)
    rec = Recorder(path, _settings(silence_seconds=1.0))
    returned = _feed(rec, np.concatenate([tone, _silence(3.0)]))
    assert returned.index(False) == 100 + 50 - 1  # the 50th silent frame makes 1.0 s
    result = rec.stop(10.0)
    kept = round(KEPT_SILENCE_SECONDS * RATE)
    assert (result.reason, result.samples, result.trimmed_samples) == (
        "silence",
        16000 + kept,
        4000,
    )
    assert result.duration == 2.0 + KEPT_SILENCE_SECONDS
    assert np.array_equal(_read_wav(path)[1], np.concatenate([tone, _silence(0.5)]))


def test_quiet_noise_counts_as_silence(tmp_path: Path) -> None:
    """Frames below silence_dbfs end the recording even when they are not digital zeros."""
    noise = _tone(2.0, amplitude=50.0)  # about -59 dBFS, under the -45 dBFS threshold
    rec = Recorder(tmp_path / "msg.wav", _settings(silence_seconds=1.0))
    assert False in _feed(rec, np.concatenate([_tone(1.0), noise]))
    result = rec.stop(5.0)
    assert (result.reason, result.samples) == ("silence", RATE + 4000)


def test_pauses_shorter_than_silence_seconds_are_kept_in_full(tmp_path: Path) -> None:
    """Silence held in memory is written out, in order, when speech resumes."""
    path = tmp_path / "msg.wav"
    audio = np.concatenate([_tone(1.0), _tone(0.9, amplitude=20.0), _tone(1.0)])
    rec = Recorder(path, _settings(silence_seconds=1.0))
    assert all(_feed(rec, audio))
    assert rec.stop(3.0).samples == audio.size
    assert np.array_equal(_read_wav(path)[1], audio)


def test_silence_held_at_stop_is_kept(tmp_path: Path) -> None:
    """Stopping keeps trailing silence shorter than silence_seconds; only silence endings trim."""
    path = tmp_path / "msg.wav"
    audio = np.concatenate([_tone(1.0), _silence(0.8)])
    rec = Recorder(path, _settings(silence_seconds=1.0))
    _feed(rec, audio)
    result = rec.stop(2.0)
    assert (result.reason, result.samples, result.trimmed_samples) == ("stopped", 14400, 0)
    assert np.array_equal(_read_wav(path)[1], audio)


def test_held_silence_is_copied_not_aliased(tmp_path: Path) -> None:
    """An engine reusing one frame buffer every tick does not overwrite held silence."""
    path = tmp_path / "msg.wav"
    rec = Recorder(path, _settings(min_seconds=0.0))
    buffer = np.zeros(FRAME, dtype=np.int16)
    rec.write(buffer, 0.0)
    buffer[:] = _tone(0.02)
    rec.write(buffer, 0.02)
    rec.stop(0.04)
    assert np.array_equal(_read_wav(path)[1], np.concatenate([_silence(0.02), _tone(0.02)]))


def test_too_short_is_discarded_and_leaves_no_file(tmp_path: Path) -> None:
    """A recording shorter than min_seconds is removed: no final file, no temporary file."""
    rec = Recorder(tmp_path / "msg.wav", _settings(min_seconds=1.0))
    _feed(rec, _tone(0.5))
    result = rec.stop(0.5)
    assert (result.reason, result.path, result.samples, result.duration) == (
        "too_short",
        None,
        0,
        0.0,
    )
    assert result.frames == 25
    assert list(tmp_path.iterdir()) == []


def test_too_short_is_judged_after_trimming(tmp_path: Path) -> None:
    """A short message followed by silence is discarded when the trimmed length is too short."""
    rec = Recorder(tmp_path / "msg.wav", _settings(min_seconds=1.5, silence_seconds=2.0))
    returned = _feed(rec, np.concatenate([_tone(0.6), _silence(3.0)]))
    assert False in returned  # 0.6 s + 2.0 s would pass; 0.6 s + 0.5 s does not
    result = rec.stop(5.0)
    assert (result.reason, result.trimmed_samples) == ("too_short", 12000)
    assert list(tmp_path.iterdir()) == []


def test_stopping_with_no_audio_and_no_minimum_keeps_an_empty_wav(tmp_path: Path) -> None:
    """With min_seconds 0 even an empty recording is published, as a valid empty WAV."""
    path = tmp_path / "empty.wav"
    result = Recorder(path, _settings(min_seconds=0.0)).stop(1.0)
    assert (result.reason, result.samples, result.started_at, result.path) == (
        "stopped",
        0,
        None,
        path,
    )
    assert _read_wav(path)[0] == (8000, 1, 2) and _read_wav(path)[1].size == 0


def test_stop_twice_returns_the_same_result_and_later_frames_are_ignored(tmp_path: Path) -> None:
    """stop is idempotent, and write after the end returns False without touching the file."""
    path = tmp_path / "msg.wav"
    rec = Recorder(path, _settings())
    _feed(rec, _tone(1.0))
    first = rec.stop(1.0)
    before = path.read_bytes()
    assert rec.write(_tone(0.02), 1.02) is False
    assert rec.stop(2.0) is first and rec.result is first
    assert path.read_bytes() == before


class _FullDisk:
    """A file whose writes fail with ENOSPC once ``room`` bytes have been written."""

    def __init__(self, file: IO[bytes], room: int) -> None:
        self._file, self._room = file, room

    def write(self, data: bytes) -> int:
        if len(data) > self._room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self._room -= len(data)
        return self._file.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._file, name)


def test_disk_full_while_writing_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OSError from the file ends the recording as failed, raises nothing, leaves no file."""

    def full_disk_open(path: Path, mode: str) -> _FullDisk:
        return _FullDisk(open(path, mode, buffering=0), room=44 + 20 * FRAME * 2)

    monkeypatch.setattr(recording, "open", full_disk_open, raising=False)
    rec = Recorder(tmp_path / "msg.wav", _settings())
    returned = _feed(rec, _tone(1.0))
    assert returned == [True] * 20 + [False] * 30
    result = rec.stop(1.0)
    assert (result.reason, result.path, result.samples, result.frames) == ("failed", None, 0, 21)
    assert result.error is not None and "No space left on device" in result.error
    assert list(tmp_path.iterdir()) == []
    assert rec.stop(2.0) is result


def test_a_failure_while_publishing_fails_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync error at the end gives reason failed and removes the temporary file."""

    def broken_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "fsync failed")

    rec = Recorder(tmp_path / "msg.wav", _settings())
    _feed(rec, _tone(1.5))
    monkeypatch.setattr(os, "fsync", broken_fsync)
    result = rec.stop(1.5)
    assert (result.reason, result.path, result.error) == ("failed", None, "[Errno 5] fsync failed")
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_directory_fails_on_the_first_frame(tmp_path: Path) -> None:
    """A parent path that is a regular file fails the recording without raising (even as root)."""
    (tmp_path / "taken").write_bytes(b"")
    rec = Recorder(tmp_path / "taken" / "sub" / "msg.wav", _settings())
    assert rec.write(_tone(0.02), 5.0) is False
    result = rec.stop(6.0)
    assert (result.reason, result.frames, result.started_at, result.ended_at) == (
        "failed",
        1,
        5.0,
        5.0,
    )
    assert result.error is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_rate_must_be_positive(tmp_path: Path) -> None:
    """A zero sample rate is refused when the recorder is built."""
    with pytest.raises(ValueError, match="sample rate must be positive"):
        Recorder(tmp_path / "x.wav", _settings(), rate=0)


_frame_kinds = st.lists(st.tuples(st.booleans(), st.integers(1, 400)), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None)
@given(_frame_kinds)
def test_what_is_written_is_what_is_kept(kinds: list[tuple[bool, int]]) -> None:
    """Any mix of loud and quiet frames, stopped before a limit, is kept sample for sample."""
    frames = [_tone(n / RATE) if loud else _silence(n / RATE) for loud, n in kinds]
    audio = np.concatenate(frames)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "msg.wav"
        rec = Recorder(path, _settings(min_seconds=0.0, silence_seconds=10.0))
        assert all(rec.write(frame, i * TICK) for i, frame in enumerate(frames))
        assert rec.stop(99.0).samples == audio.size
        assert np.array_equal(_read_wav(path)[1], audio)
        assert os.listdir(tmp) == ["msg.wav"]


def test_a_key_stop_drops_the_frames_from_the_key_press_on(tmp_path: Path) -> None:
    """With hold_back, stop(cut_from=...) drops the frames that came from the key press on
    (its tone), ends with reason "key", and keeps the speech before it sample for sample."""
    path = tmp_path / "greeting.wav"
    rec = Recorder(path, _settings(), hold_back=2.0)
    speech = _tone(3.0, amplitude=6000.0)
    key = _tone(0.2, amplitude=12000.0)
    frames = list(_chunks(np.concatenate([speech, key])))
    for i, frame in enumerate(frames):
        assert rec.write(frame, i * TICK)
    pressed = 150 * TICK  # the first frame of the key's tone came at 3.0 s
    result = rec.stop(len(frames) * TICK, cut_from=pressed)
    assert result.reason == "key" and result.samples == speech.size
    _, data = _read_wav(path)
    assert np.array_equal(data, speech)
    assert not temporary_path(path).exists()


def test_a_key_stop_keeps_what_came_before_the_hold_back(tmp_path: Path) -> None:
    """Frames older than hold_back are already in the file: a key held longer than that
    cuts only the last hold_back seconds; trailing silence is trimmed as for silence."""
    path = tmp_path / "long-key.wav"
    rec = Recorder(path, _settings(silence_seconds=5.0), hold_back=0.5)
    speech = _tone(2.0)
    for i, frame in enumerate(_chunks(np.concatenate([speech, _silence(2.0)]))):
        assert rec.write(frame, i * TICK)
    result = rec.stop(4.0, cut_from=0.0)  # "pressed" before anything came
    assert result.reason == "key"
    assert result.samples == speech.size - round(0.5 * RATE) + round(KEPT_SILENCE_SECONDS * RATE)


def test_a_plain_stop_with_hold_back_writes_everything(tmp_path: Path) -> None:
    """Without a key, the held-back audio goes to the file when the recording stops."""
    path = tmp_path / "plain.wav"
    rec = Recorder(path, _settings(), hold_back=2.0)
    speech = _tone(1.5)
    _feed(rec, speech)
    result = rec.stop(2.0)
    assert result.reason == "stopped" and result.samples == speech.size
    assert np.array_equal(_read_wav(path)[1], speech)
