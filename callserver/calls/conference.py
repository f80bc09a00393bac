"""Meet-me conference rooms: who is in which room, the one owner of that state.

``Conferences`` is the facade the ``conference`` dialplan step goes through. A room exists
while it has participants: the first ``join`` creates it, the last ``leave`` removes it. Each
participant is a call (by Call-ID) and its media stream; the stream is mixed into the room on
the engine's clock (``media.conferencing``: each participant hears the others, RFC 4353 §5).
A room may hold at most the limit its step gives; a call that would exceed it is refused
(``join`` returns False) and the room is left as it was. With tones, everyone in the room hears
a short rising tone when someone joins and a falling one when someone leaves.

Every change is logged for the operator: ``conference.created``, ``conference.joined``,
``conference.full``, ``conference.left``, ``conference.removed``, with the room, the Call-ID
and the number of participants.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from callserver.media.engine import MediaEngine
from callserver.media.stream import MediaStream
from callserver.media.tones import join_tone, leave_tone

__all__ = ["Conferences", "RoomStatistics"]

log = structlog.get_logger("callserver.calls")
_JOIN_TONE = join_tone()
_LEAVE_TONE = leave_tone()


@dataclass(frozen=True, slots=True, kw_only=True)
class RoomStatistics:
    """The rooms in use and their participants (``statistics()``)."""

    rooms: int
    participants: int


class Conferences:
    """The conference rooms of the server; see the module docstring."""

    def __init__(self, media: MediaEngine) -> None:
        self._media = media
        self._rooms: dict[str, dict[str, MediaStream]] = {}

    def join(
        self, room: str, *, call_id: str, stream: MediaStream, limit: int, tones: bool
    ) -> bool:
        """Put the call into ``room`` (created if it has no one); False when the room already
        holds ``limit`` participants (the call is not added)."""
        members = self._rooms.get(room)
        if members is not None and len(members) >= limit:
            log.info("conference.full", room=room, call_id=call_id, participants=len(members))
            return False
        if members is None:
            members = self._rooms[room] = {}
            log.info("conference.created", room=room, call_id=call_id)
        members[call_id] = stream
        self._media.mix(stream, room)
        if tones:
            self._media.conferences.tone(room, _JOIN_TONE)
        log.info(
            "conference.joined",
            room=room,
            call_id=call_id,
            participants=len(members),
            rtp_port=stream.port,
        )
        return True

    def leave(self, room: str, call_id: str, *, tones: bool) -> None:
        """Take the call out of ``room`` (removed with its last participant); a call that is
        not in the room changes nothing."""
        members = self._rooms.get(room)
        stream = None if members is None else members.pop(call_id, None)
        if members is None or stream is None:
            return
        if self._media.is_open(stream):  # a hang-up closed it, and took it out of the mix
            self._media.mix(stream, None)
        log.info("conference.left", room=room, call_id=call_id, participants=len(members))
        if members:
            if tones:
                self._media.conferences.tone(room, _LEAVE_TONE)
            return
        del self._rooms[room]
        log.info("conference.removed", room=room)

    def participants(self, room: str) -> int:
        """How many calls are in ``room`` (0: no such room)."""
        return len(self._rooms.get(room, ()))

    def statistics(self) -> RoomStatistics:
        """The rooms in use and their participants in all."""
        return RoomStatistics(
            rooms=len(self._rooms),
            participants=sum(len(members) for members in self._rooms.values()),
        )
