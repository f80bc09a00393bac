"""Admission of a Centrex phone's INVITE: 407, its HA1, its group's pool and barring classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.calls.admission import Admission, Admitted, Challenged, Rejected, Screened
from callserver.calls.registration import account_of
from callserver.calls.reporting import CallFacts
from callserver.config.centrex import Centrex, compile_centrex, with_group_numbers
from callserver.config.centrex_file import CentrexFile
from callserver.config.tariffs import load_tariffs
from callserver.config.trunks import TrunksFile
from callserver.registrar.accounts import Account
from callserver.sip.auth import build_authorization, parse_challenge, password_ha1
from callserver.sip.message import Headers, Request
from callserver.sip.uri import parse_uri

ROOT = Path(__file__).parents[2]
URI = "sip:+4930123456@callserver"
PHONE = ("203.0.113.7", 5062)
CALLED = "+4930123456"


def centrex(channels: int | None = 2, barring: tuple[str, ...] = ("premium",)) -> Centrex:
    """One group of customer acme with a phone 201 (password pw-201, barred abroad) and 202."""

    def phone(user: str, **more: object) -> dict[str, object]:
        return {
            "username": user,
            "ha1_md5": password_ha1(user, "callserver", f"pw-{user}", "MD5"),
            "ha1_sha256": password_ha1(user, "callserver", f"pw-{user}", "SHA-256"),
            **more,
        }

    file = CentrexFile.model_validate(
        {
            "groups": {
                "office": {
                    "customer": "acme",
                    "numbers": ["+387 33 100 200-299"],
                    "channels": channels,
                    "barring": list(barring),
                    "extensions": {"digits": 3},
                    "subscribers": {
                        "+38733100201": phone("201", barring=["international"]),
                        "+38733100202": phone("202"),
                    },
                }
            }
        }
    )
    compiled, errors = compile_centrex(file)
    assert errors == []
    return compiled


def admission(groups: Centrex | None = None, **trunks: object) -> Admission:
    """Admission of the acme customer (3 channels) with ``groups``, as app.py wires it."""
    groups = groups or centrex()
    data = {"customers": {"acme": {"channels": 3}}, **trunks}
    made = Admission(with_group_numbers(TrunksFile.model_validate(data), groups), groups)

    def accounts(username: str) -> Account | None:
        subscriber = made.centrex.account(username)
        return None if subscriber is None else account_of(subscriber, 5)

    made.auth.accounts = accounts
    return made


def invite(credentials: str | None = None) -> Request:
    """A phone's INVITE to +4930123456, with a Proxy-Authorization value when given."""
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 203.0.113.7:5062;branch=z9hG4bK-ph1"),
            ("From", "<sip:201@callserver>;tag=1"),
            ("To", f"<{URI}>"),
            ("Call-ID", "phone-1@203.0.113.7"),
            ("CSeq", "1 INVITE"),
        ]
    )
    if credentials is not None:
        headers.add("Proxy-Authorization", credentials)
    return Request("INVITE", parse_uri(URI), headers)


def answer(
    challenged: Challenged,
    user: str = "201",
    password: str = "pw-201",
    *,
    nc: int = 1,
    algorithm: str = "MD5",
) -> Request:
    """The INVITE again, answering the challenge of ``algorithm`` as ``user``."""
    challenge = next(
        c for c in (parse_challenge(v) for _, v in challenged.headers) if c.algorithm == algorithm
    )
    value = build_authorization(
        challenge,
        method="INVITE",
        uri=URI,
        username=user,
        password=password,
        cnonce="c0ffee",
        nonce_count=nc,
    )
    return invite(value)


def challenge(made: Admission, now: float = 0.0) -> Challenged:
    challenged = made.admit(*PHONE, CALLED, now, invite())
    assert isinstance(challenged, Challenged)
    return challenged


def test_a_phone_is_challenged_without_any_digest_trunk() -> None:
    """Phones in centrex.yaml are enough for an INVITE from an unknown source to get a 407."""
    made = admission()
    assert not made.table.has_digest
    challenged = challenge(made)
    assert challenged.status == 407
    assert made.channels.in_use("group:office") == 0


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_the_right_password_admits_the_subscriber(algorithm: str) -> None:
    """Credentials checked against the phone's HA1 admit it as its number, group and customer."""
    made = admission()
    result = made.admit(*PHONE, CALLED, 1.0, answer(challenge(made), algorithm=algorithm))
    assert isinstance(result, Admitted)
    assert (result.trunk, result.customer) == (None, "acme")
    assert (result.subscriber, result.group) == ("+38733100201", "office")
    assert made.channels.in_use("group:office") == 1
    assert made.channels.in_use("customer:acme") == 1


def test_wrong_password_and_unknown_user_get_the_same_403_and_count() -> None:
    """A phone's wrong password and an unknown user name are both 403 auth_failed, counted."""
    made = admission()
    wrong = made.admit(*PHONE, CALLED, 1.0, answer(challenge(made), password="guess"))
    unknown = made.admit(*PHONE, CALLED, 2.0, answer(challenge(made), user="299"))
    assert wrong == unknown == Rejected(status=403, reason="auth_failed")
    assert made.auth.lockout.statistics().failures == 2
    assert made.channels.in_use("group:office") == 0


