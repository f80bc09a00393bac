"""A voicemail message's metadata: the JSON file beside its WAV.

``write_metadata`` says who left the message, for whom, when (UTC, milliseconds), how long and
in which language, in ``<name>.json`` beside ``<name>.wav``. It is written durably
(``process.durable.write_json``), so a crash leaves the whole file or none of it. It runs off
the loop (``CallSession.record``).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from callserver.calls.session_host import Recorded
from callserver.process.durable import write_json

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
    write_json(wav.with_suffix(".json"), data)
