"""A supervisor's stream on a bridged call: listen, whisper or barge, without touching its timing.

Theory of operation
-------------------
A bridged call relays each packet as it arrives (``MediaStream.receive``): no jitter buffer,
no clock between its two parties. A ``Monitor`` keeps it that way. Its three streams are the
agent's (the stream towards the monitored phone), the other party's, and the supervisor's:

- every audio packet relayed across the bridge passes through ``passing`` on its way (the
  bridged stream's ``monitor``): decoded, it goes into the buffer of what the supervisor hears
  of that side, and the relayed packet leaves at once, as before;
- in ``whisper`` the packets relayed *to* the agent carry the supervisor's voice too, in
  ``barge`` the packets relayed to either party do: the supervisor's buffered audio is mixed
  in (``mixer.mix``, saturating) as the packet passes, so the relay's timing stays the
  caller's; with nothing buffered the packet goes unchanged (no gap, no wait);
- on each tick of the shared media clock ``tick`` moves what the supervisor sent into those
  buffers and sends the supervisor one frame: the two parties' frames mixed
  (``mixer.mix_rows``). In ``listen`` the supervisor's audio is taken and dropped.

Each buffer is a participant's play-out buffer as in ``conferencing``: play-out starts with
two frames buffered, after an underrun it waits for two again, and past ``_MAX_FRAMES`` the
oldest audio is dropped, so what the supervisor hears (and what it whispers) stays at most a
few frames behind. The supervisor's stream is ``mixed`` for as long as it monitors: it sends
nothing of its own, and its received audio is queued (``capture_rx``) for the tick.

A party on hold hears the hold music the tick sends it, not relayed packets, so the voice
meant for it would find no packet to ride on. While a party the supervisor speaks to is held
(``held``: the other side holds it), the monitor sends that party's packets itself: the
stream is ``mixed`` (the tick sends nothing of its own) and each tick the monitor takes the
next frame of its hold music (``RtpSender.held_frame``), mixes the supervisor's voice in and
stamps it (``mixed_packet``); when the hold ends the stream is handed back. A party that holds
the call itself (it asked for no audio: ``sendonly``/``inactive``) is sent nothing, whisper
included (RFC 3264 §6.1).

Modes (the names of the service codes): ``listen`` the supervisor hears both parties and
neither hears it; ``whisper`` the agent hears the other party and the supervisor, the other
party the agent only; ``barge`` each of the three hears the other two.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from callserver.media import g711
from callserver.media.latch import Address
from callserver.media.mixer import mix, mix_rows
from callserver.media.stream import MediaStream

__all__ = ["MODES", "Mode", "Monitor", "Monitors"]

Mode = Literal["listen", "whisper", "barge"]
MODES: Final = ("listen", "whisper", "barge")

_START_FRAMES = 2  # buffered before play-out starts (after an underrun too)
_MAX_FRAMES = 6  # beyond this the oldest audio is dropped ...
_KEEP_FRAMES = 3  # ... down to this


class _Feed:
    """Linear PCM (int16) waiting to be played out, with a play-out threshold."""

    __slots__ = ("buffer", "frame", "primed")

    def __init__(self, frame: int) -> None:
        self.frame = frame  # samples a frame
        self.buffer = np.zeros(0, dtype=np.int16)
        self.primed = False

    def push(self, samples: npt.NDArray[np.int16]) -> None:
        buffer = np.concatenate((self.buffer, samples))
        if len(buffer) > _MAX_FRAMES * self.frame:
            buffer = buffer[len(buffer) - _KEEP_FRAMES * self.frame :]
        self.buffer = buffer

    def take(self, samples: int) -> npt.NDArray[np.int16] | None:
        """The next ``samples`` samples, or None while the buffer fills (after an underrun)."""
        buffer = self.buffer
        if not self.primed:
            if len(buffer) < _START_FRAMES * self.frame:
                return None
            self.primed = True
        if len(buffer) < samples:
            self.primed = False
            return None
        self.buffer = buffer[samples:]
        return buffer[:samples]


class Monitor:
    """One supervisor's stream on one bridged call; see the module docstring."""

    __slots__ = (
        "_heard",
        "_holding",
        "_into",
        "_voice",
        "agent",
        "frame",
        "mode",
        "other",
        "supervisor",
    )

    def __init__(
        self,
        mode: Mode,
        *,
        agent: MediaStream,
        other: MediaStream,
        supervisor: MediaStream,
        frame: int,
    ) -> None:
        self.mode: Mode = mode
        self.agent, self.other, self.supervisor = agent, other, supervisor
        self.frame = frame
        # What the supervisor hears of each side, by the stream the side's audio arrives on.
        self._heard = {agent.stream_id: _Feed(frame), other.stream_id: _Feed(frame)}
        # The supervisor's voice, by the stream whose relayed packets carry it, and the
        # party those packets reach.
        self._into: tuple[tuple[MediaStream, MediaStream], ...] = {
            "listen": (),
            "whisper": ((other, agent),),
            "barge": ((other, agent), (agent, other)),
        }[mode]
        self._voice = {source.stream_id: _Feed(frame) for source, _ in self._into}
        self._holding: list[MediaStream] = []  # held parties whose packets the monitor sends

    def passing(self, source: MediaStream, codec: str, payload: bytes) -> bytes:
        """A packet ``source`` received on its way across the bridge: kept for the
        supervisor; the payload to relay (the supervisor's voice mixed in when the mode says)."""
        samples = g711.decode(codec, payload)
        heard = self._heard.get(source.stream_id)
        if heard is not None:
            heard.push(samples)
        voice = self._voice.get(source.stream_id)
        said = None if voice is None else voice.take(len(samples))
        if said is None:
            return payload
        return g711.encode(codec, mix(samples, said))

    def tick(self, tick: int) -> list[tuple[int, bytes, Address]]:
        """Take what the supervisor said; its frame of both parties mixed, and the packets
        of the held parties it speaks to (their music with its voice), as packets."""
        out = []
        heard = self._heard_packet(tick)
        if heard is not None:
            out.append(heard)
        for source, party in self._into:
            packet = self._to_held(source, party, tick)
            if packet is not None:
                out.append(packet)
        return out

    def release(self) -> None:
        """Hand the held parties' sending back to their streams (the monitor ends)."""
        for party in self._holding:
            party.mixed = False
        self._holding.clear()

    def _to_held(
        self, source: MediaStream, party: MediaStream, tick: int
    ) -> tuple[int, bytes, Address] | None:
        """While ``party`` is held, its next frame of music with the supervisor's voice."""
        taken = party in self._holding
        if not party.held or party.peer is None:
            if taken:
                self._holding.remove(party)
                party.mixed = False
            return None
        if not taken:  # from the next tick: this one's music has gone already
            self._holding.append(party)
            party.mixed = True
            return None
        payload = party.held_frame()
        said = self._voice[source.stream_id].take(self.frame)
        if said is not None:
            payload = g711.encode(party.codec, mix(g711.decode(party.codec, payload), said))
        packet = party.mixed_packet(payload, tick)
        if packet is None or party.remote is None:
            return None
        return (party.stream_id, packet, party.remote)

    def _heard_packet(self, tick: int) -> tuple[int, bytes, Address] | None:
        """Take what the supervisor said; its frame of both parties mixed, as a packet."""
        supervisor = self.supervisor
        queue = supervisor.rx_audio
        if queue:
            said = [g711.decode(codec, payload) for codec, payload in queue]
            queue.clear()
            for voice in self._voice.values():
                for samples in said:
                    voice.push(samples)
        frame = self.frame
        rows = [f for f in (feed.take(frame) for feed in self._heard.values()) if f is not None]
        mixed = mix_rows(np.stack(rows)) if rows else np.zeros(frame, dtype=np.int16)
        packet = supervisor.mixed_packet(g711.encode(supervisor.codec, mixed), tick)
        if packet is None or supervisor.remote is None:
            return None
        return (supervisor.stream_id, packet, supervisor.remote)


