"""A minimal asyncio driver around SipEndpoint for placing calls from tests (our UAC side)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import CloseConnection, Peer, Transmit
from callserver.transport.udp import UdpTransport


@dataclass
class UacDriver:
    """Feeds datagrams to the endpoint, fires its timers, and collects its events."""

    endpoint: SipEndpoint | None = None
    udp: UdpTransport | None = None
    events: list[object] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _timer: asyncio.TimerHandle | None = None

    @classmethod
    async def open(cls, host: str = "127.0.0.1") -> UacDriver:
        """Bind an ephemeral UDP port and build the endpoint on it."""
        driver = cls()
        driver.udp = await UdpTransport.open(host, 0, driver)
        port = driver.udp.local_address[1]
        driver.endpoint = SipEndpoint(EndpointConfig(host=host, port=port))
        return driver

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        """Transport callback."""
        assert self.endpoint is not None
        self.endpoint.receive_datagram(data, peer, asyncio.get_running_loop().time())
        self.pump()

    def pump(self) -> None:
        """Send queued output, collect events, re-arm the timer."""
        assert self.endpoint is not None and self.udp is not None
        for action in self.endpoint.datagrams_to_send():
            if isinstance(action, Transmit):
                self.udp.send(action.data, action.peer)
            else:
                assert isinstance(action, CloseConnection)
        while (event := self.endpoint.next_event()) is not None:
            self.events.append(event)
            self.changed.set()
        loop = asyncio.get_running_loop()
        if self._timer is not None:
            self._timer.cancel()
        deadline = self.endpoint.get_timer()
        if deadline is not None:
            self._timer = loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        assert self.endpoint is not None
        self.endpoint.handle_timer(asyncio.get_running_loop().time())
        self.pump()

    async def wait_for(self, predicate: Callable[[object], bool]) -> object:
        """Wait (at most 10 s) until an event satisfying ``predicate`` arrived; return it."""
        async with asyncio.timeout(10.0):
            while True:
                for event in self.events:
                    if predicate(event):
                        self.events.remove(event)
                        return event
                self.changed.clear()
                await self.changed.wait()

    def close(self) -> None:
        """Close the socket and the timer."""
        if self._timer is not None:
            self._timer.cancel()
        if self.udp is not None:
            self.udp.close()
