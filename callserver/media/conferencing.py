"""The engine's conference rooms: what each participant hears, mixed on the shared clock.

Theory of operation
-------------------
A stream mixed into a room (``join``) no longer sends prompts or silence of its own: on each
tick of the media clock ``tick`` gathers one frame from every participant of every room, mixes
them all in one pass (``conference.mix_minus``: each hears the others, never itself; tones a
room is played are added to its sum) and returns one packet per participant for the engine to
send with the rest of the tick's batch.

A participant's audio arrives between ticks, not on them: the stream queues what it receives
(``capture_rx``) and each tick moves it into the participant's playout buffer, in the codec we
send it (a packet in another codec of the answer is transcoded). Play-out starts when two
frames are buffered and takes one a tick; after an underrun it waits for two again. A buffer
that grows past ``_MAX_FRAMES`` (a sender faster than our clock, or a burst) drops its oldest
audio down to ``_KEEP_FRAMES``, so a participant's delay stays bounded. Until then a missing
frame is silence. A participant that holds the call (any direction but sendrecv, RFC 3264
§8.4) is muted: a phone's own hold music must not play into the room.

Per tick the Python work per participant is moving its queued payloads and slicing its frame
and packet; decoding, mixing, clipping and encoding are whole-array operations over all rooms.
The layout (row order by room, room starts, each row's law) is rebuilt only when someone joins,
leaves or renegotiates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.conference import decode_rows, encode_rows, law_of, mix_minus
from callserver.media.latch import Address
from callserver.media.stream import MediaStream

__all__ = ["ConferenceMixer"]

_START_FRAMES = 2  # buffered before play-out starts (after an underrun too)
_MAX_FRAMES = 6  # beyond this the oldest audio is dropped ...
_KEEP_FRAMES = 3  # ... down to this


class _Member:
    __slots__ = ("buffer", "primed", "stream")

    def __init__(self, stream: MediaStream) -> None:
        self.stream = stream
        self.buffer = bytearray()
        self.primed = False


@dataclass(frozen=True, slots=True)
class _Layout:
    members: tuple[_Member, ...]
    rooms: dict[str, int]  # room -> its index
    room_of: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    law: npt.NDArray[np.intp]
    muted: npt.NDArray[np.bool_]  # rows of participants holding the call


class ConferenceMixer:
    """Every conference room of the engine; see the module docstring."""

    def __init__(self, ptime: int = 20) -> None:
        self.frame = 8 * ptime  # G.711 at 8 kHz: one octet a sample
        self._rooms: dict[str, dict[int, _Member]] = {}
        self._room_of: dict[int, str] = {}  # stream id -> its room
        self._tones: dict[str, npt.NDArray[np.int16]] = {}
        self._layout: _Layout | None = None
        self._silence = {c: bytes([g711.SILENCE_BYTE[c]]) * self.frame for c in g711.SILENCE_BYTE}

    def join(self, stream: MediaStream, room: str) -> None:
        """Mix ``stream`` into ``room`` (created by its first participant) from the next tick."""
        self.leave(stream)
        self._rooms.setdefault(room, {})[stream.stream_id] = _Member(stream)
        self._room_of[stream.stream_id] = room
        stream.mixed = stream.capture_rx = True
        stream.rx_audio.clear()  # what came before the room is not for its participants
        self._layout = None

    def leave(self, stream: MediaStream) -> str | None:
        """Take ``stream`` out of its room (removed with its last participant); the room's name,
        None when the stream was in none."""
        room = self._room_of.pop(stream.stream_id, None)
        if room is None:
            return None
        members = self._rooms[room]
        del members[stream.stream_id]
        if not members:
            del self._rooms[room]
            self._tones.pop(room, None)
        stream.mixed = False
        self._layout = None
        return room

    def reconfigured(self, stream: MediaStream) -> None:
        """The stream renegotiated (its codec may have changed): lay the rows out again."""
        if stream.mixed:
            self._layout = None

    def tone(self, room: str, samples: npt.NDArray[np.int16]) -> None:
        """Add ``samples`` (8 kHz int16) to what everyone in ``room`` hears, from the next tick."""
        if room in self._rooms:
            pending = self._tones.get(room)
            self._tones[room] = samples if pending is None else np.concatenate((pending, samples))

    def participants(self, room: str) -> int:
        """How many streams are mixed in ``room``."""
        return len(self._rooms.get(room, ()))

    def tick(self, tick: int) -> list[tuple[int, bytes, Address]]:
        """Mix one frame for every participant of every room; the packets to send."""
        if not self._rooms:
            return []
        layout = self._layout or self._lay_out()
        frame = self.frame
        payload = b"".join([self._next_frame(member) for member in layout.members])
        codes = np.frombuffer(payload, dtype=np.uint8).reshape(len(layout.members), frame)
        tones = self._tone_frames(layout) if self._tones else None
        frames = decode_rows(codes, layout.law)
        if layout.muted.any():
            frames[layout.muted] = 0
        mixed = mix_minus(frames, layout.room_of, layout.starts, tones)
        encoded = encode_rows(mixed, layout.law)
        out: list[tuple[int, bytes, Address]] = []
        for i, member in enumerate(layout.members):
            stream = member.stream
            packet = stream.mixed_packet(encoded[i * frame : (i + 1) * frame], tick)
            if packet is not None and stream.remote is not None:
                out.append((stream.stream_id, packet, stream.remote))
        return out

    def _lay_out(self) -> _Layout:
        members = tuple(m for room in self._rooms.values() for m in room.values())
        sizes = [len(room) for room in self._rooms.values()]
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.intp)
        room_of = np.repeat(np.arange(len(sizes), dtype=np.intp), sizes)
        law = np.array([law_of(m.stream.codec) for m in members], dtype=np.intp)
        muted = np.array([_holds(m.stream) for m in members], dtype=np.bool_)
        rooms = {room: index for index, room in enumerate(self._rooms)}
        self._layout = _Layout(members, rooms, room_of, starts, law, muted)
        return self._layout

    def _next_frame(self, member: _Member) -> bytes:
        """The participant's next frame in its codec (silence while its buffer fills)."""
        stream, buffer, frame = member.stream, member.buffer, self.frame
        queue = stream.rx_audio
        if queue:
            codec = stream.codec
            for source, payload in queue:
                buffer += payload if source == codec else g711.transcode(payload, source, codec)
            queue.clear()
            if len(buffer) > _MAX_FRAMES * frame:
                del buffer[: len(buffer) - _KEEP_FRAMES * frame]
        if not member.primed:
            if len(buffer) < _START_FRAMES * frame:
                return self._silence[stream.codec]
            member.primed = True
        if len(buffer) < frame:
            member.primed = False
            return self._silence[stream.codec]
        out = bytes(buffer[:frame])
        del buffer[:frame]
        return out

    def _tone_frames(self, layout: _Layout) -> npt.NDArray[np.int32]:
        frame = self.frame
        tones = np.zeros((len(layout.starts), frame), dtype=np.int32)
        for room, samples in list(self._tones.items()):
            chunk = samples[:frame]
            tones[layout.rooms[room], : len(chunk)] = chunk
            if len(samples) > frame:
                self._tones[room] = samples[frame:]
            else:
                del self._tones[room]
        return tones


def _holds(stream: MediaStream) -> bool:
    config = stream.config
    return config is not None and config.on_hold
