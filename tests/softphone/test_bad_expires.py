"""A registrar's 200 whose Contact ``expires`` is no number does not break the softphone's
SIP socket: the lifetime asked for is taken (and logged) and the agent is registered."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from callserver.sip.events import Peer
from callserver.softphone.session import SoftphoneSession
from tests.softphone.test_offer_refused import AGENT

_COPIED = ("via:", "from:", "to:", "call-id:", "cseq:", "contact:")


def _ok(request: bytes, expires: str) -> bytes:
    """A 200 to ``request`` (a REGISTER) giving its Contact ``expires``."""
    lines = request.decode().split("\r\n")
    copied = [line for line in lines if line.lower().startswith(_COPIED)]
    headers = [
        f"{line};expires={expires}" if line.lower().startswith("contact:") else line
        for line in copied
    ]
    return ("SIP/2.0 200 OK\r\n" + "\r\n".join(headers) + "\r\nContent-Length: 0\r\n\r\n").encode()


@pytest.mark.parametrize("expires", ["soon", "", "-5"])
async def test_a_malformed_contact_expires_takes_the_lifetime_asked(expires: str) -> None:
    registrar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    registrar.bind(("127.0.0.1", 0))
    registrar.setblocking(False)
    loop = asyncio.get_running_loop()
    sent: list[dict[str, Any]] = []
    session = SoftphoneSession(
        subscriber=AGENT,
        desk=None,  # type: ignore[arg-type]
        server=Peer("udp", *registrar.getsockname()),
        bind_host="127.0.0.1",
        address="127.0.0.1",
        send=sent.append,
    )
    await session.open()
    try:
        request, agent = await asyncio.wait_for(loop.sock_recvfrom(registrar, 4096), 2.0)
        await loop.sock_sendto(registrar, _ok(request, expires), agent)
        for _ in range(100):
            if sent:
                break
            await asyncio.sleep(0.01)
        assert sent == [
            {"type": "registration", "registered": True, "detail": "registered for 300 s"}
        ]
    finally:
        await session.close()
        registrar.close()
