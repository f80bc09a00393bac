"""The direction of the softphone's answer to a re-INVITE's offer (RFC 3264 §6.1)."""

from __future__ import annotations

import pytest

from callserver.softphone.agent_call import answer_direction


@pytest.mark.parametrize(
    ("offered", "holding", "answer"),
    [
        ("sendrecv", False, "sendrecv"),
        ("sendrecv", True, "sendonly"),
        ("sendonly", False, "recvonly"),
        ("sendonly", True, "inactive"),
        ("recvonly", False, "sendonly"),
        ("recvonly", True, "sendonly"),
        ("inactive", False, "inactive"),
        ("inactive", True, "inactive"),
    ],
)
def test_the_answer_s_direction_follows_the_offer_and_our_hold(
    offered: str, holding: bool, answer: str
) -> None:
    """A sendonly offer (the server holds us) gets recvonly, or inactive while we hold too;
    while we hold we never answer that we receive."""
    assert answer_direction(offered, holding=holding) == answer
