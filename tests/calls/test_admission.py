"""Admission: trunk by source address, then call rate, then channels; release exactly once."""

from __future__ import annotations

from callserver.calls.admission import Admission, Admitted, Rejected
from callserver.trunks import TrunksFile


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
