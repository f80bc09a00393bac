"""The thread that writes call recordings to disk, so that no file write runs on the event loop.

Theory of operation
-------------------
The media clock's tick (on the loop) hands each tick's frames of every call recording to
``RecordingWriter.frames`` as one batch; ``open`` and ``finish`` hand over a recording's start
and end. All three only append to a queue the writer thread empties. Frame batches are bounded:
a batch takes one of ``max_batches`` slots (a semaphore the thread gives back once it has
written the batch), and a batch that finds no slot free is dropped whole, which the caller
counts per recording. A start or an end is never dropped (they are two per call, not fifty a
second), so every recording that was started is finished, whatever the disk did.

The file is the voicemail recorder's (``recording.open_part``, ``publish_part``): written to
``.<name>.part``, RIFF sizes patched, fsync'd and renamed over its final name, the folder
fsync'd. An ``OSError`` (a full disk, an unwritable folder) ends that recording on the
thread: its temporary file is removed, the error is kept in ``CallRecording.error`` (which the
loop reads on its next tick) and its later frames are ignored. ``CallRecording.done`` is a
``concurrent.futures.Future`` set once the file is published or given up; in asyncio,
``await asyncio.wrap_future(recording.done)``.
"""

from __future__ import annotations

import queue
import threading
import wave
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from callserver.media.recording import discard_part, open_part, publish_part

__all__ = ["CallRecording", "CallRecordingResult", "Publish", "RecordingMode", "RecordingWriter"]

RecordingMode = Literal["mixed", "stereo"]
_CHANNELS = {"mixed": 1, "stereo": 2}
_SAMPLE_BYTES = 2


Publish = Callable[[wave.Wave_write, BinaryIO, Path], None]
"""Makes a finished ``open_part`` file durable under its name (``recording.publish_part``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallRecordingResult:
    """What a call recording left: ``path`` (None when it failed), the seconds of audio in it,
    the frames handed to the writer and those dropped because its queue was full."""

    path: Path | None
    seconds: float
    frames: int
    dropped: int
    error: str | None = None


class CallRecording:
    """One call's recording: what the loop counts and what the writer thread holds."""

    __slots__ = (
        "_file",
        "_wav",
        "channels",
        "done",
        "dropped",
        "error",
        "frame",
        "frames",
        "mode",
        "path",
        "rate",
        "written",
    )

    def __init__(
        self, path: Path, mode: RecordingMode, *, rate: int = 8000, frame: int = 160
    ) -> None:
        self.path = path
        self.mode = mode
        self.channels = _CHANNELS[mode]
        self.rate = rate
        self.frame = frame  # samples a channel in one tick's frame (ptime * rate)
        self.frames = 0  # handed to the writer (loop side)
        self.dropped = 0  # refused, the queue full (loop side)
        self.written = 0  # samples per channel in the file (thread side)
        self.error: str | None = None  # set by the thread when the disk failed
        self.done: Future[CallRecordingResult] = Future()
        self._file: BinaryIO | None = None
        self._wav: wave.Wave_write | None = None

    @property
    def seconds(self) -> float:
        """Seconds of audio handed to the writer so far (what the file holds once published)."""
        return self.frames * self.frame / self.rate

    # -- on the writer thread ---------------------------------------------------------------

    def _open(self) -> None:
        self._file, self._wav = open_part(self.path, rate=self.rate, channels=self.channels)

    def _write(self, data: bytes) -> None:
        if self._wav is None or self.error is not None:
            return
        self._wav.writeframesraw(data)
        self.written += len(data) // (_SAMPLE_BYTES * self.channels)

    def _finish(self, publish: Publish) -> None:
        wav, file = self._wav, self._file
        self._wav = self._file = None
        if self.error is None and wav is not None and file is not None:
            publish(wav, file, self.path)
        path = self.path if self.error is None else None
        seconds = self.written / self.rate if path is not None else 0.0
        self.done.set_result(
            CallRecordingResult(
                path=path,
                seconds=seconds,
                frames=self.frames,
                dropped=self.dropped,
                error=self.error,
            )
        )

    def _fail(self, exc: OSError) -> None:
        self.error = str(exc) or type(exc).__name__
        wav, file = self._wav, self._file
        self._wav = self._file = None
        discard_part(wav, file, self.path)


_Item = (
    tuple[Literal["open", "finish"], CallRecording]
    | tuple[Literal["frames"], list[tuple[CallRecording, bytes]]]
    | tuple[Literal["stop"], None]
)


class RecordingWriter:
    """Writes every call recording's frames on one thread; see the module docstring.

    Args:
        max_batches: Ticks of frames that may wait for the disk (250: 5 s at 20 ms).
        publish: How a finished file is made durable under its name (patched, fsync'd,
            renamed); an ``OSError`` from it fails the recording.
    """

    def __init__(self, max_batches: int = 250, *, publish: Publish = publish_part) -> None:
        if max_batches < 1:
            raise ValueError(f"max_batches must be at least 1, not {max_batches}")
        self._publish = publish
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._slots = threading.BoundedSemaphore(max_batches)
        self._thread: threading.Thread | None = None

    def open(self, recording: CallRecording) -> None:
        """Start ``recording``'s file (on the thread, which starts with the first recording)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
            self._thread.start()
        self._queue.put(("open", recording))

    def frames(self, batch: list[tuple[CallRecording, bytes]]) -> bool:
        """Queue one tick's frames (PCM bytes per recording); False: no slot, dropped."""
        if not self._slots.acquire(blocking=False):
            return False
        self._queue.put(("frames", batch))
        return True

    def finish(self, recording: CallRecording) -> None:
        """Publish ``recording``'s file after its queued frames; ``recording.done`` follows."""
        self._queue.put(("finish", recording))

    def close(self, timeout: float | None = None) -> None:
        """Finish what is queued and stop the thread (blocking: call it off the loop)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(("stop", None))
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            kind, what = self._queue.get()
            if kind == "stop":
                return
            if kind == "frames":
                assert isinstance(what, list)
                for recording, data in what:
                    _safely(recording, recording._write, data)
                self._slots.release()
            elif isinstance(what, CallRecording) and kind == "open":
                _safely(what, what._open)
            elif isinstance(what, CallRecording):
                self._finish(what)

    def _finish(self, recording: CallRecording) -> None:
        """Publish ``recording``'s file; a failure still settles ``done`` (no path, why)."""
        try:
            recording._finish(self._publish)
        except OSError as exc:
            recording._fail(exc)
            if not recording.done.done():
                recording._finish(self._publish)


def _safely(recording: CallRecording, work: Callable[..., None], *args: bytes) -> None:
    """Run ``work`` for ``recording``; a disk error ends that recording, never the thread."""
    try:
        work(*args)
    except OSError as exc:
        recording._fail(exc)
