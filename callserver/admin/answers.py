"""Pieces of the admin API's answers that several resources write the same way: a moment as
UTC ISO 8601 with ``Z`` (the contract's form of every time), a WAV file as a download."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from aiohttp import web

__all__ = ["iso_utc", "wav_download"]


def iso_utc(
    moment: datetime, *, timespec: Literal["seconds", "milliseconds"] = "milliseconds"
) -> str:
    """``moment`` (timezone-aware) as UTC ISO 8601 with a ``Z``, to ``timespec``."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def wav_download(path: Path) -> web.FileResponse:
    """The WAV at ``path`` as an ``audio/wav`` attachment of its own name, streamed from disk
    by aiohttp (ranges work, no copy in memory); ``path`` is one the resource found itself."""
    return web.FileResponse(
        path,
        headers={
            "Content-Type": "audio/wav",
            "Content-Disposition": f'attachment; filename="{path.name}"',
        },
    )
