"""Per-tick audio work for the streams that need decoded samples: in-band DTMF and recording.

Most streams never decode what they receive: a prompt is sent and the caller's audio only
refreshes the inactivity timer. A stream with in-band DTMF detection on (the peer offered no
telephone-event) or a recording sets ``capture_rx``; its audio is then queued in sequence order
(the stream's reorder buffer) with the codec each packet came in (any the answer listed), and
decoded here once per tick. In-band detection runs for all such streams at once as one matrix
operation (``InbandDetector.process``), in 20 ms frames of 160 samples (a peer sending other
packet sizes is re-framed through a carry buffer).
Recording writes what the stream received, or with ``both`` that mixed with the other
direction: the bridged peer's audio, or what we played to the caller. A whole call's
recording (``call_recording``, written off the loop) reads the same decoded audio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from pathlib import Path

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.call_recording import CallRecordings
from callserver.media.events import RecordingFinished
from callserver.media.inband import InbandDetector
from callserver.media.mixer import mix
from callserver.media.recording import Recorder, RecordingResult
from callserver.media.recording_writer import CallRecording, RecordingMode
from callserver.media.settings import MediaSettings, RecordingSettings
from callserver.media.stream import MediaStream

__all__ = ["FRAME_SAMPLES", "AudioCapture"]

FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the in-band detector's frame
_EMPTY: npt.NDArray[np.int16] = np.zeros(0, dtype=np.int16)
_SILENT_FRAME: npt.NDArray[np.int16] = np.zeros(FRAME_SAMPLES, dtype=np.int16)
_GAP_TICKS = 3


@dataclass(slots=True)
class _Recording:
    stream: MediaStream
    recorder: Recorder
    both: bool
    idle_ticks: int = 0


class AudioCapture:
    """In-band DTMF detection and recording for the engine; see the module docstring."""

    def __init__(self, settings: MediaSettings) -> None:
        self.settings = settings
        self._detector = InbandDetector()
        self._inband: dict[int, tuple[MediaStream, int]] = {}
        self._carry: dict[int, npt.NDArray[np.int16]] = {}
        self._recordings: dict[int, _Recording] = {}
        self.calls = CallRecordings(frame=settings.ptime * 8)  # 8 samples a ms

    def set_inband(self, stream: MediaStream, on: bool) -> None:
        """Turn in-band DTMF detection on or off for ``stream``."""
        sid = stream.stream_id
        if on and sid not in self._inband:
            self._inband[sid] = (stream, self._detector.add_stream())
        elif not on and sid in self._inband:
            self._detector.remove_stream(self._inband.pop(sid)[1])
            self._carry.pop(sid, None)
        stream.inband = on
        self._update_capture(stream)

    def start_recording(
        self,
        stream: MediaStream,
        path: Path,
        *,
        both: bool,
        limits: RecordingSettings | None = None,
        hold_back: float = 0.0,
    ) -> None:
        """Record ``stream`` to ``path`` (a WAV, written under a temporary name until done),
        within ``limits`` (default: the configured recording settings), the last
        ``hold_back`` seconds kept back for a key that ends it (``Recorder``)."""
        recorder = Recorder(path, limits or self.settings.recording, hold_back=hold_back)
        self._recordings[stream.stream_id] = _Recording(stream, recorder, both)
        self._update_capture(stream)

    def stop_recording(
        self, stream: MediaStream, now: float, *, cut_from: float | None = None
    ) -> RecordingResult | None:
        """Finish ``stream``'s recording and report ``RecordingFinished``; None if none ran.
        ``cut_from``: a key ended it, pressed then (``Recorder.stop``)."""
        recording = self._recordings.pop(stream.stream_id, None)
        if recording is None:
            return None
        result = recording.recorder.stop(now, cut_from=cut_from)
        self._update_capture(stream)
        if recording.both and stream.peer is not None:
            self._update_capture(stream.peer)  # its audio was captured only for this mix
        path = None if result.path is None else str(result.path)
        stream.events.append(
            RecordingFinished(
                stream_id=stream.stream_id,
                path=path,
                duration=result.duration,
                reason=result.reason,
                rtime=now,
            )
        )
        return result

    def record_call(self, stream: MediaStream, path: Path, mode: RecordingMode) -> CallRecording:
        """Record ``stream``'s whole call to ``path`` (``call_recording``)."""
        recording = self.calls.start(stream, path, mode)
        self._update_capture(stream)
        return recording

    def stop_call_recording(self, stream: MediaStream) -> CallRecording | None:
        """End ``stream``'s call recording; its file is published off the loop."""
        recording = self.calls.stop(stream)
        if recording is not None:  # every stream that closes asks; most were not recorded
            self._recapture(stream)
        return recording

    def release(self, stream: MediaStream, now: float) -> RecordingResult | None:
        """``stream`` closes: its recording and call recording end (the bridged peer
        captures only what it still needs) and its DTMF detector goes; most streams had none,
        so each is asked for only when it exists. Returns the recording's result."""
        sid = stream.stream_id
        result = self.stop_recording(stream, now) if sid in self._recordings else None
        if self.calls:
            self.stop_call_recording(stream)
        if sid in self._inband:
            self._detector.remove_stream(self._inband.pop(sid)[1])
            self._carry.pop(sid, None)
        return result

    def _recapture(self, stream: MediaStream) -> None:
        """Capture what ``stream`` and its peer need now that a call recording ended."""
        for leg in (stream, stream.peer):
            if leg is not None:
                self._update_capture(leg)

    def _update_capture(self, stream: MediaStream) -> None:
        recording = self._recordings.get(stream.stream_id)
        calls = self.calls if self.calls else None  # most calls are not recorded
        stream.capture_rx = (
            stream.inband
            or recording is not None
            or stream.mixed
            or (calls is not None and calls.receives(stream))
        )
        stream.capture_tx = (recording is not None and recording.both and stream.peer is None) or (
            calls is not None and calls.sends(stream)
        )
        if recording is not None and recording.both and stream.peer is not None:
            stream.peer.capture_rx = True
        if not stream.capture_rx:
            stream.rx_audio.clear()

    def tick(self, now: float, span: int = 1) -> list[MediaStream]:
        """Decode what arrived since the last tick, detect DTMF, write recordings; ``span``
        is how many ticks this one stands for (more than 1 after the clock skipped ticks:
        call recordings keep the call's length).

        Returns the streams that have events to report (digits, finished recordings).
        """
        if not self._inband and not self._recordings and not self.calls:
            return []
        decoded: dict[int, npt.NDArray[np.int16]] = {}
        for stream, _slot in self._inband.values():
            decoded[stream.stream_id] = _take_rx(stream)
        for recording in self._recordings.values():
            for leg in (recording.stream, recording.stream.peer):
                if leg is not None and leg.stream_id not in decoded:
                    decoded[leg.stream_id] = _take_rx(leg)
        if self.calls:
            self._record_calls(decoded, span)
        streams = [stream for stream, _slot in self._inband.values()]
        streams += [recording.stream for recording in self._recordings.values()]
        if self._inband:
            self._detect(decoded, now)
        if self._recordings:
            self._record(decoded, now)
        return [stream for stream in streams if stream.events]

    def _record_calls(self, decoded: dict[int, npt.NDArray[np.int16]], span: int) -> None:
        calls = self.calls
        for changed in calls.follow_peers():
            self._update_capture(changed)
        legs = calls.legs()
        for leg in legs:
            if leg.stream_id not in decoded:
                decoded[leg.stream_id] = _take_rx(leg)
        sent = {leg.stream_id: _take_tx(leg) for leg in legs if calls.sends(leg)}
        for stream in calls.tick(decoded, sent, span):  # ended by a disk error: untapped already
            self._recapture(stream)

    def _detect(self, decoded: dict[int, npt.NDArray[np.int16]], now: float) -> None:
        frames: list[list[npt.NDArray[np.int16]]] = []
        slots: list[list[int]] = []
        streams: dict[int, MediaStream] = {}
        for sid, (stream, slot) in self._inband.items():
            samples = np.concatenate((self._carry.get(sid, _EMPTY), decoded.get(sid, _EMPTY)))
            whole = len(samples) // FRAME_SAMPLES * FRAME_SAMPLES
            self._carry[sid] = samples[whole:]
            if not whole or not stream.inband_active(now):
                continue
            streams[slot] = stream
            for i, frame in enumerate(samples[:whole].reshape(-1, FRAME_SAMPLES)):
                if i == len(frames):
                    frames.append([])
                    slots.append([])
                frames[i].append(frame)
                slots[i].append(slot)
        for round_frames, round_slots in zip(frames, slots, strict=True):
            found = self._detector.process(
                np.array(round_slots, dtype=np.intp), np.stack(round_frames)
            )
            for slot, digit in found:
                streams[slot].report_digit(digit, "inband", now)

    def _record(self, decoded: dict[int, npt.NDArray[np.int16]], now: float) -> None:
        for sid, recording in list(self._recordings.items()):
            stream = recording.stream
            samples = decoded.get(sid, _EMPTY)
            if recording.both:
                other = (
                    decoded.get(stream.peer.stream_id, _EMPTY)
                    if stream.peer is not None
                    else _take_tx(stream)
                )
                samples = _mix_padded(samples, other)
            if not len(samples):
                # Nothing arrived: after a few ticks that is a gap in the audio, not jitter.
                recording.idle_ticks += 1
                if recording.idle_ticks < _GAP_TICKS:
                    continue
                samples = _SILENT_FRAME
            else:
                recording.idle_ticks = 0
            if not recording.recorder.write(samples, now):
                self.stop_recording(stream, now)


def _take_rx(stream: MediaStream) -> npt.NDArray[np.int16]:
    """Empty the stream's received payloads and decode each run in the codec it came in."""
    queue = stream.rx_audio
    if not queue:
        return _EMPTY
    runs = [
        g711.decode(codec, b"".join(payload for _, payload in run))
        for codec, run in groupby(queue, key=itemgetter(0))
    ]
    queue.clear()
    return runs[0] if len(runs) == 1 else np.concatenate(runs)


def _take_tx(stream: MediaStream) -> npt.NDArray[np.int16]:
    return _take(stream.tx_audio, stream.codec)


def _take(queue: deque[bytes], codec: str) -> npt.NDArray[np.int16]:
    """Empty ``queue`` of payloads and return them decoded as one array."""
    if not queue:
        return _EMPTY
    payload = b"".join(queue)
    queue.clear()
    return g711.decode(codec, payload)


def _mix_padded(a: npt.NDArray[np.int16], b: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    size = max(len(a), len(b))
    if not size:
        return _EMPTY
    return mix(np.pad(a, (0, size - len(a))), np.pad(b, (0, size - len(b))))
