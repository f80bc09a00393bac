"""The media engine: RTP sockets, the shared clock, and every stream served in one batch per tick.

The engine is the I/O half of ``media``. It owns one UDP socket per stream (RTP, used to send
and receive, so symmetric RTP works through NAT) plus the RTCP socket on port + 1, and runs the
one ``MediaClock``. The sockets are read and written in batches (``rtpio.RtpSockets``, one set
for RTP, one for RTCP): the event loop watches one descriptor per set, and each wake-up reads
what waits on every ready socket in one call, relays included. On each tick the engine asks
every stream for its next packet and sends them all in one call, then runs in-band DTMF
detection and recording for the streams that need them (``AudioCapture``), and once a second
the per-stream housekeeping: RTP inactivity, RTCP reports, DTMF expiry.

What a stream reports (``MediaEvent``) goes to the ``sink`` callback given by the calls layer,
synchronously, after the packet or tick that caused it. Nothing here raises because of what a
peer sends: bad packets are counted in ``statistics().drops``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import structlog

from callserver.media.capture import AudioCapture
from callserver.media.clock import MediaClock
from callserver.media.conferencing import ConferenceMixer
from callserver.media.engine_statistics import MediaStatistics, StreamTotals, log_statistics
from callserver.media.events import DtmfSource, MediaEvent
from callserver.media.housekeeping import Housekeeping
from callserver.media.latch import Address
from callserver.media.monitoring import Mode, Monitor, Monitors
from callserver.media.negotiated import StreamConfig
from callserver.media.ports import PortsExhausted
from callserver.media.recording import KEY_HOLD_BACK, RecordingResult
from callserver.media.recording_writer import CallRecording, RecordingMode
from callserver.media.rtpio import RtpSockets, open_rtp_sockets
from callserver.media.settings import MediaSettings, RecordingSettings
from callserver.media.stream import MediaStream
from callserver.media.stream_sockets import StreamTable

__all__ = ["MediaEngine", "MediaStatistics", "PortsExhausted"]

log = structlog.get_logger("callserver.media")
# Ready sockets served a wake-up: the loop gets back to SIP and the clock in between.
_RECEIVE_SOCKETS = 256
# Seconds the call recordings' writer gets at shutdown to publish what it was given.
_WRITER_GRACE = 10.0
_MAX_SPAN = 250  # ticks one tick may stand for (5 s at 20 ms): beyond, the clock restarted


class MediaEngine:
    """Serves every RTP stream of the process from one clock; see the module docstring."""

    def __init__(
        self,
        settings: MediaSettings,
        *,
        bind_host: str,
        sink: Callable[[MediaEvent], None],
        clock: Callable[[], float] = time.monotonic,
        sockets: Callable[[], RtpSockets] = open_rtp_sockets,
    ) -> None:
        """``sockets`` makes the engine's socket sets (the compiled ones when built)."""
        self.settings = settings
        self.bind_host = bind_host
        self._sink = sink
        self._now = clock
        self._table = table = StreamTable(settings, bind_host, sockets)
        self._entries, self._streams = table.entries, table.streams  # the table's, read here
        self._ports = table.ports
        self._clock = MediaClock(settings.ptime / 1000, self._tick, clock=clock)
        self._last_tick = 0  # the number of the tick before (the clock's numbers skip on resync)
        self._capture = AudioCapture(settings)
        self.conferences = ConferenceMixer(settings.ptime)
        self.monitors = Monitors(settings.ptime)
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rtp_io, self._rtcp_io = table.rtp_io, table.rtcp_io
        self._watching = False
        self._housekeeping = Housekeeping(settings.ptime, self._send_rtcp, table.random.random)
        self.send_errors = 0
        self._closed = StreamTotals()  # the counters of the streams closed so far
        self._next_statistics = clock() + settings.statistics_interval

    async def start(self) -> None:
        """Start the clock on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._watch()
        self._task = asyncio.create_task(self._clock.run(), name="media-clock")

    async def stop(self) -> None:
        """Stop the clock and close every stream (recordings are finished, not lost)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for entry in list(self._entries.values()):
            self.close_stream(entry.stream)
        await asyncio.to_thread(self._capture.calls.writer.close, _WRITER_GRACE)
        if self._watching:
            loop = self._loop or asyncio.get_running_loop()
            loop.remove_reader(self._rtp_io.fileno())
            loop.remove_reader(self._rtcp_io.fileno())
            self._watching = False

    def _watch(self) -> None:
        """Have the running loop call us when a datagram waits on any stream's socket."""
        if not self._watching:
            loop = self._loop or asyncio.get_running_loop()
            loop.add_reader(self._rtp_io.fileno(), self._readable)
            loop.add_reader(self._rtcp_io.fileno(), self._rtcp_readable)
            self._watching = True

    def reconfigure(self, settings: MediaSettings) -> None:
        """Take reloaded settings (timeouts, DTMF, recording); ports and ptime stay as started."""
        self.settings = settings
        self._capture.settings = settings

    # -- streams ----------------------------------------------------------------------------

    def open_stream(self) -> MediaStream:
        """Allocate an even RTP port (RTCP on + 1), bind both sockets and start reading them.

        Raises:
            PortsExhausted: no free port pair in the configured range could be bound.
        """
        stream = self._table.open()
        self._housekeeping.add(stream)
        self._watch()
        return stream

    def configure(self, stream: MediaStream, config: StreamConfig) -> None:
        """Apply the negotiated stream (answer or re-INVITE); in-band DTMF per the settings."""
        stream.configure(config, self._now())
        self._capture.set_inband(stream, self._inband(stream))
        if stream.mixed:  # in a conference room: its codec may have changed
            self.conferences.reconfigured(stream)

    def _inband(self, stream: MediaStream) -> bool:
        """Whether the stream's digits are detected in-band (never in a conference room)."""
        mode, config = self.settings.inband_dtmf, stream.config
        auto = mode == "auto" and config is not None and config.telephone_event_pt is None
        return (mode == "always" or auto) and not stream.mixed

    def is_open(self, stream: MediaStream) -> bool:
        """True from ``open_stream`` until ``close_stream``."""
        return stream.stream_id in self._entries

    def close_stream(self, stream: MediaStream) -> RecordingResult | None:
        """Stop the stream, close its sockets, release its port; returns a recording's result."""
        if not self._table.close(stream):
            return None
        self._housekeeping.discard(stream)
        result = self._capture.release(stream, self._now())  # while the peer is still bridged
        self.unbridge(stream)
        if stream.mixed:
            self.conferences.leave(stream)
        if isinstance(stream.monitor, Monitor):
            self.monitors.stop(stream.monitor)
        self._closed.add(stream)
        self._flush(stream)
        return result

    # -- what the calls layer asks for -----------------------------------------------------------

    def play(
        self, stream: MediaStream, payload: bytes, *, loop: bool = False, barge_in: bool = False
    ) -> None:
        """Play pre-encoded ``payload`` (in the stream's codec) from the next tick."""
        stream.play(payload, self._now(), loop=loop, barge_in=barge_in)
        self._flush(stream)

    def stop_playback(self, stream: MediaStream) -> None:
        """Stop the stream's playback; ``PlaybackFinished(interrupted=True)`` follows."""
        stream.stop_playback(self._now())
        self._flush(stream)

    def send_digit(self, stream: MediaStream, digit: str, duration_ms: int = 100) -> None:
        """Send a DTMF digit in the form the stream negotiated (RFC 4733, else in-band)."""
        stream.send_digit(digit, duration_ms)

    def report_digit(self, stream: MediaStream, digit: str, source: DtmfSource) -> None:
        """Report a digit that arrived outside RTP (SIP INFO) through the stream's events."""
        stream.report_digit(digit, source, self._now())
        self._flush(stream)

    def record(
        self,
        stream: MediaStream,
        path: Path,
        *,
        both: bool = False,
        limits: RecordingSettings | None = None,
        keys: bool = False,
    ) -> None:
        """Record what the stream receives (``both``: mixed with the other direction) to WAV;
        ``limits`` replace the configured recording limits for this recording; ``keys``: a
        key may end it (``stop_recording(key=True)``), its tone left out."""
        hold_back = KEY_HOLD_BACK if keys else 0.0
        self._capture.start_recording(stream, path, both=both, limits=limits, hold_back=hold_back)

    def stop_recording(self, stream: MediaStream, *, key: bool = False) -> RecordingResult | None:
        """Finish the stream's recording now; ``RecordingFinished`` is also reported. ``key``:
        the last key the stream reported ended it, its tone is dropped."""
        cut_from = stream.key_began if key else None
        result = self._capture.stop_recording(stream, self._now(), cut_from=cut_from)
        self._flush(stream)
        return result

    def record_call(self, stream: MediaStream, path: Path, mode: RecordingMode) -> CallRecording:
        """Record the call of ``stream`` (its party, and whoever is bridged to it) to ``path``
        until ``stop_call_recording`` or the stream closes; written off the loop."""
        return self._capture.record_call(stream, path, mode)

    def stop_call_recording(self, stream: MediaStream) -> CallRecording | None:
        """End ``stream``'s call recording (its ``done`` says when the file is published)."""
        return self._capture.stop_call_recording(stream)

    def bridge(self, a: MediaStream, b: MediaStream) -> None:
        """Relay media between ``a`` and ``b`` (transcoding, DTMF in each side's form)."""
        self.unbridge(a)
        self.unbridge(b)
        a.stop_playback(self._now())
        b.stop_playback(self._now())
        a.peer, b.peer = b, a

    def hold(self, stream: MediaStream, music: bytes) -> None:
        """The bridged peer holds ``stream``'s party (RFC 3264 §8.4): nothing of the peer's is
        relayed to it and ``music`` (pre-encoded in its codec; empty: silence) loops instead."""
        stream.hold(music, self._now())
        self._flush(stream)

    def resume(self, stream: MediaStream) -> None:
        """The peer took ``stream``'s party off hold: the music stops and relaying resumes."""
        stream.resume(self._now())
        self._flush(stream)

    def mix(self, stream: MediaStream, room: str | None) -> None:
        """Mix ``stream`` into the conference ``room`` (None: take it out of its room); a
        participant hears the others of its room (``conferencing``), nothing else."""
        if room is None:
            self.conferences.leave(stream)
        else:
            self.unbridge(stream)
            stream.stop_playback(self._now())
            self.conferences.join(stream, room)
        self._capture.set_inband(stream, self._inband(stream))
        self._flush(stream)

    def monitor(
        self, mode: Mode, *, agent: MediaStream, other: MediaStream, supervisor: MediaStream
    ) -> Monitor:
        """Let ``supervisor`` monitor the bridged ``agent``/``other`` pair in ``mode``
        (``monitoring``); ``monitors.stop`` ends it, and so does closing any of the streams."""
        supervisor.stop_playback(self._now())
        monitor = self.monitors.start(mode, agent=agent, other=other, supervisor=supervisor)
        self._capture.set_inband(supervisor, self._inband(supervisor))
        self._flush(supervisor)
        return monitor

    def unbridge(self, stream: MediaStream) -> None:
        """End the stream's bridge; both sides go back to sending silence or playback."""
        peer = stream.peer
        stream.peer = None
        if peer is not None:
            peer.peer = None

    def poll_clock(self) -> None:
        """Run the media tick now if it is due (from a callback of a busy loop)."""
        self._clock.poll()

    def clock_lag(self) -> float:
        """How late the clock wakes, smoothed over its last ticks (seconds)."""
        return self._clock.lag

    def loop_load(self) -> float:
        """The event loop thread's share of time on the CPU, smoothed over the last ticks."""
        return self._clock.load

    def free_ports(self) -> int:
        """RTP port pairs not in use."""
        return self._ports.capacity - self._ports.in_use

    def statistics(self) -> MediaStatistics:
        """Counters over all streams, open and closed, and the clock's timing."""
        return self._closed.statistics(
            [entry.stream for entry in self._entries.values()],
            ports_in_use=self._ports.in_use,
            send_errors=self.send_errors,
            clock=self._clock.statistics(),
        )

    # -- I/O ---------------------------------------------------------------------------------------

    def _readable(self) -> None:
        datagrams, errors = self._rtp_io.receive(_RECEIVE_SOCKETS)
        now = self._now()
        streams = self._streams
        relays: list[tuple[int, bytes, Address]] = []
        for key, data, addr in datagrams:
            stream = streams.get(key)
            if stream is None:
                continue  # closed by the events of an earlier datagram
            relay = stream.receive(data, addr, now)
            if relay is not None and relay[0].remote is not None:
                relays.append((relay[0].stream_id, relay[1], relay[0].remote))
            if stream.events:
                if relays:  # out before the sink may close the stream they go from
                    self._send(relays)
                    relays = []
                self._flush(stream)
        for key, _code in errors:  # a pending socket error, e.g. ICMP port unreachable
            errored = streams.get(key)
            if errored is not None:
                errored.drops["socket_error"] = errored.drops.get("socket_error", 0) + 1
        if relays:
            self._send(relays)

    def _rtcp_readable(self) -> None:
        datagrams, _errors = self._rtcp_io.receive(_RECEIVE_SOCKETS)
        now = self._now()
        for key, data, _addr in datagrams:
            entry = self._entries.get(key)
            if entry is not None:
                entry.stream.receive_rtcp(data, now)

    def _send(self, batch: list[tuple[int, bytes, Address]]) -> None:
        self.send_errors += len(self._rtp_io.send(batch))

    def _tick(self, n: int, now: float) -> None:
        batch: list[tuple[int, bytes, Address]] = []
        send = batch.append
        reported: list[MediaStream] = []
        for key, stream in self._streams.items():
            packet = stream.next_packet(n, now)
            if packet is not None:
                send((key, packet, stream.remote))  # type: ignore[arg-type]
            if stream.events:  # a playback ended
                reported.append(stream)
        batch += self.conferences.tick(n)
        if self.monitors:
            batch += self.monitors.tick(n)
        if batch:
            self._send(batch)
        span, self._last_tick = n - self._last_tick, n
        reported += self._capture.tick(now, span if 0 < span <= _MAX_SPAN else 1)
        reported += self._periodic(n, now)
        # The sink may open or close streams: only now that no loop runs over them.
        for stream in reported:
            self._flush(stream)

    def _periodic(self, n: int, now: float) -> list[MediaStream]:
        """Statistics when due; timeouts, DTMF expiry and RTCP for this tick's bucket."""
        interval = self.settings.statistics_interval
        if interval and now >= self._next_statistics:
            self._next_statistics = now + interval
            log_statistics(self.statistics())
        return self._housekeeping.run(n, now, self.settings.rtp_timeout)

    def _send_rtcp(self, stream: MediaStream, now: float) -> None:
        config, remote = stream.config, stream.remote
        if config is None or remote is None or not config.sends:
            return
        packet = stream.rtcp_report(now, time.time())
        sockets, port = (
            (self._rtp_io, remote[1]) if config.rtcp_mux else (self._rtcp_io, remote[1] + 1)
        )
        self.send_errors += len(sockets.send([(stream.stream_id, packet, (remote[0], port))]))

    def _flush(self, stream: MediaStream) -> None:
        events, stream.events = stream.events, []
        for event in events:
            try:
                self._sink(event)
            except Exception:
                log.exception("media.sink_failed", stream_id=stream.stream_id)
