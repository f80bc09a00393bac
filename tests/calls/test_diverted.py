"""Tests for a diverted leg's pools (``calls.diverted``): the forwarding subscriber's channels."""

from __future__ import annotations

from callserver.calls.admission import Admission
from callserver.calls.diverted import Diverted, channelled_by
from callserver.calls.reporting import CallFacts
from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.trunks import TrunksFile
from callserver.policy.diversion import Chain

A, OUTSIDE = "+38733100201", "+38761200300"


def _admission() -> tuple[Admission, Diverted]:
    """A trunk ``carrier`` with 5 channels and acme's group with 1; 201 forwarding out."""
    phone = {A: {"username": A[1:], "ha1_md5": "0" * 32}}
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": "callserver",
        "channels": 1,
        "extensions": {"digits": 3},
        "subscribers": phone,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"office": group}}))
    assert errors == []
    trunks = TrunksFile.model_validate(
        {
            "trunks": {"carrier": {"match": ["192.0.2.1"], "channels": 5}},
            "customers": {"acme": {}},
        }
    )
    admission = Admission(trunks, centrex)
    by = centrex.subscriber(A)
    assert by is not None
    chain = Chain.of(called=A, host="h", diversion=(), history=()).diverted(
        by=A, to=OUTSIDE, reason="unconditional", host="h"
    )
    return admission, Diverted(by=by, customer="acme", reason="unconditional", chain=chain)


def _caller() -> CallFacts:
    """The facts of a call from the trunk ``carrier`` to 201."""
    facts = CallFacts(call_id="a", caller="38761000000", called=A, offered_at=3.0)
    facts.trunk = "carrier"
    return facts


def test_a_diverted_leg_takes_the_forwarding_groups_channel_not_the_callers_trunks() -> None:
    """The diverted leg's channel is in 201's group and customer pools; with the group's one
    channel in use a second is refused, while the caller's trunk is not counted."""
    admission, diverted = _admission()
    leg = CallFacts(call_id="b", caller="38761000000", called=OUTSIDE, offered_at=3.0)
    by = channelled_by(_caller(), diverted, leg)
    assert by is not None and (by.group, by.customer, by.subscriber) == ("office", "acme", A)
    grant = admission.acquire_leg(by, OUTSIDE)
    assert grant is not None and "group:office" in grant.profiles
    assert "customer:acme" in grant.profiles and "trunk:carrier" not in grant.profiles
    assert admission.acquire_leg(by, OUTSIDE) is None, "the group's one channel is in use"
    admission.release(grant)
    assert admission.acquire_leg(by, OUTSIDE) is not None


def test_a_leg_nobody_diverted_takes_the_payers_pools() -> None:
    """Without a diversion the leg is channelled as its payer's: the caller's trunk here."""
    admission, _ = _admission()
    caller = _caller()
    leg = CallFacts(call_id="b", caller="38761000000", called=OUTSIDE, offered_at=3.0)
    assert channelled_by(caller, None, leg) is caller
    grant = admission.acquire_leg(caller, OUTSIDE)
    assert grant is not None and grant.profiles[0] == "trunk:carrier"
