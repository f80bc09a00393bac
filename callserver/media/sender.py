"""The sending half of an RTP stream: packets on the clock's ticks, playback, DTMF out, relay.

RFC 3550 §5.1: the RTP timestamp is derived from the tick number, so a tick the clock skipped
after a stall shows as a timestamp gap at the receiver, not as compressed time; the sequence
number grows by one a packet sent. On each tick ``next_packet`` gives the next slice of the
pre-encoded playback (or silence), a telephone-event packet while a digit is sent (RFC 4733
§2.5.1: one timestamp per event, marker on its first packet), or an in-band tone for a peer
that negotiated none. While bridged, the tick sends nothing of its own: the peer's packets
are re-stamped as ours (``relay_audio``/``relay_event``) as they arrive, transcoded when the
codecs differ. While the bridged peer holds this stream's party (``hold``), nothing of the
peer's is relayed and the tick sends the hold music (or silence) instead, until ``resume``.
Sans-IO: the engine sends what this returns.
"""

from __future__ import annotations

from collections import deque
from typing import Literal

from callserver.media import g711
from callserver.media.dtmf import TelephoneEventSender
from callserver.media.events import MediaEvent, PlaybackFinished
from callserver.media.playback import Playback
from callserver.media.rtp import HEADER
from callserver.media.tones import dtmf_tone

__all__ = ["RtpSender"]

_MASK32 = 0xFFFFFFFF
_pack_header = HEADER.pack

DtmfForm = Literal["rfc4733", "inband", "info"]


