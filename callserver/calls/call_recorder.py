"""Recording a whole call: where its file goes, who asked for it, what its CDR says.

A call is recorded from a ``record_call`` step of its plan on, or from its answer when the
called number's customer records every call (config/trunks.yaml ``customers: NAME: recording:
{calls: all}``); a queue can ask for it the same way (``CallSession.record_call``). The media
engine does the recording (``media.call_recording``: the caller and the other party, written
off the loop); this module names its file,
``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav``, where ``uuid`` is the call's CDR
``uuid``, so a file and its record find each other, and the date is the recording's start
(UTC). The CDR gets the file's path relative to the data directory (``recording_path``) and its
whole seconds (``recording_seconds``); a recording that failed (a disk error) leaves neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from callserver.config.trunks import CallRecordingConfig
from callserver.media.prompts import Play, PlaylistItem
from callserver.media.recording_writer import CallRecording, RecordingMode

__all__ = ["NO_CUSTOMER", "RecordedCall", "RecordingPolicy", "recording_file"]

NO_CUSTOMER = "unassigned"
"""The folder of the recordings of calls that belong to no customer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingPolicy:
    """A customer's ``recording`` settings as a call to one of its numbers applies them."""

    customer: str
    mode: RecordingMode
    announcement: tuple[PlaylistItem, ...] = ()

    @classmethod
    def of(cls, customer: str, config: CallRecordingConfig) -> RecordingPolicy:
        """The policy of ``customer``'s ``config``."""
        return cls(
            customer=customer,
            mode=config.mode,
            announcement=tuple(Play(name) for name in config.announcement),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordedCall:
    """A call's recording: the CDR ``uuid`` it is named for, its path under the data
    directory, and the media engine's recording."""

    uuid: str
    path: str
    recording: CallRecording

    def cdr_fields(self) -> dict[str, object]:
        """The CDR's ``uuid`` and, unless the recording failed, its path and whole seconds."""
        if self.recording.error is not None:
            return {"uuid": self.uuid}
        seconds = int(self.recording.seconds)
        return {"uuid": self.uuid, "recording_path": self.path, "recording_seconds": seconds}


def recording_file(data_dir: Path, customer: str | None, started: datetime, uuid: str) -> Path:
    """``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav`` (``started`` in UTC)."""
    day = f"{started:%Y}/{started:%m}/{started:%d}"
    return data_dir / "recordings" / (customer or NO_CUSTOMER) / day / f"{uuid}.wav"
