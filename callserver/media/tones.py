"""Tone generation: DTMF digits (ITU-T Q.23 frequency pairs) and plain sine tones, 8 kHz int16.

Used to carry a digit in-band to a bridged leg that negotiated no telephone-event, for the
beep prompt, for the ringback a forwarded call hears and for the tones a conference room plays
when someone joins or leaves. Pure: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "DTMF_FREQUENCIES",
    "JOIN_FREQUENCIES",
    "dtmf_tone",
    "join_tone",
    "leave_tone",
    "ringback",
    "sine",
]

# ITU-T Q.23: each key is one low-group (row) and one high-group (column) frequency.
_ROWS = (697.0, 770.0, 852.0, 941.0)
_COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
_KEYPAD = ("123A", "456B", "789C", "*0#D")
DTMF_FREQUENCIES: dict[str, tuple[float, float]] = {
    key: (_ROWS[r], _COLUMNS[c]) for r, row in enumerate(_KEYPAD) for c, key in enumerate(row)
}


def sine(
    frequency: float, ms: int, *, dbfs: float = -10.0, rate: int = 8000
) -> npt.NDArray[np.int16]:
    """A sine tone of ``ms`` milliseconds at ``dbfs`` peak level."""
    t = np.arange(rate * ms // 1000) / rate
    amplitude = 32767 * 10 ** (dbfs / 20)
    return np.round(amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def ringback(rate: int = 8000) -> npt.NDArray[np.int16]:
    """One cadence of the European ringback tone (ETSI TR 101 041): 425 Hz for 1 s at -16 dBFS,
    then 4 s of silence."""
    return np.concatenate([sine(425.0, 1000, dbfs=-16.0, rate=rate), np.zeros(4 * rate, np.int16)])


# A conference's join tone rises through these two notes and its leave tone falls back.
JOIN_FREQUENCIES = (880.0, 1320.0)
_NOTE_MS = 120
_TONE_DBFS = -16.0


def join_tone(rate: int = 8000) -> npt.NDArray[np.int16]:
    """Someone joined the conference: two short rising notes (880 then 1320 Hz, 120 ms each)."""
    return np.concatenate([sine(f, _NOTE_MS, dbfs=_TONE_DBFS, rate=rate) for f in JOIN_FREQUENCIES])


def leave_tone(rate: int = 8000) -> npt.NDArray[np.int16]:
    """Someone left the conference: the join tone's notes falling (1320 then 880 Hz)."""
    notes = reversed(JOIN_FREQUENCIES)
    return np.concatenate([sine(f, _NOTE_MS, dbfs=_TONE_DBFS, rate=rate) for f in notes])


def dtmf_tone(
    digit: str, ms: int, *, dbfs: float = -10.0, rate: int = 8000
) -> npt.NDArray[np.int16]:
    """The two-tone signal of ``digit`` (each tone at ``dbfs`` - 6 dB so the sum peaks at ``dbfs``).

    Raises:
        ValueError: ``digit`` is not a DTMF key (0-9, *, #, A-D).
    """
    try:
        low, high = DTMF_FREQUENCIES[digit.upper()]
    except KeyError:
        raise ValueError(f"{digit!r} is not a DTMF key (0-9, *, #, A-D)") from None
    a = sine(low, ms, dbfs=dbfs - 6.02, rate=rate).astype(np.int32)
    b = sine(high, ms, dbfs=dbfs - 6.02, rate=rate).astype(np.int32)
    out: npt.NDArray[np.int16] = np.clip(a + b, -32768, 32767).astype(np.int16)
    return out
