"""Tests for calls from customers: which go out (``Outbound.route``) and how a caller is
answered when the leg it was forwarded to ends (``end_as``)."""

from __future__ import annotations

from collections.abc import Coroutine
from pathlib import Path

import pytest

from callserver.calls.admission import Admission
from callserver.calls.originating import Outbound, caller_identity, end_as, leg_from
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession, ForwardOutcome
from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.trunks import TrunksFile
from callserver.policy.caller import CallerId


class _Host:
    """Records the hang-ups a session asks for."""

    def __init__(self) -> None:
        self.hangups: list[tuple[int, int | None, str]] = []

    def hang_up_session(self, session: object, code: int, cause: int | None, reason: str) -> None:
        self.hangups.append((code, cause, reason))


def _session(called: str, *, originating: bool, host: object = None) -> CallSession:
    session = CallSession(
        host or _Host(),  # type: ignore[arg-type]
        call_id="c1",
        caller=CallerId(raw="38733100201", e164="38733100201"),
        called=called,
        language="bs",
        voicemail_dir=Path("/nonexistent"),
    )
    session.originating = originating
    return session


def _outbound() -> Outbound:
    return Outbound(lambda number: number == "+38733100250", lambda: 120.0)


def _closed(work: object) -> bool:
    """True for a coroutine (closed unawaited here); False for None."""
    if work is None:
        return False
    assert isinstance(work, Coroutine)
    work.close()
    return True


@pytest.mark.parametrize(
    ("called", "originating", "goes_out"),
    [
        ("+38761200300", True, True),  # another operator's mobile
        ("061200300", True, True),  # the same, dialled nationally
        ("112", True, True),  # a short code: the routes decide
        ("+38733100250", True, False),  # the operator's own
        ("service", True, False),  # a name, not a number
        ("+38761200300", False, False),  # from the network: never out
    ],
)
def test_only_an_originating_call_to_a_number_not_ours_goes_out(
    called: str, originating: bool, goes_out: bool
) -> None:
    """A customer's call to another operator's number goes out; own numbers, names and calls
    from the network do not."""
    work = _outbound().route(_session(called, originating=originating))
    assert _closed(work) is goes_out


@pytest.mark.parametrize(
    ("outcome", "answer"),
    [
        (ForwardOutcome(result="answered", sip_code=200), (480, None, "normal")),
        (ForwardOutcome(result="barred", sip_code=403), (403, 21, "barred")),
        (ForwardOutcome(result="busy", sip_code=486), (486, 17, "normal")),
        (ForwardOutcome(result="no_answer", sip_code=480), (480, 20, "normal")),
        (ForwardOutcome(result="no_answer", sip_code=487), (480, 19, "normal")),
        (ForwardOutcome(result="failed", sip_code=503), (503, None, "normal")),
        (ForwardOutcome(result="failed", sip_code=None), (500, None, "normal")),
    ],
)
async def test_the_caller_is_answered_as_the_forwarded_leg_ended(
    outcome: ForwardOutcome, answer: tuple[int, int | None, str]
) -> None:
    """busy 486/17, nobody registered 480/20, no answer 480/19, barred 403/21, else the leg's
    failure; after an answered leg a plain hang-up (BYE, or 480 if it never answered)."""
    host = _Host()
    await end_as(_session("+38761200300", originating=True, host=host), outcome)
    assert host.hangups == [answer]


