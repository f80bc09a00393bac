"""Reading To, Contact and Expires of a REGISTER (RFC 3261 §10.3 steps 5-6)."""

from __future__ import annotations

import pytest

from callserver.registrar.contacts import ExpiryPolicy, RegisterRejected, read_register

from .support import AOR, register

POLICY = ExpiryPolicy(minimum=60, default=3600, maximum=7200)


def rejected(**kwargs: object) -> RegisterRejected:
    with pytest.raises(RegisterRejected) as caught:
        read_register(register(**kwargs), POLICY)  # type: ignore[arg-type]
    return caught.value


def test_contacts_get_their_expiry_q_and_flow_parameters() -> None:
    """Contact expires beats Expires, absent means the header, then the default."""
    contacts = (
        "<sip:201@192.0.2.10:5062;transport=tcp>;expires=120;q=0.5",
        '"Desk" <sip:201@192.0.2.12>;+sip.instance="<urn:uuid:1>";reg-id=1',
    )
    asked = read_register(register(contacts, extra=[("Expires", "600")]), POLICY)
    assert asked.aor == AOR and not asked.star
    first, second = asked.bindings
    assert (first.contact, first.expires, first.q) == (
        "sip:201@192.0.2.10:5062;transport=tcp",
        120,
        0.5,
    )
    assert (second.expires, second.q, second.instance, second.reg_id) == (
        600,
        None,
        '"<urn:uuid:1>"',
        1,
    )
    assert read_register(register(), POLICY).bindings[0].expires == 3600


def test_expiry_is_capped_at_the_maximum() -> None:
    """An expiry above the maximum is granted as the maximum."""
    asked = read_register(register(extra=[("Expires", "86400")]), POLICY)
    assert asked.bindings[0].expires == 7200


def test_too_brief_expiry_gets_423_with_min_expires() -> None:
    """A non-zero expiry below the minimum is 423 with Min-Expires (RFC 3261 §10.3 step 6)."""
    refused = rejected(extra=[("Expires", "30")])
    assert (refused.status, refused.headers) == (423, (("Min-Expires", "60"),))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"extra": [("Expires", "soon")]}, "Malformed Expires"),
        ({"contacts": ["<sip:201@192.0.2.10>;expires=-1"]}, "Malformed Contact expires"),
        ({"contacts": ["<sip:201@192.0.2.10"]}, "Malformed Contact"),
        ({"contacts": ["<tel:+38733100201>"]}, "not a sip: or sips: URI"),
        ({"contacts": ["<sip:201@192.0.2.10>;q=1.5"]}, "q-value"),
        ({"contacts": ["<sip:201@192.0.2.10>;reg-id=x"]}, "reg-id"),
        ({"contacts": ["*"]}, "needs Expires: 0"),
        ({"contacts": ["*", "<sip:201@192.0.2.10>"], "extra": [("Expires", "0")]}, "only Contact"),
        ({"to": "<sip:centrex.example.net>"}, "user part"),
    ],
)
def test_malformed_fields_get_400_with_the_reason(kwargs: dict[str, object], reason: str) -> None:
    """A malformed Contact, Expires or To is 400 naming what is wrong."""
    refused = rejected(**kwargs)
    assert refused.status == 400 and reason in refused.reason


def test_star_with_expires_zero_asks_to_remove_everything() -> None:
    """Contact: * with Expires: 0 is a removal of every binding (RFC 3261 §10.2.2)."""
    asked = read_register(register(["*"], extra=[("Expires", "0")]), POLICY)
    assert asked.star and asked.bindings == ()


def test_expiry_limits_must_be_ordered() -> None:
    """A policy whose minimum is above its default is refused."""
    with pytest.raises(ValueError, match="minimum <= default"):
        ExpiryPolicy(minimum=600, default=300, maximum=7200)


def test_the_same_contact_twice_is_400() -> None:
    """A REGISTER naming one contact twice is refused rather than applied twice."""
    refused = rejected(contacts=["<sip:201@192.0.2.10>", "<sip:201@192.0.2.10>;q=0.5"])
    assert (refused.status, refused.reason) == (400, "The same Contact appears more than once")
