"""policy/cli.py: CLI screening of a PBX's number and presentation with and without CLIR."""

from __future__ import annotations

import pytest

from callserver.policy.cli import presentation, screen_cli

OWN = {"+38733100200", "+38733100201"}


def owned(number: str) -> bool:
    return number in OWN


@pytest.mark.parametrize(
    "presented", ["+38733100201", "033 100 201", "0038733100201", "38733100201"]
)
def test_an_owned_number_is_presented_in_e164(presented: str) -> None:
    """A number of the customer's, written any way a PBX writes it, goes out as E.164."""
    assert screen_cli(presented, owned=owned, main="+38733100200") == "+38733100201"


@pytest.mark.parametrize("presented", ["+38761999888", "201", "anonymous", "", None])
def test_anything_else_becomes_the_main_number(presented: str | None) -> None:
    """Another operator's number, an extension, junk or nothing is replaced by the main number."""
    assert screen_cli(presented, owned=owned, main="+38733100200") == "+38733100200"


def test_no_main_number_presents_nothing() -> None:
    """A trunk without a main number has nothing to present for a number it does not own."""
    assert screen_cli("+38761999888", owned=owned, main=None) is None


def test_presentation_asserts_the_number() -> None:
    """Without CLIR the From is the number and P-Asserted-Identity asserts it; no Privacy."""
    shown = presentation("+38733100201", clir=False, host="192.0.2.1", display="Reception")
    assert (shown.from_uri, shown.display) == ("sip:+38733100201@192.0.2.1", "Reception")
    assert shown.headers == (("P-Asserted-Identity", "<sip:+38733100201@192.0.2.1>"),)


def test_clir_sends_an_anonymous_from_and_privacy_id() -> None:
    """With CLIR the From is anonymous, the number is still asserted, with Privacy: id."""
    shown = presentation("+38733100201", clir=True, host="sbc.example", display="Reception")
    assert shown.from_uri == "sip:anonymous@anonymous.invalid"
    assert shown.display == "Anonymous"
    assert shown.headers == (
        ("P-Asserted-Identity", "<sip:+38733100201@sbc.example>"),
        ("Privacy", "id"),
    )


@pytest.mark.parametrize("number", ["033100201", "201", "+387 33 100 201", "+3873310020x"])
def test_presentation_needs_e164(number: str) -> None:
    """A number not written as + and digits is a ValueError, never a malformed header."""
    with pytest.raises(ValueError, match=r"E\.164"):
        presentation(number, clir=False, host="192.0.2.1")
