"""Admission: trunk by source address or digest, then call rate, then channels; release once."""

from __future__ import annotations

from pathlib import Path

from callserver.calls.admission import Admission, Admitted, Challenged, Rejected, Screened
from callserver.calls.reporting import CallFacts
from callserver.config.tariffs import load_tariffs
from callserver.config.trunks import TrunksFile
from callserver.sip.auth import build_authorization, select_challenge
from callserver.sip.message import Headers, Request
from callserver.sip.uri import parse_uri


def trunks(**data: object) -> TrunksFile:
    return TrunksFile.model_validate(data)


PBX = {"match": ["192.0.2.10"], "customer": "acme", "channels": 2}


def test_unknown_source_is_403_unless_allowed() -> None:
    """No trunk for the source: 403; with allow_unknown_sources the call only takes its number."""
    closed = Admission(trunks())
    assert closed.admit("198.51.100.1", 5060, "38733123", 0.0) == Rejected(
        status=403, reason="unknown_source"
    )
    open_ = Admission(trunks(allow_unknown_sources=True, numbers={"38733123": {"channels": 1}}))
    first = open_.admit("198.51.100.1", 5060, "38733123", 0.0)
    assert isinstance(first, Admitted) and first.trunk is None
    second = open_.admit("198.51.100.2", 5060, "38733123", 0.0)
    assert isinstance(second, Rejected) and second.reason == "channel_limit"


def test_channel_limit_refusal_carries_cause_34_and_retry_after() -> None:
    """Over the trunk's channels: 503, Reason Q.850 cause 34, Retry-After; release frees one."""
    admission = Admission(trunks(customers={"acme": {}}, trunks={"pbx": PBX}))
    calls = [admission.admit("192.0.2.10", 5060, "387331", 0.0) for _ in range(2)]
    assert all(isinstance(call, Admitted) for call in calls)
    refused = admission.admit("192.0.2.10", 5060, "387331", 0.0)
    assert isinstance(refused, Rejected)
    assert (refused.status, refused.reason, refused.trunk) == (503, "channel_limit", "pbx")
    headers = dict(refused.headers)
    assert headers["Reason"].startswith("Q.850;cause=34")
    assert headers["Retry-After"] == "30"
    first = calls[0]
    assert isinstance(first, Admitted) and first.customer == "acme"
    admission.release(first.grant)
    admission.release(first.grant)  # a second release of the same grant changes nothing
    assert isinstance(admission.admit("192.0.2.10", 5060, "387331", 0.0), Admitted)
    assert admission.channels.in_use("trunk:pbx") == 2


def test_customer_pool_is_shared_by_its_trunks() -> None:
    """Two trunks of one customer share its 3 channels."""
    admission = Admission(
        trunks(
            customers={"acme": {"channels": 3}},
            trunks={
                "a": {"match": ["192.0.2.1"], "customer": "acme"},
                "b": {"match": ["192.0.2.2"], "customer": "acme"},
            },
        )
    )
    results = [admission.admit(f"192.0.2.{1 + i % 2}", 5060, "387", 0.0) for i in range(4)]
    assert [isinstance(r, Admitted) for r in results] == [True, True, True, False]


def test_cps_flood_from_one_source_does_not_starve_another_trunk() -> None:
    """A source over its rate gets 503 + Retry-After; another trunk's calls still go through."""
    admission = Admission(
        trunks(
            cps_per_source=5,
            trunks={"flood": {"match": ["192.0.2.66"]}, "calm": {"match": ["192.0.2.77"]}},
        )
    )
    flood = [admission.admit("192.0.2.66", 5060, "387", 0.0) for _ in range(1000)]
    refused = [r for r in flood if isinstance(r, Rejected)]
    assert len(refused) == 1000 - 5
    assert refused[0].reason == "cps_limit" and dict(refused[0].headers)["Retry-After"] == "1"
    assert isinstance(admission.admit("192.0.2.77", 5060, "387", 0.0), Admitted)


