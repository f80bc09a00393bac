"""One RTP stream: the sans-IO state of a call leg's audio (RFC 3550, RFC 4733, RFC 4961).

Theory of operation
-------------------
The engine owns the socket and the clock; a ``MediaStream`` owns everything else. What it
sends on each tick of the shared clock (``next_packet``: playback or silence, DTMF, relayed
packets while bridged) is its ``sender.RtpSender`` half; this module is the receiving half,
the negotiated configuration, RTCP and the timers.

Every datagram from the stream's socket goes to ``receive(data, addr, now)``. It never
raises: short, oversized, wrong-version, wrong-source, wrong-SSRC and unknown-payload packets
are dropped and counted in ``drops``. Audio may come in any codec the answer listed (RFC 3264
§6.1, §7), not only the one we send: each packet is taken in the codec of its payload type.
Accepted audio refreshes ``last_rx`` (the inactivity timer), is queued in sequence order with
its codec for in-band detection or recording when ``capture_rx`` is set, and is relayed to the
bridged ``peer`` (transcoded when the codecs differ; a supervisor's ``monitor`` sees it on its
way, ``monitoring``). A packet of a payload type we cannot take
is dropped, but from the stream's source it still proves the peer is there (``last_rx``).
Telephone events are turned into one ``DtmfReceived`` per key press and carried to the peer
in the form it negotiated: relayed RFC 4733 packets, or a generated in-band tone.

Which source address and SSRC are accepted (symmetric RTP, RFC 4961; SSRC changes, RFC 3550
§8.2) is ``latch.SourceLatch``'s decision; we send to the latched address.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Protocol

from callserver.media.dtmf import TelephoneEventReceiver
from callserver.media.events import (
    DtmfReceived,
    DtmfSource,
    RtpTimedOut,
)
from callserver.media.jitter import ReorderBuffer
from callserver.media.latch import Address, SourceLatch
from callserver.media.negotiated import StreamConfig
from callserver.media.rtcp_session import RtcpSession
from callserver.media.rtp import MAX_PACKET_BYTES, RtpPacket
from callserver.media.sender import RtpSender

__all__ = ["MediaStream", "Tap"]

COMFORT_NOISE_PT = 13  # RFC 3389
_MASK32 = 0xFFFFFFFF
_SEQ_TS_SSRC = struct.Struct("!HII")
_DTMF_MUTE = 1.0  # seconds after a telephone-event during which in-band detection is muted
# An in-band digit is reported once its tone has lasted two 20 ms windows (media.inband);
# with the window's alignment and a tick's latency its tone began at most this long before.
_INBAND_LEAD = 0.08


class Tap(Protocol):
    """What sees a bridged stream's audio on its way to the peer (``monitoring.Monitor``)."""

    def passing(self, source: MediaStream, codec: str, payload: bytes) -> bytes:
        """``source``'s audio in ``codec`` as it is relayed; the payload to relay instead."""


