"""The conference rooms' owner: rooms come with their first call and go with their last, a
full room refuses, every change is logged, streams are mixed in and out of the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from callserver.calls.conference import Conferences, RoomStatistics
from callserver.media.engine import MediaEngine
from callserver.media.rtpio import PythonRtpSockets
from tests.media.engine_peers import HOST, Sink, port_range, settings_for


@pytest.fixture
async def media() -> AsyncIterator[MediaEngine]:
    """A media engine on a random port range (its clock not started)."""
    engine = MediaEngine(
        settings_for(*port_range()), bind_host=HOST, sink=Sink(), sockets=PythonRtpSockets
    )
    yield engine
    await engine.stop()


async def test_the_first_call_creates_a_room_and_the_last_removes_it(media: MediaEngine) -> None:
    """Two calls join and leave; the log names the room, the Call-ID and the count each time."""
    rooms = Conferences(media)
    a, b = media.open_stream(), media.open_stream()
    with capture_logs() as logs:
        assert rooms.join("100", call_id="a", stream=a, limit=3, tones=True)
        assert rooms.join("100", call_id="b", stream=b, limit=3, tones=True)
        assert rooms.statistics() == RoomStatistics(rooms=1, participants=2)
        assert a.mixed and b.mixed and media.conferences.participants("100") == 2
        rooms.leave("100", "a", tones=True)
        rooms.leave("100", "b", tones=True)
    assert not a.mixed and rooms.participants("100") == 0
    events = [(e["event"], e.get("call_id"), e.get("participants")) for e in logs]
    assert events == [
        ("conference.created", "a", None),
        ("conference.joined", "a", 1),
        ("conference.joined", "b", 2),
        ("conference.left", "a", 1),
        ("conference.left", "b", 0),
        ("conference.removed", None, None),
    ]


async def test_a_full_room_refuses_and_stays_as_it_was(media: MediaEngine) -> None:
    """A room for two refuses the third call, which is not mixed in; the two stay."""
    rooms = Conferences(media)
    streams = [media.open_stream() for _ in range(3)]
    for n, stream in enumerate(streams[:2]):
        assert rooms.join("r", call_id=str(n), stream=stream, limit=2, tones=False)
    with capture_logs() as logs:
        assert not rooms.join("r", call_id="2", stream=streams[2], limit=2, tones=False)
    assert not streams[2].mixed and rooms.participants("r") == 2
    assert [(e["event"], e["participants"]) for e in logs] == [("conference.full", 2)]


async def test_a_call_whose_stream_closed_still_leaves_its_room(media: MediaEngine) -> None:
    """A hang-up closes the stream first (out of the mix); leaving then only updates the room."""
    rooms = Conferences(media)
    a, b = media.open_stream(), media.open_stream()
    rooms.join("r", call_id="a", stream=a, limit=5, tones=True)
    rooms.join("r", call_id="b", stream=b, limit=5, tones=True)
    media.close_stream(a)
    assert media.conferences.participants("r") == 1
    rooms.leave("r", "a", tones=True)
    rooms.leave("r", "nobody", tones=True)
    assert rooms.participants("r") == 1 and rooms.statistics().rooms == 1
