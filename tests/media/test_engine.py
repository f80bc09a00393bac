"""Tests for the media engine (callserver.media.engine) on real UDP sockets on 127.0.0.1.

Each test starts an engine on a random RTP port range below the kernel's ephemeral range
(the engine skips ports already taken, as tests run in parallel) and talks to it from plain
test sockets. Every wait is bounded by ``asyncio.timeout``; assertions are on counts and
contents, never on timing.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from callserver.media import g711
from callserver.media.engine import MediaEngine, PortsExhausted
from callserver.media.events import DtmfReceived, PlaybackFinished, RtpTimedOut
from callserver.media.rtp import RtpPacket
from callserver.media.rtpio import RtpSockets
from callserver.media.tones import dtmf_tone, sine
from tests.media.engine_peers import (
    HOST,
    WAIT,
    Peer,
    Sink,
    can_bind,
    free_port_pair,
    port_range,
    settings_for,
    wait_until,
)


def tone(hz: float, ms: int, codec: str = "PCMU") -> bytes:
    """A sine encoded with ``codec``."""
    return g711.encode(codec, sine(hz, ms))


def peak_hz(samples: npt.NDArray[np.int16]) -> float:
    """The frequency of the strongest FFT bin at 8 kHz."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[spectrum.argmax()])


# -- streams and ports ---------------------------------------------------------------------------


async def test_open_stream_binds_an_even_port_and_the_next(engine: MediaEngine) -> None:
    """open_stream holds an even RTP port in the range and the RTCP port after it."""
    stream = engine.open_stream()
    low, high = engine.settings.rtp_port_min, engine.settings.rtp_port_max
    assert stream.port % 2 == 0
    assert low <= stream.port < stream.port + 1 <= high
    assert not can_bind(stream.port)
    assert not can_bind(stream.port + 1)
    stats = engine.statistics()
    assert (stats.streams, stats.ports_in_use) == (1, 1)


async def test_close_stream_releases_the_ports(engine: MediaEngine) -> None:
    """After close_stream both ports can be bound again and the counters drop to zero."""
    stream = engine.open_stream()
    engine.close_stream(stream)
    assert can_bind(stream.port)
    assert can_bind(stream.port + 1)
    stats = engine.statistics()
    assert (stats.streams, stats.ports_in_use) == (0, 0)
    assert engine.close_stream(stream) is None  # twice is harmless