class MediaStream(RtpSender):
    """The state of one RTP stream; see the module docstring."""

    __slots__ = (
        "_on_hold",
        "_other_codecs",
        "_reorder",
        "_stats",
        "_timed_out",
        "capture_rx",
        "config",
        "drops",
        "dtmf_rx",
        "inband",
        "key_began",
        "last_rx",
        "latch",
        "monitor",
        "packets_received",
        "port",
        "remote",
        "rtcp",
        "rx_audio",
    )

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
        dtmf_max_event: float = 2.0,
    ) -> None:
        super().__init__(stream_id, ssrc=ssrc, sequence=sequence, timestamp=timestamp, ptime=ptime)
        self.port = port
        self.peer: MediaStream | None = None
        self.config: StreamConfig | None = None
        self.remote: Address | None = None
        self.drops: dict[str, int] = {}
        self.capture_rx = False
        self.inband = False
        self.key_began: float | None = None  # when the last key reported was pressed
        self.monitor: Tap | None = None  # a supervisor's monitor of the bridged call
        self.rx_audio: deque[tuple[str, bytes]] = deque(maxlen=50)  # (codec, payload)
        self.last_rx = 0.0
        self.packets_received = 0
        self.rtcp = RtcpSession(f"callserver-{stream_id}")
        self._stats = self.rtcp.stats
        self.dtmf_rx = TelephoneEventReceiver(max_event=dtmf_max_event)
        self._on_hold = False
        self.latch = SourceLatch(symmetric=symmetric)
        self._timed_out = False
        self._reorder: ReorderBuffer[tuple[str, bytes]] = ReorderBuffer(reorder_depth)
        self._other_codecs: dict[int, str] = {}  # audio payload types besides the one we send

    # -- negotiation ---------------------------------------------------------------------

    def configure(self, config: StreamConfig, now: float) -> None:
        """Apply a (re-)negotiated stream: codec, peer address, direction (hold/unhold).

        A new peer address resets the latch so the next packet's source is learnt again.
        """
        old = self.config
        self.config = config
        self._set_format(config.codec, config.payload_type, config.telephone_event_pt, config.sends)
        self._other_codecs = {pt: c for pt, c in config.receive if pt != config.payload_type}
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

    # -- receiving ------------------------------------------------------------------------------

    def receive(self, data: bytes, addr: Address, now: float) -> tuple[MediaStream, bytes] | None:
        """Take one datagram; returns a packet to relay on the bridged peer's socket, if any.

        See RFC 3550 §5.1 and the module docstring for what is dropped.
        """
        # The usual packet first, on a path of its own (this runs for every datagram): version
        # 2 without padding, extension or CSRCs, in the codec we send, from the latched source
        # and SSRC with no SSRC change pending. It does what _receive would do with it.
        latch = self.latch
        if (
            12 <= len(data) <= MAX_PACKET_BYTES
            and data[0] == 0x80
            and data[1] & 0x7F == self._pt
            and data[1] < 192  # never RTCP (RFC 5761 §4)
            and addr == latch.address
        ):
            seq, ts, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
            if ssrc == latch.ssrc and latch.candidate is None:
                self.packets_received += 1
                self.last_rx = now
                self._stats.update(seq, ts, int(now * 8000) & _MASK32)
                if not self.capture_rx and self.peer is None:
                    return None  # most streams: the caller's audio only proves it is there
                return self._audio(seq, ts, ssrc, self._codec, data[12:])
        return self._receive(data, addr, now)

    def _receive(self, data: bytes, addr: Address, now: float) -> tuple[MediaStream, bytes] | None:
        size = len(data)
        if size < 12 or size > MAX_PACKET_BYTES or data[0] & 0xC0 != 0x80:
            self._drop(_malformed_reason(data))
            return None
        if 192 <= data[1] <= 223:  # RFC 5761 §4: RTCP multiplexed on the RTP port
            self.receive_rtcp(data, now)
            return None
        pt = data[1] & 0x7F
        if (
            pt != self._pt
            and pt != self._te_pt
            and pt != COMFORT_NOISE_PT
            and pt not in self._other_codecs
        ):
            self._foreign_payload(addr, now)
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
            payload = data[12:] if payload is None else payload
            return self._audio(seq, ts, ssrc, self._codec, payload)
        if pt == self._te_pt:
            payload = data[12:] if payload is None else payload
            return self._telephone_event(seq, ts, ssrc, payload, data[1] & 0x80 != 0, now)
        if pt == COMFORT_NOISE_PT or (not self.capture_rx and self.peer is None):
            return None  # comfort noise (RFC 3389): the peer is there, silent
        payload = data[12:] if payload is None else payload  # another codec of the answer
        return self._audio(seq, ts, ssrc, self._other_codecs[pt], payload)

    @property
    def late_packets(self) -> int:
        """Packets that came too late for the reorder buffer and were dropped (recording)."""
        return self._reorder.late

    def _drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def _foreign_payload(self, addr: Address, now: float) -> None:
        """A payload type outside the answer: dropped, but from the stream's source (latched,
        or the SDP address before anything latched) it is RTP of the session all the same."""
        self._drop("payload_type")
        latch = self.latch
        if addr == latch.address or (latch.address is None and addr[:2] == latch.sdp):
            self.last_rx = now

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
        self, seq: int, ts: int, ssrc: int, codec: str, payload: bytes
    ) -> tuple[MediaStream, bytes] | None:
        if self.capture_rx:
            self.rx_audio.extend(self._reorder.push(seq, (codec, payload)))
        peer = self.peer
        if peer is None:
            return None
        if self.monitor is not None:  # a supervisor listens (and may speak) as it passes
            payload = self.monitor.passing(self, codec, payload)
        packet = peer.relay_audio(payload, codec, ts, ssrc)
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
            self.report_digit(digit, "rfc4733", now, began=self.dtmf_rx.last_started)
        peer = self.peer
        if peer is None:
            return None
        form = peer.dtmf_form
        if form == "rfc4733" and not peer.held:
            packet = peer.relay_event(payload, ts, ssrc, marker)
            return None if packet is None else (peer, packet)
        if digit is not None and form != "info":
            peer.send_digit(digit)  # a tone, or events of our own beside the hold music
        return None

    def report_digit(
        self, digit: str, source: DtmfSource, now: float, *, began: float | None = None
    ) -> None:
        """Record a digit from any source: a barge-in playback stops, a bridged peer gets it.

        RFC 4733 events reach the peer as relayed packets (``_telephone_event``) and in-band
        tones as relayed audio; a digit detected in-band or sent by INFO is sent to a peer
        that negotiated telephone-event, and an INFO digit as a tone to one that did not. A
        peer we may not send RTP to (``dtmf_form`` ``info``) gets it from the calls layer,
        which sees the ``DtmfReceived``.

        ``key_began`` keeps when the key was pressed: ``began`` (a telephone-event's first
        packet), an in-band tone's detection delay before ``now``, or ``now`` for INFO (no
        tone in the audio).
        """
        if began is None:
            began = now - _INBAND_LEAD if source == "inband" else now
        self.key_began = min(began, now)
        if self._play is not None and self._play.barge_in:
            self.stop_playback(now)
        self.events.append(
            DtmfReceived(stream_id=self.stream_id, digit=digit, source=source, rtime=now)
        )
        peer = self.peer
        if peer is None or source == "rfc4733":
            return
        form = peer.dtmf_form
        if form == "rfc4733" or (form == "inband" and source == "info"):
            peer.send_digit(digit)

    def inband_active(self, now: float) -> bool:
        """Whether in-band detection runs now: enabled, and no telephone-event lately."""
        last = self.dtmf_rx.last_event_at
        return self.inband and (last is None or now - last > _DTMF_MUTE)

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
        """Report a telephone-event whose end packets never came or that has lasted too long
        (RFC 4733 §2.5.2.2, §2.5.1.3)."""
        for digit in self.dtmf_rx.expire(now):
            self.report_digit(digit, "rfc4733", now, began=self.dtmf_rx.last_started)

    def resume(self, now: float) -> None:
        """Off hold (see ``RtpSender.resume``); the inactivity timer starts again now."""
        if self.held:
            self.last_rx = now
        super().resume(now)

    def check_timeout(self, now: float, timeout: float) -> None:
        """Report ``RtpTimedOut`` once when nothing arrived for ``timeout`` s (0: never).

        Suspended while the stream is on hold (any direction but sendrecv, RFC 3264 §8.4)
        and while its party is held by the bridged peer (``held``): a held phone may stop
        sending while it hears the music. Each starts the timer again when it ends.
        """
        if timeout <= 0 or self._on_hold or self.held or self._timed_out or self.config is None:
            return
        idle = now - self.last_rx
        if idle >= timeout:
            self._timed_out = True
            self.events.append(RtpTimedOut(stream_id=self.stream_id, idle=idle, rtime=now))


def _malformed_reason(data: bytes) -> str:
    if len(data) < 12:
        return "short"
    return "oversized" if len(data) > MAX_PACKET_BYTES else "version"
