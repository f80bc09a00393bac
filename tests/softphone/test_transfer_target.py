"""The softphone's transfer target: what the browser sends becomes a Refer-To only when it
is an ASCII extension or number of a sane length, escaped as a SIP URI's user part."""

from __future__ import annotations

import pytest

from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import Peer
from callserver.softphone.agent_call import AgentCall, _Call, refer_to

SERVER = Peer("udp", "127.0.0.1", 5060)


def test_a_number_or_extension_is_referred_to_on_the_server() -> None:
    assert refer_to("202", SERVER) == "<sip:202@127.0.0.1:5060>"
    assert refer_to("+38733100202", SERVER) == "<sip:+38733100202@127.0.0.1:5060>"


def test_a_hash_is_escaped_in_the_user_part() -> None:
    # RFC 3261 §25.1: "#" is not among a user part's characters; the server unescapes it
    assert refer_to("*47#", SERVER) == "<sip:*47%23@127.0.0.1:5060>"


@pytest.mark.parametrize("target", ["", "²", "٢٠٢", "20 2", "202@evil", "1" * 33])
def test_anything_else_is_no_target(target: str) -> None:
    assert refer_to(target, SERVER) is None


def test_the_call_refuses_a_target_of_non_ascii_digits() -> None:
    endpoint = SipEndpoint(EndpointConfig(host="127.0.0.1", port=5070, user_agent="test"))
    call = AgentCall(endpoint, None, SERVER, lambda event: None, lambda: 0.0, lambda: None)  # type: ignore[arg-type]
    call.current = _Call(call_id="c", key=None, codec="PCMU", remote=("127.0.0.1", 4000))  # type: ignore[arg-type]
    call.current.state, call.current.dialog_id = "talking", object()  # type: ignore[assignment]
    assert call.transfer("²") == "'²' is not an extension or a number"
