"""A browser's offer aiortc cannot parse is refused with an ``error`` message; the session
goes on (an exception would end the agent's softphone and log a trace per message)."""

from __future__ import annotations

from typing import Any

import pytest

from callserver.config.centrex_groups import Subscriber
from callserver.sip.events import Peer
from callserver.softphone.session import SoftphoneSession

AGENT = Subscriber(
    number="+38733100201",
    group="g",
    extension="201",
    name=None,
    username="201",
    realm="test",
    ha1={},
    barring=(),
    clir=False,
    max_contacts=None,
)
HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize("sdp", ["m=audio", HEAD + "m=audio 9\r\n", HEAD + "m=audio 9 RTP 0\r\n"])
async def test_an_offer_aiortc_cannot_parse_is_refused(sdp: str) -> None:
    sent: list[dict[str, Any]] = []
    session = SoftphoneSession(
        subscriber=AGENT,
        desk=None,  # type: ignore[arg-type]
        server=Peer("udp", "127.0.0.1", 5060),
        bind_host="127.0.0.1",
        address="127.0.0.1",
        send=sent.append,
    )
    try:
        await session.handle({"type": "offer", "sdp": sdp})
    finally:
        await session.close()
    assert [m["type"] for m in sent] == ["error"]
    assert sent[0]["error"].startswith("the browser's offer cannot be answered")
