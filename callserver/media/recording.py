"""Recording a call's audio to a WAV file: 8 kHz, mono, 16-bit linear PCM.

Theory of operation
-------------------
The engine calls ``Recorder.write`` once per 20 ms tick with one frame of linear PCM (one leg, or
both legs already mixed with ``mixer.mix``) and ``Recorder.stop`` when the call or the verb ends.
The file is RIFF WAVE with format tag 1, PCM (RFC 2361, Appendix A), written with the stdlib
``wave`` module. Time is the audio itself: lengths are counted in samples, never by the clock,
so a recording limited to N seconds holds exactly ``N * rate`` samples however late ticks were.

Crash safety. Audio goes to ``.<name>.part`` in the destination directory. Only a complete
recording is published: the RIFF sizes are patched, the data is flushed and ``os.fsync``-ed,
and the file is renamed over the final name with ``os.replace`` (atomic on POSIX). A crash,
a kill or a full disk therefore never leaves a truncated file under a name that looks finished;
at worst a dot-file ending in ``.part`` stays behind.

Trailing silence. A frame whose RMS level is below ``silence_dbfs`` is silence. Silent frames
are held in memory, not written, while they last; speech that resumes writes them out first.
When the held silence reaches ``silence_seconds`` the recording ends with reason "silence" and
only the first ``KEPT_SILENCE_SECONDS`` (0.5 s) of that silence is written, so the message ends
on a short natural pause rather than a cut. Silence held when the recording is stopped or hits
its maximum length is shorter than ``silence_seconds`` and is kept in full. The file never has
to be rewritten, and memory stays bounded by ``silence_seconds`` of audio.

A key that ends it. A recording the caller may end with a key (``#``) is made with
``hold_back`` seconds: that much of the latest audio stays in memory, each frame with the
``now`` it came at, before it goes to the file. ``stop(now, cut_from=when the key was
pressed)`` then drops the frames that came from then on, so the key's tone (in-band, or sent
with the telephone-events) is not in the message, and ends with reason "key", held silence
trimmed as for "silence". A key held longer than ``hold_back`` leaves the part of its tone
before that in the file.

Endings. "max_length": ``max_seconds`` of audio were recorded (the frame crossing the limit is
cut at it). "silence": see above. "stopped": ``stop`` was called. "key": ``stop`` with
``cut_from`` (above). "too_short": what would have
been kept is shorter than ``min_seconds``; the temporary file is removed and nothing is
published. "failed": an ``OSError`` (disk full, unwritable directory) ended it; the temporary
file is removed, the error text is in the result, and nothing is raised to the caller.
"""

from __future__ import annotations

import contextlib
import os
import wave
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

from callserver.media.mixer import silence_threshold
from callserver.media.settings import RecordingSettings

__all__ = [
    "KEPT_SILENCE_SECONDS",
    "KEY_HOLD_BACK",
    "EndReason",
    "Recorder",
    "RecordingResult",
    "discard_part",
    "fsync_directory",
    "open_part",
    "publish_part",
    "temporary_path",
]

EndReason = Literal["silence", "max_length", "stopped", "key", "too_short", "failed"]

KEPT_SILENCE_SECONDS = 0.5

KEY_HOLD_BACK = 2.0
"""Seconds of audio held back in a recording a key may end: the longest key press the
telephone-event receiver reports (its ``max_event``)."""

_CHANNELS = 1
_SAMPLE_WIDTH = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingResult:
    """How a recording ended and what was kept.

    Attributes:
        path: The finished WAV file, or None when nothing was kept (too short, failed).
        duration: Seconds of audio in the file (0.0 when nothing was kept).
        reason: Why it ended: silence, max_length, stopped, too_short or failed.
        frames: Frames handed to ``write`` while the recording ran.
        samples: Samples in the file (0 when nothing was kept).
        trimmed_samples: Samples of trailing silence dropped when silence ended it.
        started_at: ``now`` of the first frame, or None if no frame came.
        ended_at: ``now`` when the recording ended.
        error: The ``OSError`` text when the reason is "failed", else None.
    """

    path: Path | None
    duration: float
    reason: EndReason
    frames: int
    samples: int
    trimmed_samples: int
    started_at: float | None
    ended_at: float
    error: str | None = None


def temporary_path(path: Path) -> Path:
    """The name a recording for ``path`` has while it is being written: ``.<name>.part``."""
    return path.with_name(f".{path.name}.part")


