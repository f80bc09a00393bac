"""Music on hold, generated: a short loop of plucked chords in the telephone band, 8 kHz int16.

The shipped ``prompts/moh/chords.wav`` is written from ``music_on_hold()`` by ``callserver
prompts synth`` (no recording, no licence): the progression C - Am - F - G, each chord two
seconds, arpeggiated in plucked notes over a soft pad. The notes lie between 294 and 523 Hz
and their harmonics below 2.1 kHz: inside the 300-3400 Hz telephone band. The piece is
rendered into a circular buffer, so a note still ringing at the end continues at the start
and the pads cross-fade across the seam: played in a loop it has no click and no gap.

Pure: arrays out, no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["CHORDS", "MUSIC_DBFS", "music_on_hold"]

# MIDI note numbers (69 = A4 = 440 Hz): C major, A minor, F major, G major, voiced close.
CHORDS: tuple[tuple[int, int, int], ...] = ((64, 67, 72), (64, 69, 72), (65, 69, 72), (62, 67, 71))
MUSIC_DBFS = -9.0  # peak: quieter than the prompts' -3 dBFS, music under a held call
_CHORD_SECONDS = 2.0
_ARPEGGIO = (0, 1, 2, 1)  # chord tones struck on the four beats of each chord
_PLUCK_DECAY = 0.35  # seconds for a plucked note to fall by 1/e
_PLUCK_RING = 1.5  # seconds rendered of each plucked note (-37 dB by then)
_ATTACK = 0.005
_PAD_LEVEL = 0.25  # the sustained chord, relative to a plucked note


def music_on_hold(rate: int = 8000) -> npt.NDArray[np.int16]:
    """The loop: eight seconds at ``rate`` Hz, ``MUSIC_DBFS`` peak, seamless when repeated."""
    length = round(len(CHORDS) * _CHORD_SECONDS * rate)
    buffer = np.zeros(length, np.float64)
    chord_samples = round(_CHORD_SECONDS * rate)
    beat = chord_samples // len(_ARPEGGIO)
    for index, chord in enumerate(CHORDS):
        start = index * chord_samples
        for step, tone in enumerate(_ARPEGGIO):
            _add_circular(buffer, start + step * beat, _pluck(_hertz(chord[tone]), rate))
        _add_circular(buffer, start - chord_samples // 2, _pad(chord, 2 * chord_samples, rate))
    peak = float(np.max(np.abs(buffer)))
    scale = 32767 * 10 ** (MUSIC_DBFS / 20) / peak
    return np.rint(buffer * scale).astype(np.int16)


def _hertz(note: int) -> float:
    return 440.0 * 2 ** ((note - 69) / 12)


def _pluck(frequency: float, rate: int) -> npt.NDArray[np.float64]:
    """A plucked note: four harmonics falling off as 1/k², a 5 ms attack, exponential decay."""
    t = np.arange(round(_PLUCK_RING * rate)) / rate
    tone = sum(np.sin(2 * np.pi * k * frequency * t) / k**2 for k in range(1, 5))
    envelope = np.minimum(t / _ATTACK, 1.0) * np.exp(-t / _PLUCK_DECAY)
    return np.asarray(tone * envelope, np.float64)


def _pad(chord: tuple[int, int, int], samples: int, rate: int) -> npt.NDArray[np.float64]:
    """The chord's notes held under a Hann window; windows a chord apart sum to a constant."""
    t = np.arange(samples) / rate
    tone = sum(np.sin(2 * np.pi * _hertz(note) * t) for note in chord) / len(chord)
    return np.asarray(_PAD_LEVEL * tone * np.hanning(samples), np.float64)


def _add_circular(
    buffer: npt.NDArray[np.float64], start: int, sound: npt.NDArray[np.float64]
) -> None:
    """Add ``sound`` at ``start``, wrapping past either end of the loop."""
    positions = (start + np.arange(len(sound))) % len(buffer)
    np.add.at(buffer, positions, sound)
