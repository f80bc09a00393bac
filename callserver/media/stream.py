"""One RTP stream: the sans-IO state of a call leg's audio (RFC 3550, RFC 4733, RFC 4961).

Theory of operation
-------------------
The engine owns the socket and the clock; a ``MediaStream`` owns everything else. On each
tick of the shared clock the engine asks ``next_packet(tick, now)`` for the packet to send:
the next slice of the pre-encoded playback (or silence), or a telephone-event packet while a
digit is being sent. The RTP timestamp is derived from the tick number, so a stalled tick
shows up as a timestamp gap at the receiver instead of compressed time.

Every datagram from the stream's socket goes to ``receive(data, addr, now)``. It never
raises: short, oversized, wrong-version, wrong-source, wrong-SSRC and unknown-payload packets
are dropped and counted in ``drops``. Accepted audio refreshes ``last_rx`` (the inactivity
timer), is queued in sequence order for in-band detection or recording when ``capture_rx``
is set, and is relayed to the bridged ``peer`` (transcoded when the codecs differ).
Telephone events are turned into one ``DtmfReceived`` per key press and carried to the peer
in the form it negotiated: relayed RFC 4733 packets, or a generated in-band tone.

Which source address and SSRC are accepted (symmetric RTP, RFC 4961; SSRC changes, RFC 3550
§8.2) is ``latch.SourceLatch``'s decision; we send to the latched address.
"""

from __future__ import annotations

import struct
from collections import deque

from callserver.media import g711
from callserver.media.dtmf import TelephoneEventReceiver, TelephoneEventSender
from callserver.media.events import (
    DtmfReceived,
    DtmfSource,
    MediaEvent,
    PlaybackFinished,
    RtpTimedOut,
)
from callserver.media.jitter import ReorderBuffer
from callserver.media.latch import Address, SourceLatch
from callserver.media.negotiated import StreamConfig
from callserver.media.playback import Playback
from callserver.media.rtcp_session import RtcpSession
from callserver.media.rtp import HEADER, MAX_PACKET_BYTES, RtpPacket
from callserver.media.tones import dtmf_tone

__all__ = ["MediaStream"]

COMFORT_NOISE_PT = 13  # RFC 3389
_MASK32 = 0xFFFFFFFF
_SEQ_TS_SSRC = struct.Struct("!HII")
_pack_header = HEADER.pack
_DTMF_MUTE = 1.0  # seconds after a telephone-event during which in-band detection is muted


