"""Playback of pre-encoded audio: a byte string sliced one frame per tick.

Prompts are decoded, resampled and encoded once when loaded (``prompts.PromptStore``), so
playing is slicing bytes: no decoding, resampling or encoding on the media tick. The last
frame is padded with the codec's silence; a looping playback wraps around instead.
"""

from __future__ import annotations

__all__ = ["Playback"]


class Playback:
    """One playback in progress: ``payload`` sliced into ``frame``-byte frames."""

    __slots__ = ("barge_in", "frame", "loop", "payload", "position")

    def __init__(
        self, payload: bytes, frame: int, *, loop: bool = False, barge_in: bool = False
    ) -> None:
        self.payload = payload
        self.frame = frame
        self.loop = loop and bool(payload)
        self.barge_in = barge_in
        self.position = 0

    def next_frame(self, silence: bytes) -> tuple[bytes, bool]:
        """The next frame and whether the playback has ended with it.

        ``silence`` is one frame of the codec's silence, used to pad the last frame.
        """
        payload, frame = self.payload, self.frame
        end = self.position + frame
        if end < len(payload):
            self.position = end
            return payload[end - frame : end], False
        if self.loop:
            chunk = payload[self.position :]
            while len(chunk) < frame:
                chunk += payload
            self.position = (end - len(payload)) % len(payload)
            return chunk[:frame], False
        chunk = payload[self.position : end]
        self.position = len(payload)
        return chunk + silence[len(chunk) :], True
