"""Caller identity: number forms, countries, P-Asserted-Identity, withheld callers, junk."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.policy.caller import CallerId, caller_identity


def caller(
    user: str | None,
    display: str | None = None,
    asserted: str | None = None,
    privacy: str | None = None,
) -> CallerId:
    return caller_identity(user, display, asserted, privacy)


# -- numbers and countries ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "user",
    [
        "+38761123456",
        "0038761123456",
        "38761123456",
        "061123456",
        "061-123-456",
        "%2B38761123456",
        "+38761123456;isub=12",
        "061123456;phone-context=+387",
    ],
)
def test_every_form_of_a_number_gives_the_same_e164(user: str) -> None:
    """International, 00, bare, national, escaped and parameterised forms give one number."""
    identity = caller(user)
    assert identity == CallerId(raw=user, e164="+38761123456", country="BA", withheld=False)
    assert identity.key == "+38761123456"


@pytest.mark.parametrize(
    ("user", "country"),
    [
        ("+385911234567", "HR"),
        ("+49301234567", "DE"),
        ("0049891234567", "DE"),
        ("+38761123456", "BA"),
        ("+4312345678", "AT"),
        ("+41441234567", "CH"),
        ("+381111234567", "RS"),
        ("+38220123456", "ME"),
        ("061123456", "BA"),
        ("066123456", "BA"),
        ("033123456", "BA"),
    ],
)
def test_country_is_the_region_of_the_callers_number(user: str, country: str) -> None:
    """libphonenumber's region of the E.164 number; a national 06x number is Bosnian."""
    assert caller(user).country == country


def test_national_numbers_take_the_default_regions_country_code() -> None:
    """With default_region HR, a national 091 number is a Croatian one."""
    identity = caller_identity("0911234567", None, None, None, default_region="HR")
    assert (identity.e164, identity.country) == ("+385911234567", "HR")


def test_an_unknown_default_region_is_refused() -> None:
    """A default region libphonenumber does not know is a configuration error."""
    with pytest.raises(ValueError, match="unknown region 'XX'"):
        caller_identity("061123456", None, None, None, default_region="XX")


def test_a_non_geographic_number_has_no_country() -> None:
    """An Inmarsat (+870) caller has an E.164 number but no region."""
    identity = caller("00870773112345")
    assert (identity.e164, identity.country) == ("+870773112345", None)


def test_a_short_code_stays_a_short_code() -> None:
    """A four-digit caller has no E.164 number and no country, but lists can match its key."""
    identity = caller("1282")
    assert (identity.raw, identity.e164, identity.country, identity.key) == (
        "1282",
        None,
        None,
        "1282",
    )


@pytest.mark.parametrize(
    "user", ["alice", "06x12", "+999123456", "+3876", "0٦1123456", "*21#", "+1234567890123456"]
)
def test_what_is_no_number_gives_no_number_and_no_country(user: str) -> None:
    """Names, letters, unknown country codes, too short or long and non-ASCII digits: None."""
    identity = caller(user)
    assert (identity.raw, identity.e164, identity.country, identity.key) == (user, None, None, None)


# -- P-Asserted-Identity ------------------------------------------------------------------------


def test_p_asserted_identity_is_preferred_but_raw_stays_the_from_user() -> None:
    """A trunk's asserted number gives e164 and country; raw is what From said."""
    identity = caller("061111111", asserted="+385911234567")
    assert identity == CallerId(raw="061111111", e164="+385911234567", country="HR", withheld=False)
    assert identity.key == "+385911234567"


def test_an_asserted_identity_that_is_no_number_falls_back_to_from() -> None:
    """A P-Asserted-Identity user that is not a number leaves From's number in force."""
    assert caller("061123456", asserted="trunk-gw").e164 == "+38761123456"


def test_a_withheld_caller_keeps_the_asserted_number() -> None:
    """With Privacy: id the caller is withheld, yet the network's number is known."""
    identity = caller("anonymous", "Anonymous", asserted="+38761123456", privacy="id")
    assert identity == CallerId(raw="anonymous", e164="+38761123456", country="BA", withheld=True)


# -- withheld callers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "display", "privacy"),
    [
        ("anonymous", None, None),
        ("Anonymous", None, None),
        ("UNKNOWN", None, None),
        ("restricted", None, None),
        ("unavailable", None, None),
        ("Private", None, None),
        ("", None, None),
        (None, None, None),
        ("061123456", "Anonymous", None),
        ("061123456", '"anonymous"', None),
        ("061123456", None, "id"),
        ("061123456", None, "user"),
        ("061123456", None, "header"),
        ("061123456", None, "id;critical"),
        ("061123456", None, "session; User"),
        ("061123456", None, "none, id"),
    ],
)
def test_anonymous_forms_are_withheld(
    user: str | None, display: str | None, privacy: str | None
) -> None:
    """Anonymous user or display names, an empty user and id/user/header privacy withhold."""
    assert caller(user, display, privacy=privacy).withheld


@pytest.mark.parametrize("privacy", [None, "", "none", "session", "critical"])
def test_a_presented_number_without_privacy_is_not_withheld(privacy: str | None) -> None:
    """Privacy none or session (media only) leaves a numbered caller presented."""
    assert not caller("061123456", "Alice", privacy=privacy).withheld


def test_an_anonymous_caller_has_no_number_and_raw_is_empty_without_a_user() -> None:
    """An anonymous From without an asserted identity gives no number; no user gives raw ""."""
    assert caller("anonymous").e164 is None
    assert caller(None).raw == ""


# -- junk ---------------------------------------------------------------------------------------

_maybe_text = st.none() | st.text()


@given(_maybe_text, _maybe_text, _maybe_text, _maybe_text)
def test_junk_never_raises(
    user: str | None, display: str | None, asserted: str | None, privacy: str | None
) -> None:
    """Any header text gives a CallerId whose number is E.164 digits or None."""
    identity = caller_identity(user, display, asserted, privacy)
    assert identity.raw == (user or "")
    if identity.e164 is None:
        assert identity.country is None
    else:
        assert identity.e164[0] == "+" and identity.e164[1:].isascii()
        assert identity.e164[1:].isdigit()
    assert identity.country is None or (len(identity.country) == 2 and identity.country.isupper())
    assert identity.key is None or identity.key.isascii()