class MediaStream:
    """The state of one RTP stream; see the module docstring."""

    def __init__(
        self,
        stream_id: int,
        port: int,
        *,
        ssrc: int,
        sequence: int,
        timestamp: int,
        ptime: int = 20,
        symmetric: bool = True,
        reorder_depth: int = 8,
    ) -> None:
        self.stream_id = stream_id
        self.port = port
        self.ssrc = ssrc
        self.config: StreamConfig | None = None
        self.remote: Address | None = None
        self.peer: MediaStream | None = None
        self.events: list[MediaEvent] = []
        self.drops: dict[str, int] = {}
        self.capture_rx = False
        self.capture_tx = False
        self.tx_audio: deque[bytes] = deque(maxlen=50)
        self.inband = False
        self.rx_audio: deque[bytes] = deque(maxlen=50)
        self.last_rx = 0.0
        self.packets_sent = self.octets_sent = self.packets_received = 0
        self.rtcp = RtcpSession(f"callserver-{stream_id}")
        self._stats = self.rtcp.stats
        self.dtmf_rx = TelephoneEventReceiver()
        self._samples = 8 * ptime
        self._frame = self._samples  # G.711: one byte per sample
        self._seq = sequence
        self._ts0 = timestamp
        self._tick = 0
        self._sends = False
        self._on_hold = False
        self._pt = 0
        self._te_pt: int | None = None
        self._codec = "PCMU"
        self._silence = b""
        self._marker = True
        self.latch = SourceLatch(symmetric=symmetric)
        self._timed_out = False
        self._reorder = ReorderBuffer(reorder_depth)
        self._play: Playback | None = None
        self._dtmf_out: deque[TelephoneEventSender] = deque()
        self._dtmf_ts = 0
        self._tone: bytes | None = None
        self._relay_ssrc: int | None = None
        self._relay_offset = 0

    # -- negotiation ---------------------------------------------------------------------

    def configure(self, config: StreamConfig, now: float) -> None:
        """Apply a (re-)negotiated stream: codec, peer address, direction (hold/unhold).

        A new peer address resets the latch so the next packet's source is learnt again.
        """
        old = self.config
        self.config = config
        self._codec = config.codec
        self._pt = config.payload_type
        self._te_pt = config.telephone_event_pt
        self._silence = bytes([g711.SILENCE_BYTE[config.codec]]) * self._frame
        self._sends = config.sends
        self._on_hold = config.on_hold
        if old is None or (old.remote_host, old.remote_port) != (
            config.remote_host,
            config.remote_port,
        ):
            self.remote = (config.remote_host, config.remote_port)
            self.latch.expect(config.remote_host, config.remote_port)
        if old is None or old.on_hold:
            self.last_rx = now  # the inactivity timer starts (again) now
        self._timed_out = False

    @property
    def codec(self) -> str:
        """The negotiated codec name (PCMU or PCMA)."""
        return self._codec

    @property
    def telephone_event_pt(self) -> int | None:
        """The negotiated RFC 4733 payload type, None when the peer offered none."""
        return self._te_pt

    # -- sending ---------------------------------------------------------------------------

    def timestamp(self, tick: int) -> int:
        """The RTP timestamp of ``tick`` (RFC 3550 §5.1: advances with the sampling clock)."""
        return (self._ts0 + tick * self._samples) & _MASK32

    def next_packet(self, tick: int, now: float) -> bytes | None:
        """The packet to send on ``tick``, or None (not sending, or bridged and idle)."""
        self._tick = tick
        if not self._sends:
            return None
        if self._dtmf_out or self._tone is not None or self.peer is not None or self.capture_tx:
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
        if self.peer is not None:
            return None  # bridged: the peer's packets are relayed as they arrive
        marker = self._marker
        self._marker = False
        payload = self._next_frame(now)
        if self.capture_tx:
            self.tx_audio.append(payload)
        return self._packet(self._pt, marker, self.timestamp(tick), payload)

    def _next_event_packet(self, tick: int) -> bytes | None:
        sender = self._dtmf_out[0]
        step = sender.next_payload()
        if step is None:
            self._dtmf_out.popleft()
            return None
        marker, payload = step
        if marker:
            self._dtmf_ts = self.timestamp(tick)  # RFC 4733 §2.5.1.2: one timestamp per event
        assert self._te_pt is not None
        return self._packet(self._te_pt, marker, self._dtmf_ts, payload)

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

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address, now: float) -> tuple[MediaStream, bytes] | None:
        """Take one datagram; returns a packet to relay on the bridged peer's socket, if any.

        See RFC 3550 §5.1 and the module docstring for what is dropped.
        """
        size = len(data)
        if size < 12 or size > MAX_PACKET_BYTES or data[0] & 0xC0 != 0x80:
            self._drop(_malformed_reason(data))
            return None
        if 192 <= data[1] <= 223:  # RFC 5761 §4: RTCP multiplexed on the RTP port
            self.receive_rtcp(data, now)
            return None
        pt = data[1] & 0x7F
        if pt != self._pt and pt != self._te_pt and pt != COMFORT_NOISE_PT:
            self._drop("payload_type")
            return None
        latch = self.latch
        if addr != latch.address and not self._accept_address(addr, now):
            self._drop("source")
            return None
        seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
        if ssrc != latch.ssrc:
            if not self._accept_ssrc(ssrc, now):
                self._drop("ssrc")
                return None
        elif latch.candidate is not None:
            latch.keep_current()  # the switch needs consecutive packets of the new SSRC
        payload: bytes | None = None
        if data[0] & 0x3F:  # padding, extension or CSRCs: take the slow, checked path
            try:
                payload = RtpPacket.parse(data).payload
            except ValueError:
                self._drop("malformed")
                return None
        self.packets_received += 1
        self.last_rx = now
        self._stats.update(seq, ts, int(now * 8000) & _MASK32)
        if pt == self._pt:
            if not self.capture_rx and self.peer is None:
                return None  # most streams: the caller's audio only proves it is there
            return self._audio(seq, ts, ssrc, data[12:] if payload is None else payload)
        if pt == self._te_pt:
            payload = data[12:] if payload is None else payload
            return self._telephone_event(seq, ts, ssrc, payload, data[1] & 0x80 != 0, now)
        return None  # comfort noise (RFC 3389): the peer is there, silent

    @property
    def late_packets(self) -> int:
        """Packets that came too late for the reorder buffer and were dropped (recording)."""
        return self._reorder.late

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def _accept_address(self, addr: Address, now: float) -> bool:
        if not self.latch.accept_address(addr, now, self.last_rx):
            return False
        self.remote = addr  # symmetric RTP: answer where the packets come from
        return True

    def _accept_ssrc(self, ssrc: int, now: float) -> bool:
        accepted = self.latch.accept_ssrc(ssrc, now, self.last_rx)
        if accepted is None:  # a new SSRC: a new source as far as statistics go
            self.rtcp.reset()  # resets the same ReceptionStats object in place
            self.rx_audio.extend(self._reorder.flush())
            self._reorder.reset()
            return True
        return accepted

    def _audio(
        self, seq: int, ts: int, ssrc: int, payload: bytes
    ) -> tuple[MediaStream, bytes] | None:
        if self.capture_rx:
            self.rx_audio.extend(self._reorder.push(seq, payload))
        peer = self.peer
        if peer is None:
            return None
        packet = peer.relay_audio(payload, self._codec, ts, ssrc)
        return None if packet is None else (peer, packet)

    def _telephone_event(
        self, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool, now: float
    ) -> tuple[MediaStream, bytes] | None:
        try:
            digit = self.dtmf_rx.receive(ssrc, ts, payload, now)
        except ValueError:
            self._drop("malformed")
            return None
        if digit is not None:
            self.report_digit(digit, "rfc4733", now)
        peer = self.peer
        if peer is None:
            return None
        if peer.telephone_event_pt is None:
            if digit is not None:
                peer.send_digit(digit)  # the peer has no telephone-event: play the tone
            return None
        packet = peer.relay_event(payload, ts, ssrc, marker)
        return None if packet is None else (peer, packet)

    def report_digit(self, digit: str, source: DtmfSource, now: float) -> None:
        """Record a digit from any source: a barge-in playback stops, a bridged peer gets it.

        RFC 4733 events reach the peer as relayed packets (``_telephone_event``) and in-band
        tones as relayed audio; a digit detected in-band or sent by INFO is sent to a peer
        that negotiated telephone-event, and an INFO digit as a tone to one that did not.
        """
        if self._play is not None and self._play.barge_in:
            self.stop_playback(now)
        self.events.append(
            DtmfReceived(stream_id=self.stream_id, digit=digit, source=source, rtime=now)
        )
        peer = self.peer
        if (
            peer is not None
            and source != "rfc4733"
            and (source == "info" or peer.telephone_event_pt is not None)
        ):
            peer.send_digit(digit)

    def inband_active(self, now: float) -> bool:
        """Whether in-band detection runs now: enabled, and no telephone-event lately."""
        last = self.dtmf_rx.last_event_at
        return self.inband and (last is None or now - last > _DTMF_MUTE)

    # -- bridging -----------------------------------------------------------------------------

    def relay_audio(self, payload: bytes, codec: str, src_ts: int, src_ssrc: int) -> bytes | None:
        """Re-stamp a bridged peer's audio as ours, transcoded to our codec (None: not sending)."""
        if not self._sends or self._tone is not None or self._dtmf_out:
            return None
        if codec != self._codec:
            payload = g711.transcode(payload, codec, self._codec)
        marker = self._map_source(src_ts, src_ssrc)
        return self._packet(self._pt, marker, (src_ts + self._relay_offset) & _MASK32, payload)

    def relay_event(self, payload: bytes, src_ts: int, src_ssrc: int, marker: bool) -> bytes | None:
        """Re-stamp a bridged peer's telephone-event packet with our payload type."""
        if not self._sends or self._te_pt is None:
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

    # -- RTCP ---------------------------------------------------------------------------------

    def receive_rtcp(self, data: bytes, now: float) -> None:
        """Take an RTCP compound packet (RFC 3550 §6); a malformed one is dropped and counted."""
        try:
            self.rtcp.receive(data, self.latch.ssrc, now)
        except ValueError:
            self._drop("rtcp_malformed")

    def rtcp_report(self, now: float, wallclock: float) -> bytes:
        """Our RTCP compound packet: SR when we have sent RTP, else RR (RFC 3550 §6.4)."""
        sent = (self.packets_sent, self.octets_sent) if self.packets_sent else None
        return self.rtcp.report(
            ssrc=self.ssrc,
            source_ssrc=self.latch.ssrc,
            sent=sent,
            rtp_timestamp=self.timestamp(self._tick),
            now=now,
            wallclock=wallclock,
        )

    # -- timers ---------------------------------------------------------------------------------

    def expire_dtmf(self, now: float) -> None:
        """Report a telephone-event whose end packets never came (RFC 4733 §2.5.2.2)."""
        for digit in self.dtmf_rx.expire(now):
            self.report_digit(digit, "rfc4733", now)

    def check_timeout(self, now: float, timeout: float) -> None:
        """Report ``RtpTimedOut`` once when nothing arrived for ``timeout`` s (0: never).

        Suspended while the stream is on hold (any direction but sendrecv, RFC 3264 §8.4).
        """
        if timeout <= 0 or self._on_hold or self._timed_out or self.config is None:
            return
        idle = now - self.last_rx
        if idle >= timeout:
            self._timed_out = True
            self.events.append(RtpTimedOut(stream_id=self.stream_id, idle=idle, rtime=now))


def _malformed_reason(data: bytes) -> str:
    if len(data) < 12:
        return "short"
    return "oversized" if len(data) > MAX_PACKET_BYTES else "version"
