"""A hold or resume the server refuses leaves the call as it was (RFC 3261 §14.1: after a
non-2xx final response to a re-INVITE "the session parameters MUST remain unchanged")."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import Peer, ResponseReceived
from callserver.sip.message import Response
from callserver.softphone.agent_call import AgentCall, _Call
from callserver.softphone.events import AgentEvent, CallChanged

SERVER = Peer("udp", "127.0.0.1", 5060)


@pytest.mark.parametrize(("state", "sending"), [("held", False), ("talking", True)])
def test_a_refused_re_invite_restores_the_call(state: str, sending: bool) -> None:
    told: list[AgentEvent] = []
    endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5070, user_agent="test"))
    rtp = SimpleNamespace(sending=sending)
    call = AgentCall(endpoint, rtp, SERVER, told.append, lambda: 0.0, lambda: None)  # type: ignore[arg-type]
    key = object()
    current = _Call(call_id="c", key=None, codec="PCMU", remote=("127.0.0.1", 4000))  # type: ignore[arg-type]
    current.state, current.hold_key = state, key  # type: ignore[assignment]
    call.current = current
    answer = ResponseReceived(
        response=Response(491, "Request Pending"), peer=SERVER, key=key, rtime=0.0
    )  # type: ignore[arg-type]
    call.handle(answer)
    before = "talking" if state == "held" else "held"
    assert (current.state, current.hold_key, rtp.sending) == (before, None, not sending)
    assert told == [
        CallChanged(call_id="c", state=before, detail="the server refused it: 491 Request Pending")
    ]