async def test_ports_exhausted_with_a_two_port_range(
    sink: Sink, sockets: Callable[[], RtpSockets]
) -> None:
    """A two-port range serves one stream; the second raises PortsExhausted until it closes."""
    port = free_port_pair()
    media = MediaEngine(settings_for(port, port + 1), bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    try:
        stream = media.open_stream()
        assert stream.port == port
        with pytest.raises(PortsExhausted):
            media.open_stream()
        media.close_stream(stream)
        assert media.open_stream().port == port
    finally:
        await media.stop()


async def test_refused_rtcp_port_closes_the_rtp_socket(
    sink: Sink, sockets: Callable[[], RtpSockets]
) -> None:
    """When port + 1 is taken, the RTP socket already bound for the pair is closed, not leaked."""
    port = free_port_pair()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind((HOST, port + 1))
    media = MediaEngine(settings_for(port, port + 1), bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    gc.collect()  # what earlier tests left is collected before, not counted here
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(PortsExhausted):
                media.open_stream()
            gc.collect()
        leaked = [
            str(w.message)
            for w in caught
            if issubclass(w.category, ResourceWarning) and "socket" in str(w.message)
        ]
        assert leaked == []
        assert can_bind(port)
    finally:
        blocker.close()
        await media.stop()


async def test_closing_a_bridged_stream_unbridges_its_peer(engine: MediaEngine) -> None:
    """Closing one side of a bridge leaves the other unbridged, sending on its own again."""
    a, b = engine.open_stream(), engine.open_stream()
    engine.bridge(a, b)
    engine.close_stream(a)
    assert (a.peer, b.peer) == (None, None)


async def test_closing_a_monitored_stream_ends_its_monitor(engine: MediaEngine) -> None:
    """A supervisor's monitor ends with any of its streams: the others are left unmonitored,
    the supervisor's stream sends its own audio again."""
    a, b, supervisor = engine.open_stream(), engine.open_stream(), engine.open_stream()
    engine.bridge(a, b)
    engine.monitor("barge", agent=a, other=b, supervisor=supervisor)
    assert supervisor.mixed and a.monitor is b.monitor is supervisor.monitor is not None
    engine.close_stream(b)
    assert (a.monitor, supervisor.monitor, supervisor.mixed) == (None, None, False)
    assert not engine.monitors


# -- sending ------------------------------------------------------------------------------------


async def test_playback_reaches_the_peer(engine: MediaEngine, sink: Sink, peer: Peer) -> None:
    """A configured stream sends 20 ms packets to the peer carrying the played payload."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config())
    payload = bytes(range(1, 161)) * 3 + bytes(range(1, 101))  # 3.625 frames
    last = payload[480:] + b"\xff" * 60  # padded with PCMU silence
    async with asyncio.timeout(WAIT):
        await peer.receive()  # silence is flowing
        engine.play(stream, payload)
        packets = await peer.receive_until(lambda got: bool(got) and got[-1].payload == last)
        await sink.wait_for(PlaybackFinished)
    assert {(len(p.payload), p.payload_type, p.ssrc) for p in packets} == {(160, 0, stream.ssrc)}
    joined = b"".join(p.payload for p in packets)
    assert joined.endswith(payload + b"\xff" * 60)
    assert [p.sequence_number - packets[0].sequence_number for p in packets] == list(
        range(len(packets))
    )
    (finished,) = sink.of(PlaybackFinished)
    assert isinstance(finished, PlaybackFinished)
    assert (finished.stream_id, finished.interrupted) == (stream.stream_id, False)
    stats = engine.statistics()
    assert stats.packets_sent >= len(packets) + 1
    assert stats.clock.ticks >= len(packets) + 1


async def test_malformed_packets_are_counted_and_harmless(engine: MediaEngine, peer: Peer) -> None:
    """Short, wrong-version and oversized datagrams are counted as drops; RTP still flows."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config())
    target = (HOST, stream.port)
    peer.sock.sendto(b"\x80\x00\x01", target)
    peer.sock.sendto(b"\x40" + bytes(171), target)
    peer.sock.sendto(b"\x80" + bytes(1600), target)
    async with asyncio.timeout(WAIT):
        await wait_until(lambda: sum(engine.statistics().drops.values()) == 3)
        peer.send(stream, b"\xff" * 160)
        await wait_until(lambda: engine.statistics().packets_received == 1)
        packets = await peer.receive_until(lambda got: len(got) == 3)
    assert engine.statistics().drops == {"short": 1, "version": 1, "oversized": 1}
    assert {p.ssrc for p in packets} == {stream.ssrc}
    assert stream.remote == peer.address


async def test_packets_lost_counts_a_gap_in_a_peers_sequence(
    engine: MediaEngine, peer: Peer
) -> None:
    """RTP with three sequence numbers skipped counts three packets lost, open and closed."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config())
    async with asyncio.timeout(WAIT):
        for n in range(10):
            if n == 5:
                peer.seq += 3  # three packets never sent
            peer.send(stream, b"\xff" * 160)
        await wait_until(lambda: engine.statistics().packets_received == 10)
    assert engine.statistics().packets_lost == 3
    engine.close_stream(stream)
    assert engine.statistics().packets_lost == 3


async def test_bridge_relays_transcoded_audio(engine: MediaEngine) -> None:
    """Audio sent by peer A to stream A (PCMU) arrives at peer B from stream B as PCMA."""
    peer_a, peer_b = Peer(), Peer()
    try:
        a, b = engine.open_stream(), engine.open_stream()
        engine.configure(a, peer_a.config("PCMU"))
        engine.configure(b, peer_b.config("PCMA"))
        engine.bridge(a, b)
        payload = tone(440.0, 200)
        expected = [
            g711.transcode(payload[at : at + 160], "PCMU", "PCMA") for at in range(0, 1600, 160)
        ]
        async with asyncio.timeout(WAIT):
            for at in range(0, len(payload), 160):
                peer_a.send(a, payload[at : at + 160])
            silence = g711.encode("PCMA", np.zeros(160, dtype=np.int16))

            def relayed(got: list[RtpPacket]) -> list[RtpPacket]:
                return [p for p in got if p.payload != silence]

            packets = relayed(await peer_b.receive_until(lambda got: len(relayed(got)) == 10))
        assert [p.payload for p in packets] == expected
        assert {(p.ssrc, p.payload_type) for p in packets} == {(b.ssrc, 8)}
        assert [(p.timestamp - packets[0].timestamp) % 2**32 for p in packets] == list(
            range(0, 1600, 160)
        )
    finally:
        peer_a.close()
        peer_b.close()


# -- receiving ----------------------------------------------------------------------------------


async def test_rtp_timeout_reaches_the_sink(
    sink: Sink, peer: Peer, sockets: Callable[[], RtpSockets]
) -> None:
    """With rtp_timeout 0.3 s and nothing received, RtpTimedOut reaches the sink once."""
    settings = settings_for(*port_range(), rtp_timeout=0.3)
    media = MediaEngine(settings, bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    try:
        stream = media.open_stream()
        media.configure(stream, peer.config())
        async with asyncio.timeout(WAIT):
            event = await sink.wait_for(RtpTimedOut)
        assert isinstance(event, RtpTimedOut)
        assert event.stream_id == stream.stream_id
        assert event.idle >= 0.3
    finally:
        await media.stop()


async def test_a_held_party_has_no_rtp_timeout_until_resumed(
    sink: Sink, peer: Peer, sockets: Callable[[], RtpSockets]
) -> None:
    """A stream whose party is held (hearing music) receives nothing for two housekeeping
    passes, well past the timeout, and is not timed out; once resumed, the timeout runs
    again and reaches the sink."""
    settings = settings_for(*port_range(), rtp_timeout=0.3)
    media = MediaEngine(settings, bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    try:
        stream = media.open_stream()
        media.configure(stream, peer.config())
        media.hold(stream, b"")
        await asyncio.sleep(2.5)  # housekeeping checks each stream once a second
        assert sink.of(RtpTimedOut) == []
        media.resume(stream)
        async with asyncio.timeout(WAIT):
            event = await sink.wait_for(RtpTimedOut)
        assert isinstance(event, RtpTimedOut) and event.stream_id == stream.stream_id
    finally:
        await media.stop()


async def test_recording_a_tone(engine: MediaEngine, peer: Peer, tmp_path: Path) -> None:
    """1.5 s of a 1 kHz tone from the peer is recorded to an 8 kHz mono 16-bit WAV."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config())
    path = tmp_path / "rec" / "tone.wav"
    engine.record(stream, path)
    async with asyncio.timeout(WAIT + 2):
        await peer.send_paced(stream, tone(1000.0, 1500))
        await wait_until(lambda: engine.statistics().packets_received == 75)
        ticks = engine.statistics().clock.ticks
        await wait_until(lambda: engine.statistics().clock.ticks >= ticks + 3)  # decode the rest
    result = engine.stop_recording(stream)
    assert result is not None and result.path == path and path.exists()
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 8000)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    assert len(samples) >= 1.5 * 8000
    assert abs(peak_hz(samples) - 1000) <= 5


async def test_inband_dtmf_reported_once(engine: MediaEngine, sink: Sink, peer: Peer) -> None:
    """Without telephone-event, a DTMF tone in the audio gives one DtmfReceived(inband)."""
    stream = engine.open_stream()
    engine.configure(stream, peer.config(te=None))
    audio = np.concatenate([dtmf_tone("7", 120), np.zeros(1600 * 2, dtype=np.int16)])
    async with asyncio.timeout(WAIT):
        await peer.send_paced(stream, g711.encode("PCMU", audio))
        await sink.wait_for(DtmfReceived)
        ticks = engine.statistics().clock.ticks
        await wait_until(lambda: engine.statistics().clock.ticks >= ticks + 10)
    (digit,) = sink.of(DtmfReceived)
    assert isinstance(digit, DtmfReceived)
    assert (digit.stream_id, digit.digit, digit.source) == (stream.stream_id, "7", "inband")