def test_the_group_pool_holds_its_phones_calls() -> None:
    """Past the group's channels a phone's call gets the channel-limit answer, all or none."""
    made = admission(centrex(channels=1))
    challenged = challenge(made)
    first = made.admit(*PHONE, CALLED, 1.0, answer(challenged))
    second = made.admit(*PHONE, CALLED, 2.0, answer(challenged, "202", "pw-202", nc=2))
    assert isinstance(first, Admitted)
    assert isinstance(second, Rejected)
    assert (second.status, second.reason, second.customer) == (503, "channel_limit", "acme")
    assert made.channels.in_use("customer:acme") == 1
    made.release(first.grant)
    assert made.channels.in_use("group:office") == 0


def test_a_leg_of_a_phones_call_holds_its_group_and_customer() -> None:
    """acquire_leg takes a channel in the phone's group and customer for each leg."""
    made = admission(centrex(channels=2))
    facts = CallFacts(call_id="c", caller="+38733100201", called=CALLED, offered_at=0.0)
    facts.customer, facts.subscriber, facts.group = "acme", "+38733100201", "office"
    first, second = made.acquire_leg(facts, CALLED), made.acquire_leg(facts, "+38761200300")
    assert first is not None and second is not None
    assert made.acquire_leg(facts, CALLED) is None, "the group's two channels are taken"
    assert made.channels.in_use("customer:acme") == 2


def test_barring_adds_the_phones_and_the_groups_classes() -> None:
    """A phone's own class (international) and its group's (premium) bar; emergency never."""
    tariffs = load_tariffs(ROOT / "config" / "tariffs.yaml")
    made = admission(emergency={"numbers": ["112", "122", "123", "124", "1985"]})
    facts = CallFacts(call_id="b", caller="+38733100201", called=CALLED, offered_at=0.0)
    facts.customer, facts.subscriber, facts.group = "acme", "+38733100201", "office"
    assert made.barred(facts, "+4930123456", tariffs) == "barred_international"
    assert made.barred(facts, "090 291 123", tariffs) == "barred_premium"
    assert made.barred(facts, "033 100 202", tariffs) is None
    assert made.barred(facts, "112", tariffs) is None
    other = CallFacts(call_id="o", caller="+38733100202", called=CALLED, offered_at=0.0)
    other.customer, other.subscriber, other.group = "acme", "+38733100202", "office"
    assert made.barred(other, "+4930123456", tariffs) is None
    assert made.barred(other, "090 291 123", tariffs) == "barred_premium"


def test_an_emergency_number_of_the_trunks_file_is_never_barred() -> None:
    """A number listed as an emergency number passes even a group barred outside itself."""
    tariffs = load_tariffs(ROOT / "config" / "tariffs.yaml")
    made = admission(centrex(barring=("outside_group",)), emergency={"numbers": ["1985"]})
    facts = CallFacts(call_id="e", caller="+38733100202", called="1985", offered_at=0.0)
    facts.customer, facts.subscriber, facts.group = "acme", "+38733100202", "office"
    assert made.barred(facts, "1985", tariffs) is None
    assert made.barred(facts, "1986", tariffs) == "barred_outside_group"


def test_reload_brings_the_new_groups_pools_and_phones() -> None:
    """A reload with a smaller pool refuses the next call; a phone taken away is refused."""
    made = admission(centrex(channels=2))
    challenged = challenge(made)
    assert isinstance(made.admit(*PHONE, CALLED, 1.0, answer(challenged)), Admitted)
    made.reload(made.table.config, centrex(channels=1))
    refused = made.admit(*PHONE, CALLED, 2.0, answer(challenged, nc=2))
    assert isinstance(refused, Rejected) and refused.reason == "channel_limit"
    right = made.screen(*PHONE, 3.0, answer(challenged, "202", "pw-202", nc=3))
    assert isinstance(right, Screened) and right.claim is not None
    made.reload(made.table.config, Centrex())
    assert made.complete(right, CALLED, 3.0) == Rejected(status=403, reason="auth_failed")


def test_a_phone_on_a_trunks_address_is_challenged_as_the_phone() -> None:
    """A trunk covers the phone's address (a softphone beside a PBX): an INVITE whose From
    names the phone still gets the 407 and is admitted as the phone, not the trunk."""
    made = admission(trunks={"pbx": {"match": [PHONE[0]], "customer": "acme"}})
    assert made.table.identify(*PHONE) == "pbx"
    challenged = challenge(made)
    admitted = made.admit(*PHONE, CALLED, 1.0, answer(challenged))
    assert isinstance(admitted, Admitted)
    assert (admitted.trunk, admitted.subscriber) == (None, "+38733100201")


def test_an_invite_from_a_trunks_address_naming_no_phone_is_the_trunks() -> None:
    """From a number that is nobody's phone: the trunk by its address, no challenge."""
    made = admission(trunks={"pbx": {"match": [PHONE[0]], "customer": "acme"}})
    request = invite()
    request.headers.set("From", "<sip:+38761999999@callserver>;tag=1")
    admitted = made.admit(*PHONE, CALLED, 0.0, request)
    assert isinstance(admitted, Admitted) and admitted.trunk == "pbx"
