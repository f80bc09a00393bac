"""Voicemail messages written the way a call's recording leaves them (WAV + JSON)."""

from __future__ import annotations

import json
import wave
from datetime import datetime
from pathlib import Path

import numpy as np


def tone(seconds: float, hz: float = 440.0) -> np.ndarray:
    """``seconds`` of a sine at ``hz``, 8 kHz 16-bit."""
    t = np.arange(int(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * hz * t) * 8000).astype(np.int16)


def write_message(
    box: Path,
    when: datetime,
    *,
    caller: str = "38761555111",
    call_id: str = "c1",
    seconds: float = 1.0,
) -> Path:
    """A message begun at ``when`` (UTC) in the folder ``box``; its WAV's path."""
    box.mkdir(parents=True, exist_ok=True)
    name = f"{when:%Y%m%dT%H%M%SZ}-{abs(hash((when, call_id))) % 16**8:08x}"
    wav = box / f"{name}.wav"
    with wave.open(str(wav), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(tone(seconds).tobytes())
    meta = {
        "caller": caller,
        "called": box.name,
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "duration": seconds,
        "language": "en",
        "call_id": call_id,
        "file": wav.name,
    }
    wav.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    return wav