def _admission() -> Admission:
    trunks = TrunksFile.model_validate(
        {
            "customers": {"acme": {"numbers": ["+387 33 100 250", "+387 33 100 255"]}},
            "trunks": {
                "pbx": {"match": ["192.0.2.10"], "customer": "acme", "number": "+38733100250"},
                "bare": {"match": ["192.0.2.11"], "customer": "acme"},
            },
        }
    )
    phones = {
        "+387 33 100 201": {"username": "u201", "ha1_md5": "0" * 32},
        "+387 33 100 202": {"username": "u202", "ha1_md5": "1" * 32, "clir": True},
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-249"],
        "extensions": {"digits": 3},
        "subscribers": phones,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert errors == []
    return Admission(trunks, centrex)


def _facts(*, caller: str, trunk: str | None = None, subscriber: str | None = None) -> CallFacts:
    facts = CallFacts(call_id="c1", caller=caller, called="+38761200300", offered_at=0.0)
    facts.trunk, facts.subscriber, facts.customer = trunk, subscriber, "acme"
    return facts


def test_a_phone_presents_its_own_number_asserted() -> None:
    """From and P-Asserted-Identity carry the phone's DID in E.164 (RFC 3325 §9.1)."""
    shown = caller_identity(
        _facts(caller="201", subscriber="+38733100201"), None, _admission(), "sbc.example"
    )
    assert shown is not None and shown.from_uri == "sip:+38733100201@sbc.example"
    assert shown.headers == (("P-Asserted-Identity", "<sip:+38733100201@sbc.example>"),)


def test_a_phone_with_clir_is_anonymous_with_privacy_id() -> None:
    """CLIR: an anonymous From and Privacy: id; the asserted identity still names the phone."""
    shown = caller_identity(
        _facts(caller="202", subscriber="+38733100202"), None, _admission(), "sbc.example"
    )
    assert shown is not None and shown.from_uri == "sip:anonymous@anonymous.invalid"
    assert ("Privacy", "id") in shown.headers
    assert ("P-Asserted-Identity", "<sip:+38733100202@sbc.example>") in shown.headers


def test_a_pbx_presents_an_owned_number_else_its_main_number() -> None:
    """CLI screening: 033 100 255 is acme's and goes out; a foreign number becomes the trunk's
    main number; a trunk without one presents nothing of ours (the caller as it came)."""
    admission = _admission()
    owned = caller_identity(_facts(caller="033100255", trunk="pbx"), None, admission, "h")
    foreign = caller_identity(_facts(caller="+38761999999", trunk="pbx"), None, admission, "h")
    bare = caller_identity(_facts(caller="+38761999999", trunk="bare"), None, admission, "h")
    assert owned is not None and owned.from_user == "+38733100255"
    assert foreign is not None and foreign.from_user == "+38733100250"
    assert bare is None


def test_a_call_out_with_nothing_to_assert_goes_anonymous() -> None:
    """A PBX trunk without a main number presenting a number its customer does not own: the
    network asserts nothing and withholds the unscreened number (an anonymous From)."""
    facts = _facts(caller="+38761999999", trunk="bare")
    leg = CallFacts(call_id="l1", caller=facts.caller, called="+4930123456", offered_at=0.0)
    leg.originating = True
    from_header, headers = leg_from(facts, None, _admission(), "h", leg)
    assert from_header == '"Anonymous" <sip:anonymous@anonymous.invalid>' and headers == ()


def test_a_forward_shows_the_caller_as_it_came() -> None:
    """A dialplan's forward is not a call out: the caller's number at our host, no assertion."""
    facts = _facts(caller="+38761999999", trunk="bare")
    leg = CallFacts(call_id="l1", caller=facts.caller, called="+4930123456", offered_at=0.0)
    assert leg_from(facts, None, _admission(), "h", leg) == ("<sip:+38761999999@h>", ())


def test_a_call_dialled_with_31_withholds_or_shows_the_number_for_that_call() -> None:
    """#31# before the number withholds a phone's number for that call, *31# shows the number
    of a phone whose default is CLIR (the facts' ``clir``, set from the dialled prefix)."""
    hidden = _facts(caller="201", subscriber="+38733100201")
    hidden.clir = True
    shown = caller_identity(hidden, None, _admission(), "sbc.example")
    assert shown is not None and shown.from_uri == "sip:anonymous@anonymous.invalid"
    assert ("Privacy", "id") in shown.headers
    visible = _facts(caller="202", subscriber="+38733100202")
    visible.clir = False
    shown = caller_identity(visible, None, _admission(), "sbc.example")
    assert shown is not None and shown.from_uri == "sip:+38733100202@sbc.example"
    assert not any(name == "Privacy" for name, _ in shown.headers)
