"""Only an agent opens a softphone: a subscriber no queue lists and the centre does not know
as an agent is refused (4403), for the operator's token and a customer's alike, since the
softphone registers as its phone and would take its calls."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from callserver.admin.softphone_api import SoftphoneApi
from callserver.config.admin import SoftphoneSettings
from callserver.config.centrex import Centrex, Group, Subscriber
from callserver.sip.events import Peer
from tests.admin.serving import serving
from tests.admin.tokens import ACME, OPERATOR, TOKENS

AGENT, BOSS = "+38733100201", "+38733100209"


def _subscriber(number: str) -> Subscriber:
    return Subscriber(
        number=number,
        group="g",
        extension=number[-3:],
        name=None,
        username=number[-3:],
        realm="r",
        ha1=MappingProxyType({}),
        barring=(),
        clir=False,
        max_contacts=None,
    )


def _api() -> SoftphoneApi:
    group = Group(id="g", customer="acme", blocks=(), channels=None, barring=(), realm="r")
    subscribers = [_subscriber(n) for n in (AGENT, BOSS)]
    centrex = Centrex(
        groups=MappingProxyType({"g": group}),
        by_number=MappingProxyType({s.number: s for s in subscribers}),
        by_extension=MappingProxyType({("g", s.extension): s for s in subscribers}),
    )
    return SoftphoneApi(
        tokens=lambda: TOKENS,
        settings=SoftphoneSettings,
        centrex=lambda: centrex,
        desk=None,  # type: ignore[arg-type]
        states=lambda number: ("logged_out", None),
        server=lambda: Peer("udp", "127.0.0.1", 9),
        agents=lambda number: number == AGENT,
    )


async def _hello(token: str, named: str) -> tuple[dict[str, object], int | None]:
    """The first answer to a hello as agent ``named``, and the socket's close code (None
    while it is open)."""
    async with serving(_api()) as client:
        ws = await client.session.ws_connect(client.url + "/api/softphone")
        try:
            await ws.send_json({"type": "hello", "token": token, "agent": named})
            message = await ws.receive_json()
            if message["type"] == "error":
                await ws.receive()
            return message, ws.close_code
        finally:
            await ws.close()


@pytest.mark.parametrize(("token", "named"), [(OPERATOR, BOSS), (ACME, BOSS), (ACME, "209")])
async def test_a_subscriber_that_is_no_agent_is_refused(token: str, named: str) -> None:
    message, closed = await _hello(token, named)
    assert (message["type"], closed) == ("error", 4403)
    assert str(message["error"]).startswith(f"{BOSS} is a subscriber but no agent"), message


async def test_an_agent_is_admitted() -> None:
    message, closed = await _hello(ACME, "201")
    assert message["type"] == "ready" and closed is None, message
