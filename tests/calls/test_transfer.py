"""What a transfer's Refer-To names as the number to call (calls.transfer.target_number)."""

from __future__ import annotations

import pytest

from callserver.calls.transfer import target_number
from callserver.sip.refer import Refer
from callserver.sip.uri import parse_uri


def _refer(uri: str) -> Refer:
    return Refer(target=parse_uri(uri), replaces=None, referred_by=None)


@pytest.mark.parametrize(
    ("uri", "number"),
    [
        ("sip:202@pbx.example.net", "202"),
        ("sip:+38761200300@127.0.0.1:5060;user=phone", "+38761200300"),
        ("sips:061200300@example.net", "061200300"),
        ("sip:%2B4930123456@example.net", "+4930123456"),
        ("tel:+387-61-200-300", "+38761200300"),
        ("sip:*97@example.net", "*97"),
    ],
)
def test_a_sip_user_part_or_a_tel_number_is_the_target(uri: str, number: str) -> None:
    """The user part of a SIP URI (unescaped) or a tel: number, separators dropped."""
    assert target_number(_refer(uri)) == number


@pytest.mark.parametrize(
    "uri", ["sip:alice@example.net", "sip:example.net", "mailto:a@example.net"]
)
def test_a_name_or_no_user_is_not_a_number(uri: str) -> None:
    """A name, a URI without a user part, or another scheme names no number to call."""
    assert target_number(_refer(uri)) is None