class Recorder:
    """Writes one recording to ``path`` as a WAV file (RFC 2361 WAVE_FORMAT_PCM), crash-safely.

    Nothing touches the disk until the first ``write``; then the directory is created if needed
    and the temporary file opened. See the module docstring for silence, limits and endings.

    Args:
        path: The final file name; it appears only once the recording is complete.
        settings: max_seconds, min_seconds, silence_seconds and silence_dbfs.
        rate: Sample rate in Hz (8000 for G.711).
        hold_back: Seconds of the latest audio kept from the file until ``stop`` (so a key
            that ends the recording can take its tone back out); 0: written at once.

    Raises:
        ValueError: if ``rate`` is not positive or ``hold_back`` negative.
    """

    def __init__(
        self, path: Path, settings: RecordingSettings, *, rate: int = 8000, hold_back: float = 0.0
    ) -> None:
        if rate <= 0 or hold_back < 0:
            raise ValueError(f"sample rate must be positive, not {rate}; hold_back not negative")
        self._path = path
        self._rate = rate
        self._silence_energy = silence_threshold(settings.silence_dbfs, 1)  # per sample
        self._max_samples = round(settings.max_seconds * rate)
        self._min_samples = round(settings.min_seconds * rate)
        self._silence_samples = max(1, round(settings.silence_seconds * rate))
        self._kept_silence = round(KEPT_SILENCE_SECONDS * rate)
        self._file: BinaryIO | None = None
        self._wav: wave.Wave_write | None = None
        self._written = 0
        self._held: list[npt.NDArray[np.int16]] = []
        self._held_samples = 0
        self._frames = 0
        self._started_at: float | None = None
        self._result: RecordingResult | None = None
        self._hold_back = round(hold_back * rate)
        self._recent: deque[tuple[float, npt.NDArray[np.int16]]] = deque()  # (now, samples)
        self._recent_samples = 0
        self._now = 0.0

    @property
    def path(self) -> Path:
        """The final file name."""
        return self._path

    @property
    def result(self) -> RecordingResult | None:
        """The result once the recording has ended, else None."""
        return self._result

    def write(self, samples: npt.NDArray[np.int16], now: float) -> bool:
        """Append one frame of linear PCM (any length; the engine passes 160 per 20 ms).

        Args:
            samples: One-dimensional int16 samples at ``rate``.
            now: The current time, recorded as the start of the recording on the first frame.

        Returns:
            True while the recording goes on. False when this frame ended it (max length
            reached, trailing silence, or a write error) or it had already ended; a frame given
            after the end is ignored.
        """
        if self._result is not None:
            return False
        if self._started_at is None:
            self._started_at = now
        self._now = now
        self._frames += 1
        try:
            self._open()
            self._append(samples[: self._max_samples - self._length])
        except OSError as exc:
            self._fail(exc, now)
            return False
        reason = self._end_reason()
        if reason is None:
            return True
        self._finish(reason, now)
        return False

    def stop(self, now: float, *, cut_from: float | None = None) -> RecordingResult:
        """End the recording (reason "stopped") unless it has ended already; never raises.

        Args:
            now: The current time, recorded as the end of a recording still running.
            cut_from: A key ended it, pressed at this time: the audio held back that came
                from then on is dropped (reason "key").

        Returns:
            The result; once ended, every call returns the same object.
        """
        if self._result is None and cut_from is not None:
            self._cut(cut_from)
            self._finish("key", now)
        elif self._result is None:
            self._finish("stopped", now)
        assert self._result is not None
        return self._result

    @property
    def _length(self) -> int:
        return self._written + self._held_samples

    def _open(self) -> None:
        if self._wav is None:
            # Both stay open across ticks; _publish or _discard closes them.
            self._file, self._wav = open_part(self._path, rate=self._rate, channels=_CHANNELS)

    def _append(self, frame: npt.NDArray[np.int16]) -> None:
        if frame.size == 0:
            return
        as_float = frame.astype(np.float64)
        if float(as_float @ as_float) < self._silence_energy * frame.size:
            # Copied: the engine may reuse its frame buffer on the next tick.
            self._held.append(np.array(frame, dtype=np.int16))
            self._held_samples += frame.size
            return
        if self._held:
            self._write_samples(self._take_held(self._held_samples))
        self._write_samples(frame)

    def _end_reason(self) -> EndReason | None:
        if self._held_samples >= self._silence_samples:
            return "silence"
        if self._length >= self._max_samples:
            return "max_length"
        return None

    def _take_held(self, count: int) -> npt.NDArray[np.int16]:
        """The first ``count`` held samples; the hold is emptied."""
        held = np.concatenate(self._held) if self._held else np.zeros(0, dtype=np.int16)
        self._held, self._held_samples = [], 0
        return held[:count]

    def _write_samples(self, samples: npt.NDArray[np.int16]) -> None:
        if samples.size == 0:
            return
        self._written += samples.size
        if not self._hold_back:
            self._write_file(samples)
            return
        # Copied: the engine may reuse its frame buffer on the next tick.
        self._recent.append((self._now, np.array(samples, dtype=np.int16)))
        self._recent_samples += samples.size
        while self._recent_samples - len(self._recent[0][1]) >= self._hold_back:
            self._write_file(self._pop_recent())

    def _pop_recent(self) -> npt.NDArray[np.int16]:
        _, oldest = self._recent.popleft()
        self._recent_samples -= oldest.size
        return oldest

    def _cut(self, cut_from: float) -> None:
        """Drop the held-back frames that came at ``cut_from`` or later (``_finish`` trims
        the held silence as for a silence ending)."""
        while self._recent and self._recent[-1][0] >= cut_from:
            _, dropped = self._recent.pop()
            self._recent_samples -= dropped.size
            self._written -= dropped.size

    def _write_file(self, samples: npt.NDArray[np.int16]) -> None:
        assert self._wav is not None
        # writeframesraw, not writeframes: the latter seeks back to patch the RIFF sizes on
        # every call. Sizes are patched once, on close.
        self._wav.writeframesraw(samples.astype(np.int16, copy=False).tobytes())

    def _finish(self, reason: EndReason, now: float) -> None:
        held = self._held_samples
        tail = self._take_held(self._kept_silence if reason in ("silence", "key") else held)
        trimmed = held - tail.size
        kept = self._written + tail.size
        if kept < self._min_samples:
            self._discard()
            self._conclude("too_short", None, 0, trimmed, now)
            return
        try:
            self._open()
            self._write_samples(tail)
            self._publish()
        except OSError as exc:
            self._fail(exc, now)
            return
        self._conclude(reason, self._path, kept, trimmed, now)

    def _publish(self) -> None:
        assert self._wav is not None and self._file is not None
        while self._recent:
            self._write_file(self._pop_recent())
        wav, file = self._wav, self._file
        self._wav = self._file = None
        publish_part(wav, file, self._path)

    def _discard(self) -> None:
        wav, file = self._wav, self._file
        self._wav = self._file = None
        discard_part(wav, file, self._path)

    def _fail(self, exc: OSError, now: float) -> None:
        self._discard()
        self._held, self._held_samples = [], 0
        self._recent.clear()
        self._recent_samples = 0
        self._conclude("failed", None, 0, 0, now, error=str(exc))

    def _conclude(
        self,
        reason: EndReason,
        path: Path | None,
        samples: int,
        trimmed: int,
        now: float,
        *,
        error: str | None = None,
    ) -> None:
        self._result = RecordingResult(
            path=path,
            duration=samples / self._rate,
            reason=reason,
            frames=self._frames,
            samples=samples,
            trimmed_samples=trimmed,
            started_at=self._started_at,
            ended_at=now,
            error=error,
        )


