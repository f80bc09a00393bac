"""The one Replaces header an INVITE may carry (calls.replacing.replaces_of, RFC 3891 §3)."""

from __future__ import annotations

import pytest

from callserver.calls.replacing import replaces_of
from callserver.sip.refer import Replaces


def test_one_header_names_the_dialog_and_its_early_only_flag() -> None:
    """Call-ID, to-tag and from-tag are read as written, with early-only."""
    assert replaces_of(["abc@host;to-tag=ours;from-tag=theirs;early-only"]) == Replaces(
        call_id="abc@host", to_tag="ours", from_tag="theirs", early_only=True
    )


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["a@h;to-tag=1;from-tag=2", "b@h;to-tag=3;from-tag=4"],
        ["a@h;to-tag=1"],
        [";to-tag=1;from-tag=2"],
    ],
)
def test_none_several_or_a_bad_header_is_no_replaces(values: list[str]) -> None:
    """No header, more than one, or one without a Call-ID or a tag names nothing (a 400)."""
    assert replaces_of(values) is None
