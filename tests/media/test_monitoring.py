"""A supervisor's monitor of a bridged call: who hears whom in each mode, the relay's timing kept,
with real streams fed real RTP packets."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from callserver.media import g711
from callserver.media.monitoring import Monitor, Monitors
from callserver.media.rtp import RtpPacket
from callserver.media.stream import MediaStream
from tests.media.streams import PT, config, rtp

AGENT, OTHER, SUPERVISOR = 1, 2, 3
LEVELS = {AGENT: 1000, OTHER: 2000, SUPERVISOR: 4000}


def _party(sid: int, codec: str = "PCMU") -> MediaStream:
    """Stream ``sid`` configured towards its own peer port in ``codec``."""
    stream = MediaStream(sid, 20000 + 2 * sid, ssrc=sid, sequence=10, timestamp=0)
    stream.configure(replace(config(codec, None), remote_port=40000 + sid), 0.0)
    return stream


def _call(mode: str) -> tuple[Monitors, Monitor, dict[int, MediaStream]]:
    """The agent (PCMU) bridged to the other party (PCMA), monitored in ``mode``."""
    streams = {AGENT: _party(AGENT), OTHER: _party(OTHER, "PCMA"), SUPERVISOR: _party(SUPERVISOR)}
    agent, other = streams[AGENT], streams[OTHER]
    agent.peer, other.peer = other, agent
    monitors = Monitors()
    monitor = monitors.start(mode, agent=agent, other=other, supervisor=streams[SUPERVISOR])  # type: ignore[arg-type]
    return monitors, monitor, streams


def _send(stream: MediaStream, seq: int) -> bytes | None:
    """One 20 ms packet at the stream's level from its peer: the packet relayed, if any."""
    codec = stream.codec
    payload = g711.encode(codec, np.full(160, LEVELS[stream.stream_id], np.int16))
    peer = ("192.0.2.10", 40000 + stream.stream_id)
    relayed = stream.receive(rtp(seq, seq * 160, pt=PT[codec], payload=payload), peer, 0.0)
    return None if relayed is None else relayed[1]


def _level(data: bytes) -> int:
    packet = RtpPacket.parse(data)
    codec = "PCMA" if packet.payload_type == PT["PCMA"] else "PCMU"
    return int(np.median(g711.decode(codec, packet.payload)))


def _run(mode: str, ticks: int = 4) -> dict[str, int]:
    """Everyone talks for ``ticks`` ticks: the last levels the agent, the other party and the
    supervisor received."""
    monitors, _monitor, streams = _call(mode)
    heard: dict[str, int] = {}
    for seq in range(1, ticks + 1):
        _send(streams[SUPERVISOR], seq)
        ((sid, packet, _addr),) = monitors.tick(seq)
        assert sid == SUPERVISOR
        heard["supervisor"] = _level(packet)
        to_other, to_agent = _send(streams[AGENT], seq), _send(streams[OTHER], seq)
        assert to_other is not None and to_agent is not None  # relayed at once, as before
        heard["other"], heard["agent"] = _level(to_other), _level(to_agent)
    return heard


def _near(value: int, expected: int) -> bool:
    return abs(value - expected) < 150


def test_listen_the_supervisor_hears_both_parties_and_nobody_hears_it() -> None:
    """Listen: the supervisor gets agent + other (3000); each party gets only the other."""
    heard = _run("listen")
    assert _near(heard["supervisor"], 3000), heard
    assert _near(heard["agent"], 2000) and _near(heard["other"], 1000), heard


def test_whisper_reaches_the_agent_only() -> None:
    """Whisper: the agent gets other + supervisor (6000), the other party the agent alone."""
    heard = _run("whisper")
    assert _near(heard["agent"], 6000) and _near(heard["other"], 1000), heard
    assert _near(heard["supervisor"], 3000), heard


def test_barge_each_hears_the_other_two() -> None:
    """Barge: agent gets 2000 + 4000, the other party 1000 + 4000, the supervisor 3000."""
    heard = _run("barge")
    assert _near(heard["agent"], 6000) and _near(heard["other"], 5000), heard
    assert _near(heard["supervisor"], 3000), heard


def test_a_relayed_packet_keeps_its_timestamp_and_leaves_unchanged_without_the_supervisor() -> None:
    """With nothing buffered from the supervisor the relayed packet is the plain relay (same
    payload), stamped as the relay stamps it."""
    monitors, monitor, streams = _call("barge")
    plain_agent, plain_other = _party(AGENT), _party(OTHER, "PCMA")
    plain_agent.peer, plain_other.peer = plain_other, plain_agent
    for seq in (1, 2):
        assert _send(streams[AGENT], seq) == _send(plain_agent, seq)
    monitors.stop(monitor)
    assert all(s.monitor is None for s in streams.values()) and not monitors
    assert not streams[SUPERVISOR].mixed


def test_the_supervisor_hears_silence_until_two_frames_are_buffered() -> None:
    """The supervisor's play-out starts with two frames of a party buffered (as a room's)."""
    monitors, _monitor, streams = _call("listen")
    _send(streams[AGENT], 1)
    ((_, packet, _),) = monitors.tick(1)
    assert _level(packet) == 0
    _send(streams[AGENT], 2)
    ((_, packet, _),) = monitors.tick(2)
    assert _near(_level(packet), 1000)


def test_whisper_reaches_an_agent_on_hold_over_its_music() -> None:
    """The other party holds the agent: after the tick that notices it, the monitor sends the
    agent its music with the supervisor's voice (one packet a tick, none from the agent's own
    tick); off hold the relay carries the whisper again and the stream is handed back."""
    monitors, _monitor, streams = _call("whisper")
    agent = streams[AGENT]
    agent.hold(g711.encode("PCMU", np.full(800, 500, np.int16)), 0.0)
    heard = []
    for seq in range(1, 6):
        _send(streams[SUPERVISOR], seq)
        own = agent.next_packet(seq, 0.0)  # what the engine's tick sends the agent itself
        packets = {sid: packet for sid, packet, _ in monitors.tick(seq)}
        assert (own is None) == (AGENT in packets), (seq, own, packets)
        heard.append(_level(own if own is not None else packets[AGENT]))
    assert _near(heard[0], 500) and _near(heard[-1], 4500), heard
    agent.resume(0.0)
    _send(streams[SUPERVISOR], 6)
    assert AGENT not in {sid for sid, _, _ in monitors.tick(6)} and not agent.mixed
    to_agent = _send(streams[OTHER], 7)
    assert to_agent is not None and _near(_level(to_agent), 6000)


def test_stopping_a_monitor_hands_a_held_agent_back_to_its_music() -> None:
    """A monitor that ends while the agent is held leaves the agent's tick sending its music."""
    monitors, monitor, streams = _call("barge")
    agent = streams[AGENT]
    agent.hold(g711.encode("PCMU", np.full(800, 500, np.int16)), 0.0)
    for seq in (1, 2):
        agent.next_packet(seq, 0.0)
        monitors.tick(seq)
    assert agent.mixed and agent.next_packet(3, 0.0) is None
    monitors.stop(monitor)
    packet = agent.next_packet(4, 0.0)
    assert not agent.mixed and packet is not None and _near(_level(packet), 500)
