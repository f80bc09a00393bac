"""A minimal asyncio driver around SipEndpoint for placing calls from tests (our UAC side)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from callserver.sip.dialog import DialogId
from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import (
    CloseConnection,
    DialogConfirmed,
    DialogTerminated,
    Peer,
    ResponseReceived,
    Transmit,
)
from callserver.sip.headers import parse_address
from callserver.sip.uri import parse_uri
from callserver.transport.udp import UdpTransport

HOST = "127.0.0.1"
OFFER = (
    b"v=0\r\no=callserver 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


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

    async def call_and_hang_up(
        self,
        target: str,
        port: int,
        *,
        caller: str = "callserver",
        credentials: tuple[str, str] | None = None,
    ) -> None:
        """INVITE ``target`` (answering a 401/407 with ``credentials``), expect 200 and the
        dialog, then BYE it and expect its 200."""
        endpoint = self.endpoint
        assert endpoint is not None
        now = asyncio.get_running_loop().time
        handle = endpoint.uac.invite(
            parse_uri(target),
            from_addr=parse_address(f"<sip:{caller}@{HOST}>"),
            to_addr=parse_address(f"<{target}>"),
            peer=Peer("udp", HOST, port),
            now=now(),
            body=OFFER,
            credentials=credentials,
        )
        self.pump()
        final = await self.wait_for(
            lambda e: (
                isinstance(e, ResponseReceived) and e.key == handle and e.response.status >= 200
            )
        )
        assert isinstance(final, ResponseReceived) and final.response.status == 200, final
        confirmed = await self.wait_for(lambda e: isinstance(e, DialogConfirmed))
        assert isinstance(confirmed, DialogConfirmed) and isinstance(confirmed.dialog_id, DialogId)
        endpoint.bye(confirmed.dialog_id, now())
        self.pump()
        await self.wait_for(lambda e: isinstance(e, DialogTerminated))
        bye_ok = await self.wait_for(
            lambda e: isinstance(e, ResponseReceived) and e.response.cseq().method == "BYE"
        )
        assert isinstance(bye_ok, ResponseReceived) and bye_ok.response.status == 200

    def close(self) -> None:
        """Close the socket and the timer."""
        if self._timer is not None:
            self._timer.cancel()
        if self.udp is not None:
            self.udp.close()


def _final(event: ResponseReceived) -> bool:
    return event.response.status >= 200
