"""The audio between the browser's peer connection (aiortc) and the call's RTP, as 8 kHz PCM.

``ServerAudio`` is the track the server sends to the browser: each ``recv`` waits for the next
20 ms deadline on the loop's clock (absolute, ``start + n * 20 ms``, so one late wake-up does
not shift the next) and returns the oldest 160 samples fed from the call's RTP, or silence
when none came (a late packet, a held call). Between calls (``pause``) it gives nothing: no
frame is encoded or sent, as a phone sends no RTP without a call; when it resumes, the frames'
timestamps move on by the time it was paused (RFC 3550 §5.1: the timestamp follows the
sampling clock), so the browser sees a gap, not a burst. At most ``_DEPTH`` chunks wait, the oldest
dropped first, so a burst cannot build up delay. aiortc encodes the frames in the codec
negotiated with the browser (G.711 preferred, ``session``).

``browser_audio`` reads the browser's track (aiortc decodes it), resamples to 8 kHz mono s16
when the browser's codec is another (Opus is 48 kHz) and hands the samples on 160 at a time.
"""

from __future__ import annotations

import asyncio
import fractions
from collections import deque
from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

__all__ = ["FRAME_SAMPLES", "RATE", "ServerAudio", "browser_audio"]

RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: one RTP packet of the call
_PTIME = FRAME_SAMPLES / RATE
_DEPTH = 6  # chunks waiting at most (120 ms)
_TIME_BASE = fractions.Fraction(1, RATE)

Samples = npt.NDArray[np.int16]


class ServerAudio(MediaStreamTrack):
    """The call's audio toward the browser, paced at 20 ms (module docstring)."""

    kind = "audio"

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._clock = loop.time
        self._chunks: deque[Samples] = deque(maxlen=_DEPTH)
        self._start: float | None = None
        self._sent = 0  # 20 ms periods since start: the next frame's pts is this times 160
        self._live = asyncio.Event()

    def resume(self) -> None:
        """Send audio: a call is up."""
        self._live.set()

    def pause(self) -> None:
        """Send nothing: no call."""
        self._live.clear()
        self._chunks.clear()

    def stop(self) -> None:
        """End the track (a ``recv`` waiting for a call ends too)."""
        super().stop()
        self._live.set()

    def feed(self, samples: Samples) -> None:
        """Queue 160 samples heard from the call."""
        self._chunks.append(samples)

    def clear(self) -> None:
        """Drop what waits (a call ended or was held)."""
        self._chunks.clear()

    async def recv(self) -> av.AudioFrame:
        """The next 20 ms frame, at its time.

        Raises:
            MediaStreamError: the track was stopped.
        """
        if not self._live.is_set():
            await self._live.wait()
        if self.readyState != "live":
            raise MediaStreamError
        now = self._clock()
        if self._start is None:
            self._start = now
        deadline = self._start + self._sent * _PTIME
        if deadline > now:
            await asyncio.sleep(deadline - now)
        elif now - deadline > 10 * _PTIME:  # paused or stalled: on from now, no burst
            self._sent = int((now - self._start) / _PTIME)
        samples = self._chunks.popleft() if self._chunks else np.zeros(FRAME_SAMPLES, np.int16)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.time_base = _TIME_BASE
        frame.pts = self._sent * FRAME_SAMPLES
        self._sent += 1
        return frame


async def browser_audio(track: MediaStreamTrack, sink: Callable[[Samples], None]) -> None:
    """Read ``track`` until it ends, handing ``sink`` 160 samples (8 kHz mono) at a time."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    pending: Samples = np.zeros(0, np.int16)
    while True:
        try:
            frame = await track.recv()
        except MediaStreamError:
            return
        if not isinstance(frame, av.AudioFrame):
            continue
        as_is = frame.format.name == "s16" and frame.layout.name == "mono" and frame.rate == RATE
        for converted in [frame] if as_is else resampler.resample(frame):  # G.711 comes as is
            pending = np.concatenate((pending, converted.to_ndarray().reshape(-1)))
        while len(pending) >= FRAME_SAMPLES:
            sink(pending[:FRAME_SAMPLES].astype(np.int16, copy=False))
            pending = pending[FRAME_SAMPLES:]
