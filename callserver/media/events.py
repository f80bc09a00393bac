"""Events the media engine reports to the calls layer (past tense: each says what happened).

Every event names the stream it happened on and carries ``rtime``, the monotonic time of the
packet or tick that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "DtmfReceived",
    "DtmfSource",
    "MediaEvent",
    "PlaybackFinished",
    "RecordingFinished",
    "RtpTimedOut",
]

DtmfSource = Literal["rfc4733", "info", "inband"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived:
    """A DTMF digit arrived, reported once per key press whatever form it came in."""

    stream_id: int
    digit: str
    source: DtmfSource
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackFinished:
    """A playback ended: played to its end, or ``interrupted`` (barge-in or a new playback)."""

    stream_id: int
    interrupted: bool
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpTimedOut:
    """No RTP arrived for ``idle`` seconds while the stream expected some (not on hold)."""

    stream_id: int
    idle: float
    rtime: float


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingFinished:
    """A recording ended; ``path`` is None when it was discarded (too short or failed)."""

    stream_id: int
    path: str | None
    duration: float
    reason: str
    rtime: float


MediaEvent = DtmfReceived | PlaybackFinished | RtpTimedOut | RecordingFinished
