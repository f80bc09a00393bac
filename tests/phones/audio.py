"""Test audio for the phones: pure tones written as WAV or raw G.711, WAV files read, and the
tone heard."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711

RATE = 8000
FRAME = 160


def tone(frequency: float, seconds: float, amplitude: int = 8000) -> npt.NDArray[np.int16]:
    """``seconds`` of a sine at ``frequency`` Hz, 8 kHz, whole 20 ms frames."""
    count = int(seconds * RATE) // FRAME * FRAME
    t = np.arange(count) / RATE
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def write_wav(path: Path, samples: npt.NDArray[np.int16]) -> Path:
    """``samples`` as a 16-bit 8 kHz mono WAV file at ``path``."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(RATE)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def read_wav(path: Path) -> npt.NDArray[np.int16]:
    """The samples of a 16-bit 8 kHz mono WAV file (what phones and the server write)."""
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (RATE, 1), path
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def write_ulaw(path: Path, samples: npt.NDArray[np.int16]) -> Path:
    """``samples`` as headerless G.711 u-law (what SIPp's ``rtp_stream`` sends as PCMU)."""
    path.write_bytes(g711.encode("PCMU", samples))
    return path


def dominant_frequency(samples: npt.NDArray[np.int16]) -> float:
    """The frequency in Hz of the strongest spectral line of ``samples`` (8 kHz)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    spectrum[0] = 0.0
    return float(np.argmax(spectrum) * RATE / len(samples))


def rms(samples: npt.NDArray[np.int16]) -> float:
    """Root mean square level of ``samples``."""
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))
