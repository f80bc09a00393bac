"""Audio files decoded to 8 kHz mono int16 samples, the form prompts and music on hold take.

A file may be in any format pydub reads: PCM WAV natively, the rest through ffmpeg (when
ffmpeg is missing, the error names the file and says so). It is converted to 8 kHz mono int16
(ITU-T G.711 §1); a 3.6 kHz low-pass filter runs before downsampling so content above the new
Nyquist frequency is removed, not folded into the band. Every fault is a ``PromptError`` whose
message starts with the file's path.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

with warnings.catch_warnings():
    # pydub warns when ffmpeg is missing: WAV needs none, other files get an error of their own.
    warnings.filterwarnings("ignore", message="Couldn't find ff", category=RuntimeWarning)
    warnings.filterwarnings("ignore", message=".*audioop.*", category=DeprecationWarning)
    from pydub import AudioSegment
    from pydub.exceptions import CouldntDecodeError

__all__ = ["SAMPLE_RATE", "PromptError", "decode_file"]

SAMPLE_RATE = 8000  # ITU-T G.711: 8000 samples per second
_CUTOFF_HZ = 3600.0  # anti-alias: under 4 kHz, above the 300-3400 Hz telephone band
_FILTER_SECONDS = 0.010  # FIR length; Blackman transition about 5.5 / 10 ms = 550 Hz wide
_MAX_RATE = 384_000


class PromptError(Exception):
    """A prompt file missing, empty, not audio or undecodable; the message starts with its path."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message


class _Segment(Protocol):
    """The part of ``pydub.AudioSegment`` used here (pydub ships no type hints)."""

    frame_rate: int
    raw_data: bytes

    def set_frame_rate(self, frame_rate: int) -> _Segment: ...
    def set_channels(self, channels: int) -> _Segment: ...
    def set_sample_width(self, sample_width: int) -> _Segment: ...


def decode_file(path: Path) -> npt.NDArray[np.int16]:
    """Read an audio file and convert it to 8 kHz mono int16 (ITU-T G.711 §1 sampling).

    Raises:
        PromptError: the file is missing, empty, not audio, undecodable, or needs ffmpeg that
            is not installed.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PromptError(path, f"cannot read: {exc.strerror or exc}") from None
    if not data:
        raise PromptError(path, "empty file")
    is_wav = data[:4] == b"RIFF" and data[8:12] == b"WAVE"
    segment = _read_wav(path, data) if is_wav else _read_with_ffmpeg(path)
    try:
        samples = _to_telephone(segment)
    except Exception as exc:  # malformed sample data (audioop.error: not a whole number of frames)
        raise PromptError(path, f"not valid audio: {exc}") from None
    if samples.size == 0:
        raise PromptError(path, "holds no audio")
    return samples


def _read_wav(path: Path, data: bytes) -> _Segment:
    try:
        segment: _Segment = AudioSegment(data=data)
    except Exception as exc:  # pydub raises CouldntDecodeError, struct.error, audioop.error...
        if _ffmpeg() is not None:
            return _read_with_ffmpeg(path)
        if "Unknown audio format" in str(exc):  # not PCM: A-law, float, ADPCM...
            raise PromptError(
                path, f"needs ffmpeg to decode it: {exc} (apt-get install ffmpeg)"
            ) from None
        raise PromptError(path, f"not a valid WAV file: {exc}") from None
    return segment


def _read_with_ffmpeg(path: Path) -> _Segment:
    if _ffmpeg() is None:
        if path.suffix.lower() == ".wav":
            raise PromptError(path, "not audio: no RIFF/WAVE header")
        kind = path.suffix.lower() or "this file"
        raise PromptError(path, f"needs ffmpeg to decode {kind} (apt-get install ffmpeg)")
    try:
        segment: _Segment = AudioSegment.from_file(path)
    except CouldntDecodeError as exc:
        reason = str(exc).strip().splitlines()[-1:] or ["unknown format"]
        raise PromptError(path, f"not audio ffmpeg can decode: {reason[0]}") from None
    except OSError as exc:
        raise PromptError(path, f"cannot decode: {exc}") from None
    return segment


def _ffmpeg() -> str | None:
    """The converter pydub runs (ffmpeg or avconv), if it is on PATH now."""
    return shutil.which(str(AudioSegment.converter))


def _to_telephone(segment: _Segment) -> npt.NDArray[np.int16]:
    rate = segment.frame_rate
    if not 1000 <= rate <= _MAX_RATE:  # a corrupt header; the filter would grow with the rate
        raise ValueError(f"a sample rate of {rate} Hz is out of range")
    mono = segment.set_channels(1).set_sample_width(2)
    if rate > SAMPLE_RATE:
        filtered = _lowpass(np.frombuffer(mono.raw_data, dtype="<i2"), rate)
        mono = AudioSegment(data=filtered.tobytes(), sample_width=2, frame_rate=rate, channels=1)
    resampled = mono.set_frame_rate(SAMPLE_RATE)
    return np.frombuffer(resampled.raw_data, dtype="<i2").astype(np.int16)


def _lowpass(samples: npt.NDArray[np.int16], rate: int) -> npt.NDArray[np.int16]:
    """Windowed-sinc FIR low-pass at ``_CUTOFF_HZ``, applied by FFT convolution, zero delay."""
    taps = int(rate * _FILTER_SECONDS) | 1
    offsets = np.arange(taps) - taps // 2
    kernel = np.sinc(2 * _CUTOFF_HZ / rate * offsets) * np.blackman(taps)
    kernel /= kernel.sum()
    size = 1 << (len(samples) + taps - 2).bit_length()
    spectrum = np.fft.rfft(samples, size) * np.fft.rfft(kernel, size)
    filtered = np.fft.irfft(spectrum, size)[taps // 2 : taps // 2 + len(samples)]
    return np.clip(np.rint(filtered), -32768, 32767).astype(np.int16)
