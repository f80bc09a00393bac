"""Comparing what a caller heard with the prompt it should have heard, for end-to-end tests.

Prompts are 8 kHz mono 16-bit WAVs; a received signal is compared with one by signal-to-noise
ratio at the lag where the two line up best (cross-correlation), so the packets the server
sends before the prompt do not matter.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt

RATE = 8000
FRAME = 160  # samples in one 20 ms packet


def wav_samples(path: Path) -> npt.NDArray[np.int16]:
    """The samples of the 8 kHz mono 16-bit WAV at ``path``."""
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


def aligned_snr_db(reference: npt.NDArray[np.int16], received: npt.NDArray[np.int16]) -> float:
    """SNR of ``received`` against ``reference`` where ``reference`` lines up best in it.

    Audio the received signal lacks counts as noise (it is zero-padded), so a prompt cut short
    scores low too.
    """
    return _snr_at(reference, received, lag(reference, received))


def lag(reference: npt.NDArray[np.int16], received: npt.NDArray[np.int16]) -> int:
    """The offset in ``received`` (0 or more) where ``reference`` correlates best."""
    ref, rec = reference.astype(np.float64), received.astype(np.float64)
    size = 1 << (len(ref) + len(rec)).bit_length()
    spectrum = np.fft.rfft(rec, size) * np.conj(np.fft.rfft(ref, size))
    return int(np.argmax(np.fft.irfft(spectrum, size)[: len(rec)]))


def _snr_at(reference: npt.NDArray[np.int16], received: npt.NDArray[np.int16], at: int) -> float:
    ref = reference.astype(np.float64)
    segment = np.pad(received.astype(np.float64), (0, len(ref)))[at : at + len(ref)]
    noise = np.sum((ref - segment) ** 2)
    return float(10 * np.log10(np.sum(ref**2) / max(noise, 1e-9)))
