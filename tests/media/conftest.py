"""Fixtures of the media engine tests: a sink, each socket I/O implementation, an engine, a peer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from callserver.media import rtpio
from callserver.media.engine import MediaEngine
from callserver.media.rtpio import PythonRtpSockets, RtpSockets
from tests.media.engine_peers import HOST, Peer, Sink, port_range, settings_for


@pytest.fixture
def sink() -> Sink:
    """The engine's event sink."""
    return Sink()


@pytest.fixture(params=["compiled", "python"])
def sockets(request: pytest.FixtureRequest) -> Callable[[], RtpSockets]:
    """Each implementation of the engine's batched socket I/O (callserver.media.rtpio)."""
    if request.param == "python":
        return PythonRtpSockets
    if not rtpio.compiled():
        pytest.fail("the compiled extension callserver.media._rtpio is missing: run 'make install'")
    return rtpio.open_rtp_sockets


@pytest.fixture
async def engine(sink: Sink, sockets: Callable[[], RtpSockets]) -> AsyncIterator[MediaEngine]:
    """A started engine on a random port range; stopped afterwards."""
    media = MediaEngine(settings_for(*port_range()), bind_host=HOST, sink=sink, sockets=sockets)
    await media.start()
    yield media
    await media.stop()


@pytest.fixture
def peer() -> Iterator[Peer]:
    """A test peer socket."""
    far = Peer()
    yield far
    far.close()
