"""Recording a whole call: the caller and the party across the bridge, on the media clock.

Theory of operation
-------------------
A call recording is started on the caller's stream (``MediaEngine.record_call``) and taps, on
every 20 ms tick, two directions: what the caller sends (the left channel) and the other party:
whatever stream is bridged to the caller at that tick (``stream.peer``: a forwarded leg, a
phone, the target of a transfer), or, while nothing is bridged, what the server plays to the
caller (prompts, ringback, music), so an announcement or an IVR menu before the agent answers
is in the file too. Following ``peer`` tick by tick keeps the recording going through a
transfer or a second forward without the calls layer telling us.

``AudioCapture`` decodes the received audio of every tapped stream once a tick (the same
decode in-band DTMF and voicemail recording use). Each side goes into its own carry buffer
and exactly one frame (a ``ptime`` of audio: 160 samples at 20 ms) is taken from each per
tick, padded with silence when a side sent nothing: the file runs at the clock's pace, the two
channels stay aligned whatever the packet sizes or the jitter, and a side that sends faster
than the clock has its oldest audio dropped beyond ``_CARRY_FRAMES`` frames rather than
drifting. A tick that stands for ticks the clock skipped (a late loop resynchronises: see
``clock``) takes a frame for each of them, from the audio that arrived meanwhile and then
silence, so a recording keeps the call's length as RTP timestamps keep wall time. ``mixed``
writes the two frames summed (``mixer.mix``, saturating) as mono; ``stereo`` interleaves them,
caller left.

The tick never touches the disk: it hands every recording's frame to ``RecordingWriter`` as one
batch (see there: a bounded queue, a thread, the file fsync'd and published atomically). A batch
the full queue refuses is dropped and counted on each recording (``dropped``), and logged once
per recording as ``media.call_recording_dropped``. A recording the writer reports failed (a disk
error) stops being tapped on the next tick, logged as ``media.call_recording_failed``; the call
goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import structlog

from callserver.media.mixer import mix
from callserver.media.recording_writer import CallRecording, RecordingMode, RecordingWriter
from callserver.media.stream import MediaStream

__all__ = ["CallRecordings"]

log = structlog.get_logger("callserver.media")

_CARRY_FRAMES = 3  # a side's audio held for the next ticks before the oldest is dropped
_EMPTY: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)


@dataclass(slots=True)
class _Tap:
    stream: MediaStream
    recording: CallRecording
    peer: MediaStream | None = None
    left: npt.NDArray[np.int16] = field(default_factory=lambda: _EMPTY)
    right: npt.NDArray[np.int16] = field(default_factory=lambda: _EMPTY)


class CallRecordings:
    """The call recordings in progress, by the caller's stream; see the module docstring."""

    def __init__(self, writer: RecordingWriter | None = None, *, frame: int = 160) -> None:
        self.writer = writer or RecordingWriter()
        self.frame = frame  # samples a tick: ptime at 8 kHz
        self._taps: dict[int, _Tap] = {}
        self._peers: dict[int, int] = {}  # a tapped peer's stream id -> taps on it

    def __bool__(self) -> bool:
        return bool(self._taps)

    def start(self, stream: MediaStream, path: Path, mode: RecordingMode) -> CallRecording:
        """Record ``stream``'s call to ``path`` from the next tick; one at a time per stream
        (a second start ends the first)."""
        self.stop(stream)
        recording = CallRecording(path, mode, frame=self.frame)
        self._taps[stream.stream_id] = _Tap(stream, recording)
        self.writer.open(recording)
        log.info("media.call_recording_started", stream_id=stream.stream_id, path=str(path))
        return recording

    def stop(self, stream: MediaStream) -> CallRecording | None:
        """End ``stream``'s call recording (its file is published on the writer's thread)."""
        tap = self._taps.pop(stream.stream_id, None)
        if tap is None:
            return None
        self._untap_peer(tap)
        self.writer.finish(tap.recording)
        return tap.recording

    def recording(self, stream: MediaStream) -> CallRecording | None:
        """``stream``'s call recording in progress, if any."""
        tap = self._taps.get(stream.stream_id)
        return None if tap is None else tap.recording

    def receives(self, stream: MediaStream) -> bool:
        """True when a recording needs what ``stream`` receives (a caller's, or its peer's)."""
        sid = stream.stream_id
        return sid in self._taps or sid in self._peers

    def sends(self, stream: MediaStream) -> bool:
        """True when a recording needs what we send ``stream`` (nothing bridged to it)."""
        tap = self._taps.get(stream.stream_id)
        return tap is not None and stream.peer is None

    def follow_peers(self) -> list[MediaStream]:
        """Note each caller's current peer; the streams whose capture needs change."""
        changed: list[MediaStream] = []
        for tap in self._taps.values():
            peer = tap.stream.peer
            if peer is tap.peer:
                continue
            old = tap.peer
            self._untap_peer(tap)
            tap.peer = peer
            if peer is not None:
                self._peers[peer.stream_id] = self._peers.get(peer.stream_id, 0) + 1
            changed += [s for s in (tap.stream, old, peer) if s is not None]
        return changed

    def legs(self) -> list[MediaStream]:
        """The streams whose received audio the next ``tick`` reads."""
        legs = [tap.stream for tap in self._taps.values()]
        legs += [tap.peer for tap in self._taps.values() if tap.peer is not None]
        return legs

    def tick(
        self,
        received: dict[int, npt.NDArray[np.int16]],
        sent: dict[int, npt.NDArray[np.int16]],
        span: int = 1,
    ) -> list[MediaStream]:
        """Hand this tick's frames of every recording to the writer: ``span`` of them, one for
        this tick and one for each tick the clock skipped before it; the streams whose
        recording the writer reports failed (they are stopped)."""
        batch: list[tuple[CallRecording, bytes]] = []
        failed: list[MediaStream] = []
        for tap in self._taps.values():
            if tap.recording.error is not None:
                failed.append(tap.stream)
                continue
            other = received if tap.peer is not None else sent
            other_id = (tap.peer or tap.stream).stream_id
            batch.append((tap.recording, self._frames(tap, received, other, other_id, span)))
        if batch and self.writer.frames(batch):
            for recording, _ in batch:
                recording.frames += span
        elif batch:
            self._dropped(batch)
        for stream in failed:
            self._failed(stream)
        return failed

    def _frames(
        self,
        tap: _Tap,
        received: dict[int, npt.NDArray[np.int16]],
        other: dict[int, npt.NDArray[np.int16]],
        other_id: int,
        span: int,
    ) -> bytes:
        size, keep = self.frame * span, self.frame * _CARRY_FRAMES
        tap.left, left = _take_frame(
            tap.left, received.get(tap.stream.stream_id, _EMPTY), size, keep
        )
        tap.right, right = _take_frame(tap.right, other.get(other_id, _EMPTY), size, keep)
        if tap.recording.mode == "mixed":
            return mix(left, right).tobytes()
        both = np.empty(2 * size, dtype=np.int16)
        both[0::2], both[1::2] = left, right
        return both.tobytes()

    def _dropped(self, batch: list[tuple[CallRecording, bytes]]) -> None:
        for recording, _ in batch:
            recording.dropped += 1
            if recording.dropped == 1:
                log.warning("media.call_recording_dropped", path=str(recording.path))

    def _failed(self, stream: MediaStream) -> None:
        recording = self.stop(stream)
        if recording is not None:
            log.error(
                "media.call_recording_failed", path=str(recording.path), error=recording.error
            )

    def _untap_peer(self, tap: _Tap) -> None:
        if tap.peer is None:
            return
        sid = tap.peer.stream_id
        left = self._peers.get(sid, 0) - 1
        if left > 0:
            self._peers[sid] = left
        else:
            self._peers.pop(sid, None)
        tap.peer = None
        tap.right = _EMPTY


def _take_frame(
    carry: npt.NDArray[np.int16], new: npt.NDArray[np.int16], size: int, keep: int
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.int16]]:
    """(what stays for later ticks: the newest ``keep`` samples at most, this tick's frames:
    exactly ``size`` samples)."""
    samples = np.concatenate((carry, new)) if len(carry) else new
    if len(samples) < size:
        return _EMPTY, np.pad(samples, (0, size - len(samples)))
    rest = samples[size:]
    return rest[-keep:] if len(rest) > keep else rest, samples[:size]
