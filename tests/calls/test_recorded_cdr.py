"""A recorded call's CDR tells the truth about its file: the record of a call whose recording
the writer is still publishing waits for it, and names the file only once it is durable.

A real ``RecordingWriter`` thread writes a real file under a temporary directory; the failure
is injected at the writer's seam (``publish``: the patch, fsync and rename of the finished
file), where a full disk or a failing rename would strike.
"""

from __future__ import annotations

import asyncio
import errno
import wave
from pathlib import Path
from typing import BinaryIO

from callserver.calls.call_recorder import RecordedCall
from callserver.calls.reporting import CallFacts
from callserver.cdr.record import CdrRecord
from callserver.media.recording_writer import CallRecording, RecordingWriter
from tests.calls.test_reporting import reporter

SECOND = b"\x01\x00" * 160  # one 20 ms mono frame


def _facts() -> CallFacts:
    out = CallFacts(call_id="c1@test", caller="38761000000", called="033123456", offered_at=100.0)
    out.answered_at = 101.0
    return out


def _failing_rename(wav: wave.Wave_write, file: BinaryIO, path: Path) -> None:
    """Patches and syncs as the real one does, then the rename fails (a full disk)."""
    wav.close()
    file.close()
    raise OSError(errno.ENOSPC, "No space left on device")


async def _recorded_end(
    tmp_path: Path, writer: RecordingWriter
) -> tuple[list[CdrRecord], RecordedCall]:
    """A call recorded for 50 frames (1 s) and ended: the records written by the time the
    writer has settled the file, and the call's recording."""
    now = [160.0]
    reporting, sink = reporter(now)
    path = tmp_path / "recordings" / "acme" / "u-1.wav"
    path.parent.mkdir(parents=True)
    recording = CallRecording(path, "mixed")
    writer.open(recording)
    for _ in range(50):
        assert writer.frames([(recording, SECOND)])
        recording.frames += 1
    recorded = RecordedCall(uuid="u-1", path="recordings/acme/u-1.wav", recording=recording)
    writer.finish(recording)
    call = _facts()
    call.extra.update(recorded.cdr_fields())
    assert reporting.ended(call, "bye_received", sip_code=200, recorded=recorded) is None
    await asyncio.wrap_future(recording.done)
    for _ in range(100):  # the writer's thread hands the record back to the loop
        if sink.records:
            break
        await asyncio.sleep(0.01)
    await asyncio.to_thread(writer.close, 5.0)
    return sink.records, recorded


async def test_the_record_names_the_file_once_it_is_published(tmp_path: Path) -> None:
    """The record waits for the writer; then it names the file and its whole seconds, stamped
    at the call's end, not at the write."""
    records, _ = await _recorded_end(tmp_path, RecordingWriter())
    (record,) = records
    assert (record.uuid, record.recording_path, record.recording_seconds) == (
        "u-1",
        "recordings/acme/u-1.wav",
        1,
    )
    assert record.recording_error is None and record.billsec == 59
    assert (tmp_path / "recordings" / "acme" / "u-1.wav").is_file()


async def test_a_file_whose_rename_fails_is_not_named_and_the_record_says_why(
    tmp_path: Path,
) -> None:
    """The final rename fails after the call ended: the record has no path nor seconds and
    says why; no file is left under the name nor as a temporary."""
    records, recorded = await _recorded_end(tmp_path, RecordingWriter(publish=_failing_rename))
    (record,) = records
    assert record.recording_path is None and record.recording_seconds is None
    assert record.recording_error == "[Errno 28] No space left on device"
    assert record.uuid == "u-1" and record.disposition.value == "ANSWERED"
    assert list((tmp_path / "recordings" / "acme").iterdir()) == []
    assert recorded.cdr_fields() == {"uuid": "u-1", "recording_error": record.recording_error}


def test_an_unsettled_recording_claims_nothing_of_its_file(tmp_path: Path) -> None:
    """Before the writer has settled the file, the fields name no path and no seconds."""
    recording = CallRecording(tmp_path / "u-2.wav", "stereo")
    recording.frames = 250
    recorded = RecordedCall(uuid="u-2", path="recordings/u-2.wav", recording=recording)
    assert not recorded.settled() and recorded.cdr_fields() == {"uuid": "u-2"}