class RtpSender:
    """What one stream sends; ``MediaStream`` adds the receiving half."""

    __slots__ = (
        "_codec",
        "_dtmf_out",
        "_dtmf_ts",
        "_frame",
        "_marker",
        "_play",
        "_pt",
        "_relay_offset",
        "_relay_ssrc",
        "_samples",
        "_sends",
        "_seq",
        "_silence",
        "_te_pt",
        "_tick",
        "_tone",
        "_ts0",
        "capture_tx",
        "events",
        "held",
        "mixed",
        "octets_sent",
        "packets_sent",
        "peer",
        "ssrc",
        "stream_id",
        "tx_audio",
    )

    def __init__(
        self, stream_id: int, *, ssrc: int, sequence: int, timestamp: int, ptime: int
    ) -> None:
        self.stream_id = stream_id
        self.ssrc = ssrc
        self.peer: RtpSender | None = None
        self.events: list[MediaEvent] = []
        self.capture_tx = False
        self.held = False  # the bridged peer holds our party: no relay, the hold music instead
        self.mixed = False  # in a conference room: the room's mix is sent, nothing of our own
        self.tx_audio: deque[bytes] = deque(maxlen=50)
        self.packets_sent = self.octets_sent = 0
        self._samples = 8 * ptime
        self._frame = self._samples  # G.711: one byte per sample
        self._seq = sequence
        self._ts0 = timestamp
        self._tick = 0
        self._sends = False
        self._pt = 0
        self._te_pt: int | None = None
        self._codec = "PCMU"
        self._silence = b""
        self._marker = True
        self._play: Playback | None = None
        self._dtmf_out: list[TelephoneEventSender] = []  # queued digits: a few, seldom
        self._dtmf_ts = 0
        self._tone: bytes | None = None
        self._relay_ssrc: int | None = None
        self._relay_offset = 0

    def _set_format(self, codec: str, payload_type: int, te_pt: int | None, sends: bool) -> None:
        self._codec = codec
        self._pt = payload_type
        self._te_pt = te_pt
        self._silence = bytes([g711.SILENCE_BYTE[codec]]) * self._frame
        self._sends = sends

    @property
    def codec(self) -> str:
        """The negotiated codec name (PCMU or PCMA)."""
        return self._codec

    @property
    def telephone_event_pt(self) -> int | None:
        """The negotiated RFC 4733 payload type, None when the peer offered none."""
        return self._te_pt

    @property
    def dtmf_form(self) -> DtmfForm:
        """How a digit reaches this stream's party: RFC 4733 events when it negotiated
        telephone-event, else an in-band tone; ``info`` (SIP INFO, sent by the calls layer)
        when we may not send RTP to it at all (RFC 3264 §6.1: it is recvonly or inactive)."""
        if not self._sends:
            return "info"
        return "inband" if self._te_pt is None else "rfc4733"

    # -- sending ---------------------------------------------------------------------------

    def timestamp(self, tick: int) -> int:
        """The RTP timestamp of ``tick`` (RFC 3550 §5.1: advances with the sampling clock)."""
        return (self._ts0 + tick * self._samples) & _MASK32

    def next_packet(self, tick: int, now: float) -> bytes | None:
        """The packet to send on ``tick``, or None (not sending, or bridged and idle)."""
        self._tick = tick
        if not self._sends:
            return None
        if (
            self._dtmf_out
            or self._tone is not None
            or self.peer is not None
            or self.capture_tx
            or self.mixed
        ):
            return self._next_special_packet(tick, now)
        # The common case, inline because the tick runs it for every stream 50 times a
        # second: the next slice of the playback (or silence), header, done.
        payload = self._silence
        play = self._play
        if play is not None:
            end = play.position + self._frame
            if end < len(play.payload):
                payload = play.payload[play.position : end]
                play.position = end
            else:
                payload = self._next_frame(now)
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += self._frame
        pt = self._pt
        if self._marker:  # RFC 3551 §4.1: the first packet of a talkspurt
            self._marker = False
            pt |= 0x80
        ts = (self._ts0 + tick * self._samples) & _MASK32
        return _pack_header(0x80, pt, seq, ts, self.ssrc) + payload

    def _next_special_packet(self, tick: int, now: float) -> bytes | None:
        if self._dtmf_out:
            packet = self._next_event_packet(tick)
            if packet is not None:
                return packet
        if self._tone is not None:
            payload = self._tone[: self._frame]
            self._tone = self._tone[self._frame :] or None
            payload = payload.ljust(self._frame, self._silence[:1])
            return self._packet(self._pt, False, self.timestamp(tick), payload)
        if (self.peer is not None and not self.held) or self.mixed:
            return None  # bridged: the peer's packets are relayed as they arrive; or mixed
        marker = self._marker
        self._marker = False
        payload = self._next_frame(now)
        if self.capture_tx:
            self.tx_audio.append(payload)
        return self._packet(self._pt, marker, self.timestamp(tick), payload)

    def mixed_packet(self, payload: bytes, tick: int) -> bytes | None:
        """Stamp a conference mix (``payload`` in our codec) as our packet of ``tick``; None when
        we may not send (RFC 3264 §6.1) or a digit (events or tone) takes the tick."""
        if not self._sends or self._dtmf_out or self._tone is not None:
            return None
        marker = self._marker
        self._marker = False
        return self._packet(self._pt, marker, self.timestamp(tick), payload)

    def _next_event_packet(self, tick: int) -> bytes | None:
        sender = self._dtmf_out[0]
        step = sender.next_payload()
        if step is None:
            del self._dtmf_out[0]
            return None
        marker, payload = step
        if marker:
            self._dtmf_ts = self.timestamp(tick)  # RFC 4733 §2.5.1.2: one timestamp per event
        assert self._te_pt is not None
        return self._packet(self._te_pt, marker, self._dtmf_ts, payload)

    def held_frame(self) -> bytes:
        """The next frame of the looped hold music (it never ends), or silence; for a held
        stream whose packets another sends (a supervisor's whisper, ``monitoring``)."""
        play = self._play
        if play is None or not play.loop:
            return self._silence
        return play.next_frame(self._silence)[0]

    def _next_frame(self, now: float) -> bytes:
        play = self._play
        if play is None:
            return self._silence
        frame, ended = play.next_frame(self._silence)
        if ended:
            self._finish_playback(now, interrupted=False)
        return frame

    def _packet(self, pt: int, marker: bool, ts: int, payload: bytes) -> bytes:
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return HEADER.pack(0x80, pt | 0x80 if marker else pt, seq, ts, self.ssrc) + payload

    # -- playback and DTMF out ------------------------------------------------------------------

    def play(
        self, payload: bytes, now: float, *, loop: bool = False, barge_in: bool = False
    ) -> None:
        """Start playing pre-encoded ``payload`` (in this stream's codec); ends any playback."""
        if self._play is not None:
            self._finish_playback(now, interrupted=True)
        self._play = Playback(payload, self._frame, loop=loop, barge_in=barge_in)

    def stop_playback(self, now: float) -> None:
        """Stop the current playback (reported as interrupted); silence follows."""
        if self._play is not None:
            self._finish_playback(now, interrupted=True)

    def hold(self, music: bytes, now: float) -> None:
        """The bridged peer holds our party (RFC 3264 §8.4): stop relaying, loop ``music``.

        ``music`` is pre-encoded in our codec; empty, the party hears silence.
        """
        self.held = True
        self.play(music, now, loop=True)

    def resume(self, now: float) -> None:
        """The peer took our party off hold: the music stops and relaying resumes."""
        if self.held:
            self.held = False
            self._relay_ssrc = None  # the relayed talkspurt restarts: marker, new offset
            self.stop_playback(now)

    @property
    def playing(self) -> bool:
        """Whether a playback is in progress."""
        return self._play is not None

    def _finish_playback(self, now: float, *, interrupted: bool) -> None:
        self._play = None
        self.events.append(
            PlaybackFinished(stream_id=self.stream_id, interrupted=interrupted, rtime=now)
        )

    def send_digit(self, digit: str, duration_ms: int = 100) -> None:
        """Send ``digit`` as RFC 4733 events, or as an in-band tone when none was negotiated.

        Raises:
            ValueError: ``digit`` is not a DTMF key.
        """
        if self._te_pt is not None:
            self._dtmf_out.append(TelephoneEventSender(digit, duration_ms=duration_ms))
        else:
            samples = dtmf_tone(digit, duration_ms)
            tone = g711.encode(self._codec, samples) + self._silence * 2  # 40 ms pause after
            self._tone = (self._tone or b"") + tone

    # -- bridging -----------------------------------------------------------------------------

    def relay_audio(self, payload: bytes, codec: str, src_ts: int, src_ssrc: int) -> bytes | None:
        """Re-stamp a bridged peer's audio as ours, transcoded to our codec (None: not sending,
        or our party is held)."""
        if not self._sends or self.held or self._tone is not None or self._dtmf_out:
            return None
        if codec != self._codec:
            payload = g711.transcode(payload, codec, self._codec)
        marker = self._map_source(src_ts, src_ssrc)
        return self._packet(self._pt, marker, (src_ts + self._relay_offset) & _MASK32, payload)

    def relay_event(self, payload: bytes, src_ts: int, src_ssrc: int, marker: bool) -> bytes | None:
        """Re-stamp a bridged peer's telephone-event packet with our payload type (None: not
        sending, no telephone-event, or our party is held and the tick stamps our packets)."""
        if not self._sends or self._te_pt is None or self.held:
            return None
        self._map_source(src_ts, src_ssrc)
        ts = (src_ts + self._relay_offset) & _MASK32
        return self._packet(self._te_pt, marker, ts, payload)

    def _map_source(self, src_ts: int, src_ssrc: int) -> bool:
        if src_ssrc == self._relay_ssrc:
            return False
        self._relay_ssrc = src_ssrc
        self._relay_offset = (self.timestamp(self._tick) - src_ts) & _MASK32
        return True