class Monitors:
    """Every monitor of the engine, served on the media clock."""

    def __init__(self, ptime: int = 20) -> None:
        self.frame = 8 * ptime  # samples a frame at 8 kHz
        self._monitors: dict[int, Monitor] = {}  # by the supervisor's stream id

    def __bool__(self) -> bool:
        return bool(self._monitors)

    def start(
        self, mode: Mode, *, agent: MediaStream, other: MediaStream, supervisor: MediaStream
    ) -> Monitor:
        """Monitor the bridged ``agent``/``other`` pair from ``supervisor`` from the next
        packet and tick; a stream already in a monitor leaves it first."""
        for stream in (agent, other, supervisor):
            if isinstance(stream.monitor, Monitor):
                self.stop(stream.monitor)
        monitor = Monitor(mode, agent=agent, other=other, supervisor=supervisor, frame=self.frame)
        agent.monitor = other.monitor = supervisor.monitor = monitor
        supervisor.mixed = supervisor.capture_rx = True
        supervisor.rx_audio.clear()
        self._monitors[supervisor.stream_id] = monitor
        return monitor

    def stop(self, monitor: Monitor) -> None:
        """End ``monitor``: the bridge relays as before, the supervisor's stream sends its own
        audio again (a stream closed meanwhile is left as it is)."""
        if self._monitors.pop(monitor.supervisor.stream_id, None) is None:
            return
        for stream in (monitor.agent, monitor.other, monitor.supervisor):
            if stream.monitor is monitor:
                stream.monitor = None
        monitor.release()
        supervisor = monitor.supervisor
        supervisor.mixed = False
        supervisor.capture_rx = supervisor.inband
        supervisor.rx_audio.clear()

    def tick(self, tick: int) -> list[tuple[int, bytes, Address]]:
        """One packet for every monitoring supervisor."""
        out = []
        for monitor in self._monitors.values():
            out += monitor.tick(tick)
        return out