def test_reload_keeps_calls_and_applies_new_limits_to_new_calls() -> None:
    """A reload with fewer channels cuts nothing; with more, new calls fit again."""
    admission = Admission(trunks(customers={"acme": {}}, trunks={"pbx": PBX}))
    held = [admission.admit("192.0.2.10", 5060, "387", 0.0) for _ in range(2)]
    admission.reload(trunks(customers={"acme": {}}, trunks={"pbx": {**PBX, "channels": 1}}))
    assert admission.channels.in_use("trunk:pbx") == 2
    assert isinstance(admission.admit("192.0.2.10", 5060, "387", 0.0), Rejected)
    admission.reload(trunks(customers={"acme": {}}, trunks={"pbx": {**PBX, "channels": 3}}))
    assert isinstance(admission.admit("192.0.2.10", 5060, "387", 0.0), Admitted)
    for call in held:
        assert isinstance(call, Admitted)
        admission.release(call.grant)
    assert admission.channels.in_use("trunk:pbx") == 1


DIGEST_TRUNKS = {
    "trunks": {
        "pbx": {"match": ["192.0.2.10"]},
        "branch": {"digest": {"username": "branch7", "password": "s3cret"}, "channels": 1},
    }
}


def _invite(credentials: str | None = None) -> Request:
    """An INVITE to 387331, with a Proxy-Authorization value when ``credentials`` is given."""
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 203.0.113.5:5060;branch=z9hG4bK-adm1"),
            ("From", "<sip:caller@203.0.113.5>;tag=1"),
            ("To", "<sip:387331@callserver>"),
            ("Call-ID", "adm-1@203.0.113.5"),
            ("CSeq", "1 INVITE"),
        ]
    )
    if credentials is not None:
        headers.add("Proxy-Authorization", credentials)
    return Request("INVITE", parse_uri("sip:387331@callserver"), headers)


def _answer(challenged: Challenged, password: str = "s3cret", nc: int = 1) -> Request:
    challenge = select_challenge([value for _, value in challenged.headers])
    assert challenge is not None
    value = build_authorization(
        challenge,
        method="INVITE",
        uri="sip:387331@callserver",
        username="branch7",
        password=password,
        cnonce="c0ffee",
        nonce_count=nc,
    )
    return _invite(value)


def test_digest_trunk_is_challenged_then_admitted_with_its_limits() -> None:
    """A challenge takes no channel; valid credentials admit the trunk under its channel limit."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    challenged = admission.admit("203.0.113.5", 5060, "387331", 0.0, _invite())
    assert isinstance(challenged, Challenged) and challenged.status == 407
    assert admission.channels.in_use("trunk:branch") == 0
    admitted = admission.admit("203.0.113.5", 5060, "387331", 1.0, _answer(challenged))
    assert isinstance(admitted, Admitted) and admitted.trunk == "branch"
    assert admission.channels.in_use("trunk:branch") == 1
    second = admission.admit("203.0.113.5", 5060, "387331", 2.0, _answer(challenged, nc=2))
    assert isinstance(second, Rejected)
    assert (second.reason, second.trunk) == ("channel_limit", "branch")


def test_failed_credentials_are_rejected_as_auth_failed() -> None:
    """A wrong password is refused with 403 and reason auth_failed (the CDR's reason)."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    challenged = admission.admit("203.0.113.5", 5060, "387331", 0.0, _invite())
    assert isinstance(challenged, Challenged)
    refused = admission.admit("203.0.113.5", 5060, "387331", 1.0, _answer(challenged, "x"))
    assert refused == Rejected(status=403, reason="auth_failed", trunk="branch")


def test_address_trunk_without_digest_needs_no_credentials() -> None:
    """A source covered by a trunk without digest is admitted at once, never challenged."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    result = admission.admit("192.0.2.10", 5060, "387331", 0.0, _invite())
    assert isinstance(result, Admitted) and result.trunk == "pbx"


def test_without_the_request_only_address_trunks_can_match() -> None:
    """No INVITE to read credentials from: an unknown source is refused as before."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    assert admission.admit("203.0.113.5", 5060, "387331", 0.0) == Rejected(
        status=403, reason="unknown_source"
    )