def open_part(path: Path, *, rate: int, channels: int) -> tuple[BinaryIO, wave.Wave_write]:
    """Open ``temporary_path(path)`` as a 16-bit PCM WAV of ``channels`` at ``rate`` Hz,
    creating ``path``'s directory if needed; ``publish_part`` or ``discard_part`` closes it.

    Raises:
        OSError: the directory or the file cannot be made.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    file = open(temporary_path(path), "wb")  # noqa: SIM115
    wav = wave.open(file, "wb")  # noqa: SIM115
    wav.setnchannels(channels)
    wav.setsampwidth(_SAMPLE_WIDTH)
    wav.setframerate(rate)
    return file, wav


def publish_part(wav: wave.Wave_write, file: BinaryIO, path: Path) -> None:
    """Finish an ``open_part`` file: RIFF sizes patched, data fsync'd, renamed to ``path``.

    Raises:
        OSError: a write, the fsync or the rename failed (the temporary file stays).
    """
    try:
        wav.close()  # patches the RIFF and data chunk sizes, then flushes
        os.fsync(file.fileno())
    finally:
        file.close()
    os.replace(temporary_path(path), path)
    fsync_directory(path.parent)


def discard_part(wav: wave.Wave_write | None, file: BinaryIO | None, path: Path) -> None:
    """Close an ``open_part`` file and remove it; never raises."""
    # A failed flush must not stop the clean-up, and there is nothing better to report.
    if wav is not None:
        with contextlib.suppress(OSError, ValueError):
            wav.close()
    if file is not None:
        with contextlib.suppress(OSError):
            file.close()
    with contextlib.suppress(OSError):
        temporary_path(path).unlink(missing_ok=True)


def fsync_directory(directory: Path) -> None:
    """Make the rename durable. Best effort: the data is already synced and the new name
    visible, and some filesystems refuse to sync a directory; that must not cost a recording.
    """
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
