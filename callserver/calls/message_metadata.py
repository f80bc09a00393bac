"""A voicemail message's metadata: the JSON file beside its WAV.

``write_metadata`` says who left the message, for whom, when (UTC, milliseconds), how long and
in which language, in ``<name>.json`` beside ``<name>.wav``. It is written to a hidden
``.part`` file and fsync'd, renamed over, and the folder fsync'd, so a crash leaves the whole
file or none of it. It runs off the loop (``CallSession.record``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

from callserver.calls.session_host import Recorded

__all__ = ["write_metadata"]


def write_metadata(
    wav: Path,
    started: datetime,
    recorded: Recorded,
    *,
    caller: str,
    called: str,
    language: str,
    call_id: str,
) -> None:
    """Write ``wav``'s metadata beside it (``.json``): caller, called, time, duration,
    language, Call-ID; fsync'd, renamed over the old file, the folder fsync'd."""
    data = {
        "caller": caller,
        "called": called,
        "time": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "duration": round(recorded.duration, 3),
        "language": language,
        "call_id": call_id,
        "file": wav.name,
    }
    target = wav.with_suffix(".json")
    part = target.with_name(f".{target.name}.part")
    with part.open("w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    part.replace(target)
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
