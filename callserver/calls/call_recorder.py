"""Recording a whole call: where its file goes, who asked for it, what its CDR says.

A call is recorded from a ``record_call`` step of its plan on, or from its answer when the
called number's customer records every call (config/trunks.yaml ``customers: NAME: recording:
{calls: all}``); a queue can ask for it the same way (``CallSession.record_call``). The media
engine does the recording (``media.call_recording``: the caller and the other party, written
off the loop); this module names its file,
``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav``, where ``uuid`` is the call's CDR
``uuid``, so a file and its record find each other, and the date is the recording's start
(UTC). The CDR gets the file's path relative to the data directory (``recording_path``) and its
whole seconds (``recording_seconds``) only once the writer has published the file (fsync'd and
renamed): the call's record waits for that (``RecordedCall.when_settled``, the writer's thread
hopping back to the loop). A recording that failed (a disk error, at any point up to the
rename) leaves neither, and the record says why (``recording_error``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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

    def settled(self) -> bool:
        """True once the writer has published the file or given it up."""
        return self.recording.done.done()

    def cdr_fields(self) -> dict[str, object]:
        """The CDR's ``uuid``; once the file is published, its path and whole seconds; once
        it failed, why (``recording_error``). Unsettled: nothing is claimed of the file."""
        fields: dict[str, object] = {"uuid": self.uuid}
        if not self.settled():
            return fields
        result = self.recording.done.result()
        if result.path is None:
            fields["recording_error"] = result.error or "the file was not written"
            return fields
        fields.update(recording_path=self.path, recording_seconds=int(result.seconds))
        return fields

    def when_settled(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` on the running loop once the file is published or given up."""
        loop = asyncio.get_running_loop()
        self.recording.done.add_done_callback(lambda _: loop.call_soon_threadsafe(callback))


def recording_file(data_dir: Path, customer: str | None, started: datetime, uuid: str) -> Path:
    """``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav`` (``started`` in UTC)."""
    day = f"{started:%Y}/{started:%m}/{started:%d}"
    return data_dir / "recordings" / (customer or NO_CUSTOMER) / day / f"{uuid}.wav"