def test_reload_keeps_outstanding_nonces() -> None:
    """A challenge sent before a reload is answered after it and admitted."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    challenged = admission.admit("203.0.113.5", 5060, "387331", 0.0, _invite())
    assert isinstance(challenged, Challenged)
    admission.reload(trunks(**DIGEST_TRUNKS, digest={"nonce_lifetime": 60}))
    result = admission.admit("203.0.113.5", 5060, "387331", 30.0, _answer(challenged))
    assert isinstance(result, Admitted) and result.trunk == "branch"


def test_outbound_barring_and_the_centrex_group() -> None:
    """A group barred outside itself may still forward to its own numbers."""
    tariffs = load_tariffs(Path(__file__).parents[2] / "config" / "tariffs.yaml")
    group = {"barring": ["outside_group"], "numbers": ["033 100 200", "+38733100201"]}
    admission = Admission(trunks(customers={"acme": group}, trunks={"pbx": PBX}))
    facts = CallFacts(call_id="a", caller="033100200", called="38733100200", offered_at=0.0)
    facts.trunk, facts.customer = "pbx", "acme"
    assert admission.barred(facts, "033100201", tariffs) is None
    assert admission.barred(facts, "+38761200300", tariffs) == "barred_outside_group"
    assert admission.inside_group("acme", "0038733100201")
    assert not admission.inside_group("acme", "+38761200300")
    assert not admission.inside_group(None, "033100201")


def test_challenges_take_a_token_from_the_source_bucket() -> None:
    """INVITEs without credentials cost their source a token each: past its rate, 503."""
    admission = Admission(trunks(cps_per_source=2, **DIGEST_TRUNKS))
    results = [admission.admit("203.0.113.5", 5060, "387331", 0.0, _invite()) for _ in range(3)]
    assert [type(r).__name__ for r in results] == ["Challenged", "Challenged", "Rejected"]
    refused = results[2]
    assert isinstance(refused, Rejected) and (refused.status, refused.reason) == (503, "cps_limit")
    assert isinstance(admission.admit("203.0.113.6", 5060, "387331", 0.0, _invite()), Challenged)
    challenged = results[0]
    assert isinstance(challenged, Challenged)
    answered = admission.admit("203.0.113.5", 5060, "387331", 1.0, _answer(challenged))
    assert isinstance(answered, Admitted), "a second later its tokens are back"


def test_screen_leaves_the_password_to_complete() -> None:
    """Screening a claim checks no password and takes no channel; complete does both."""
    admission = Admission(trunks(**DIGEST_TRUNKS))
    challenged = admission.admit("203.0.113.5", 5060, "387331", 0.0, _invite())
    assert isinstance(challenged, Challenged)
    wrong = admission.screen("203.0.113.5", 5060, 1.0, _answer(challenged, "x"))
    assert isinstance(wrong, Screened) and wrong.claim is not None and wrong.trunk is None
    assert admission.auth.lockout.statistics().failures == 0
    assert admission.complete(wrong, "387331", 1.0) == Rejected(
        status=403, reason="auth_failed", trunk="branch"
    )
    right = admission.screen("203.0.113.5", 5060, 2.0, _answer(challenged, nc=2))
    assert isinstance(right, Screened)
    assert admission.channels.in_use("trunk:branch") == 0
    admitted = admission.complete(right, "387331", 2.0)
    assert isinstance(admitted, Admitted) and admitted.trunk == "branch"
    assert admission.auth.lockout.statistics().failures == 1


def test_shared_trunk_rates_leave_the_source_buckets_here_and_follow_reloads() -> None:
    """Shared with a cluster, the trunks' rates leave the local limiter (a reload too); the
    per-source buckets stay; the pools shown are every trunk, customer and limited pool."""
    rated = {"match": ["192.0.2.10"], "customer": "acme", "cps": 1}
    file = trunks(
        cps_per_source=1,
        customers={"acme": {}},
        trunks={"pbx": rated},
        numbers={"38733123": {"channels": 1}},
    )
    admission = Admission(file)
    assert admission.trunk_rates() == {"trunk:pbx": (1.0, 1.0)}
    admission.share_trunk_rates()
    admission.reload(file)
    assert isinstance(admission.admit("192.0.2.10", 5060, "387331", 0.0), Admitted)
    refused = admission.admit("192.0.2.10", 5060, "387332", 0.0)
    assert isinstance(refused, Rejected) and refused.reason == "cps_limit"  # the source's
    assert admission.rates.tokens("trunk:pbx", 0.0) is None
    assert admission.rates.tokens("source:192.0.2.10", 0.0) == 0.0
    assert admission.pool_profiles() == ["trunk:pbx", "customer:acme", "number:38733123"]
