"""Tests for channel limits per profile (as Kamailio's dialog profiles count channels)."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from callserver.policy.cps import RateRefusal
from callserver.policy.limits import (
    ChannelLimits,
    Grant,
    LimitStatistics,
    OverLimitResponse,
    Refusal,
    profile_kind,
    refusal_headers,
)

CALL = ["trunk:gw1", "customer:acme", "number:38733123"]


def grant(result: Grant | Refusal) -> Grant:
    """The grant in ``result``; fails the test on a refusal."""
    assert isinstance(result, Grant), result
    return result


def test_acquire_takes_one_channel_in_every_profile() -> None:
    """A granted call counts once in its trunk's, customer's and number's profile."""
    limits = ChannelLimits({"trunk:gw1": 2, "customer:acme": 5})
    held = grant(limits.acquire(CALL))
    assert held.profiles == tuple(CALL)
    assert [limits.in_use(profile) for profile in CALL] == [1, 1, 1]
    assert limits.in_use("trunk:other") == 0


def test_full_profile_refuses_and_takes_nothing() -> None:
    """At the trunk's limit a call is refused and the other profiles are left untouched."""
    limits = ChannelLimits({"trunk:gw1": 1, "customer:acme": 5})
    grant(limits.acquire(CALL))
    refusal = limits.acquire(CALL)
    assert refusal == Refusal(profile="trunk:gw1", limit=1, in_use=1)
    assert [limits.in_use(profile) for profile in CALL] == [1, 1, 1]
    limits.update_limits({"trunk:gw1": 0})
    assert limits.acquire(["trunk:gw1"]) == Refusal(profile="trunk:gw1", limit=0, in_use=1)


def test_refusal_names_the_first_full_profile() -> None:
    """With the customer and number both full, the refusal names the one listed first."""
    limits = ChannelLimits({"customer:acme": 1, "number:38733123": 1})
    grant(limits.acquire(CALL))
    assert limits.acquire(CALL) == Refusal(profile="customer:acme", limit=1, in_use=1)


def test_customer_pool_is_shared_by_its_trunks_and_numbers() -> None:
    """Two trunks of one Centrex group draw on the group's single pool."""
    limits = ChannelLimits({"customer:acme": 2})
    grant(limits.acquire(["trunk:a", "customer:acme", "number:1001"]))
    grant(limits.acquire(["trunk:b", "customer:acme", "number:1002"]))
    refusal = limits.acquire(["trunk:c", "customer:acme", "number:1003"])
    assert refusal == Refusal(profile="customer:acme", limit=2, in_use=2)
    assert limits.in_use("trunk:c") == 0


def test_number_limit_applies_across_trunks() -> None:
    """A called number's limit counts calls to it from any trunk."""
    limits = ChannelLimits({"number:38733123": 1})
    grant(limits.acquire(["trunk:a", "number:38733123"]))
    assert isinstance(limits.acquire(["trunk:b", "number:38733123"]), Refusal)
    grant(limits.acquire(["trunk:b", "number:38733124"]))


def test_unlimited_profiles_are_still_counted() -> None:
    """A profile without a limit never refuses but counts its calls."""
    limits = ChannelLimits()
    held = [grant(limits.acquire(CALL)) for _ in range(50)]
    assert limits.in_use("number:38733123") == 50
    assert limits.limit("number:38733123") is None
    for item in held:
        limits.release(item)
    assert limits.in_use("number:38733123") == 0


def test_profile_named_twice_is_taken_once() -> None:
    """Listing a profile twice takes a single channel from it."""
    limits = ChannelLimits({"trunk:gw1": 1})
    held = grant(limits.acquire(["trunk:gw1", "trunk:gw1"]))
    assert held.profiles == ("trunk:gw1",)
    assert limits.in_use("trunk:gw1") == 1


def test_release_frees_the_channels() -> None:
    """After release the freed channel admits the next call."""
    limits = ChannelLimits({"trunk:gw1": 1})
    held = grant(limits.acquire(CALL))
    assert limits.release(held) is True
    assert [limits.in_use(profile) for profile in CALL] == [0, 0, 0]
    grant(limits.acquire(CALL))


def test_second_release_changes_nothing() -> None:
    """Releasing a grant again (BYE crossing a timeout) returns False and is counted."""
    limits = ChannelLimits({"trunk:gw1": 2})
    first = grant(limits.acquire(CALL))
    second = grant(limits.acquire(CALL))
    assert limits.release(first) is True
    assert limits.release(first) is False
    assert limits.in_use("trunk:gw1") == 1
    assert limits.statistics().double_releases == 1
    assert limits.release(second) is True


def test_unknown_grant_release_changes_nothing() -> None:
    """A grant this object never issued, even one equal to an issued one, releases nothing."""
    limits = ChannelLimits({"trunk:gw1": 2})
    held = grant(limits.acquire(CALL))
    assert limits.release(Grant(id=held.id, profiles=held.profiles)) is False
    assert limits.release(grant(ChannelLimits().acquire(CALL))) is False
    assert limits.in_use("trunk:gw1") == 1
    assert limits.statistics().double_releases == 2


def test_forwarded_call_holds_a_channel_for_each_leg() -> None:
    """A forward acquires again for the outbound leg; each leg releases its own grant."""
    limits = ChannelLimits({"customer:acme": 2})
    inbound = grant(limits.acquire(["trunk:in", "customer:acme", "number:1001"]))
    outbound = grant(limits.acquire(["trunk:out", "customer:acme", "number:38761000"]))
    assert limits.in_use("customer:acme") == 2
    assert isinstance(limits.acquire(["trunk:in", "customer:acme", "number:1002"]), Refusal)
    limits.release(outbound)
    limits.release(inbound)
    assert limits.in_use("customer:acme") == 0


def test_raised_or_removed_limit_admits_more_at_once() -> None:
    """An operator adding channels, or removing the limit, on reload lets the next call in."""
    limits = ChannelLimits({"trunk:gw1": 1})
    grant(limits.acquire(CALL))
    limits.update_limits({"trunk:gw1": 2})
    grant(limits.acquire(CALL))
    assert limits.in_use("trunk:gw1") == 2
    limits.update_limits({})
    grant(limits.acquire(CALL))
    assert limits.limits == {}


def test_lowered_limit_keeps_calls_and_refuses_new_ones() -> None:
    """A limit lowered below the count in use cuts nothing and admits again only below it."""
    limits = ChannelLimits({"trunk:gw1": 3})
    held = [grant(limits.acquire(CALL)) for _ in range(3)]
    limits.update_limits({"trunk:gw1": 1})
    assert limits.in_use("trunk:gw1") == 3
    assert limits.acquire(CALL) == Refusal(profile="trunk:gw1", limit=1, in_use=3)
    limits.release(held[0])
    assert isinstance(limits.acquire(CALL), Refusal)
    limits.release(held[1])
    assert isinstance(limits.acquire(CALL), Refusal)
    limits.release(held[2])
    grant(limits.acquire(CALL))


def test_limit_added_on_reload_counts_calls_in_progress() -> None:
    """A profile that gains a limit on reload already counts the calls it carries."""
    limits = ChannelLimits()
    grant(limits.acquire(CALL))
    limits.update_limits({"number:38733123": 1})
    assert isinstance(limits.acquire(CALL), Refusal)


def test_negative_limit_is_rejected_and_keeps_the_old_ones() -> None:
    """A negative limit raises ValueError and the limits in force stay."""
    limits = ChannelLimits({"trunk:gw1": 1})
    with pytest.raises(ValueError, match="'trunk:x' is -1, less than 0"):
        limits.update_limits({"trunk:gw1": 5, "trunk:x": -1})
    assert limits.limits == {"trunk:gw1": 1}
    with pytest.raises(ValueError):
        ChannelLimits({"trunk:x": -1})


def test_statistics_count_grants_refusals_by_kind_and_releases() -> None:
    """statistics() counts refusals by profile kind, the text before the first colon."""
    limits = ChannelLimits({"trunk:gw1": 1, "number:2": 0})
    held = grant(limits.acquire(CALL))
    limits.acquire(CALL)
    limits.acquire(["trunk:gw2", "number:2"])
    limits.release(held)
    limits.release(held)
    assert limits.statistics() == LimitStatistics(
        granted=1,
        released=1,
        refused={"trunk": 1, "number": 1},
        double_releases=1,
        active_grants=0,
    )
    assert (profile_kind("trunk:gw:1"), profile_kind("global")) == ("trunk", "global")


def test_default_over_limit_headers_are_cause_34_and_retry_after() -> None:
    """The default answer is 503 with Reason Q.850 cause 34 and Retry-After 30."""
    response = OverLimitResponse()
    refusal = Refusal(profile="trunk:gw1", limit=1, in_use=1)
    assert response.status == 503
    assert refusal_headers(response, refusal) == (
        ("Reason", 'Q.850;cause=34;text="No circuit/channel available"'),
        ("Retry-After", "30"),
    )


def test_configured_over_limit_headers() -> None:
    """A configured answer without Reason sends only its own Retry-After."""
    response = OverLimitResponse(status=486, reason=None, retry_after=5)
    refusal = Refusal(profile="customer:acme", limit=4, in_use=4)
    assert refusal_headers(response, refusal) == (("Retry-After", "5"),)
    silent = OverLimitResponse(reason=None, retry_after=None)
    assert refusal_headers(silent, refusal) == ()


@pytest.mark.parametrize(
    ("wait", "header"),
    [(0.0, "1"), (0.2, "1"), (1.0, "1"), (1.01, "2"), (7.5, "8"), (float("inf"), "86400")],
)
def test_rate_refusal_retry_after_is_whole_seconds_rounded_up(wait: float, header: str) -> None:
    """A CPS refusal gets Retry-After of the bucket's wait, rounded up, 1 s to a day."""
    refusal = RateRefusal(key="source:192.0.2.1", retry_after=wait)
    assert refusal_headers(OverLimitResponse(), refusal) == (("Retry-After", header),)


TRUNKS = ("trunk:a", "trunk:b", "trunk:c")
CUSTOMERS = ("customer:x", "customer:y")
NUMBERS = ("number:100", "number:200", "number:300")
PROFILES = TRUNKS + CUSTOMERS + NUMBERS
limit_maps = st.dictionaries(st.sampled_from(PROFILES), st.integers(0, 4))


class ChannelLimitsMachine(RuleBasedStateMachine):
    """Random call lifecycles across trunks against a model of who holds which channel.

    A call is a list of legs (grants), ringing or answered. Every teardown path gives all its
    legs back; an error response on a forwarded leg gives back that leg alone.
    """

    def __init__(self) -> None:
        super().__init__()
        self.limits = ChannelLimits()
        self.calls: dict[int, tuple[list[Grant], str]] = {}  # call -> (legs, state)
        self.released: list[Grant] = []
        self.next_call = 0
        self.previous: dict[str, int] = {}
        self.double_releases = 0

    @initialize(limits=limit_maps)
    def configure(self, limits: dict[str, int]) -> None:
        """Start with random limits."""
        self.limits.update_limits(limits)

    def in_state(self, state: str | None = None) -> list[int]:
        """The live calls, or those in ``state``, in a stable order."""
        return sorted(c for c, (_, current) in self.calls.items() if state in (None, current))

    def model_count(self, profile: str) -> int:
        """How many live legs the model holds in ``profile``."""
        return sum(profile in leg.profiles for legs, _ in self.calls.values() for leg in legs)

    def take(self, profiles: list[str]) -> Grant | None:
        """Acquire and check the answer against the model; the grant, or None if refused."""
        limits = [(profile, self.limits.limit(profile)) for profile in profiles]
        full = [p for p, limit in limits if limit is not None and self.model_count(p) >= limit]
        result = self.limits.acquire(profiles)
        if full:
            assert isinstance(result, Refusal)
            assert result.profile == full[0]
            return None
        assert isinstance(result, Grant)
        return result

    def end(self, call: int) -> None:
        """Tear a call down: release every leg, each exactly once."""
        legs, _ = self.calls.pop(call)
        for leg in legs:
            assert self.limits.release(leg) is True
            self.released.append(leg)

    @rule(
        trunk=st.sampled_from(TRUNKS),
        customer=st.sampled_from((None, *CUSTOMERS)),
        number=st.sampled_from(NUMBERS),
    )
    def invite(self, trunk: str, customer: str | None, number: str) -> None:
        """INVITE accepted: the call rings holding one channel per profile, if admitted."""
        profiles = [trunk] + ([customer] if customer else []) + [number]
        leg = self.take(profiles)
        if leg is not None:
            self.next_call += 1
            self.calls[self.next_call] = ([leg], "ringing")

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), trunk=st.sampled_from(TRUNKS), number=st.sampled_from(NUMBERS))
    def forward(self, data: st.DataObject, trunk: str, number: str) -> None:
        """The dialplan forwards: the outbound leg takes channels of its own."""
        call = data.draw(st.sampled_from(self.in_state()))
        leg = self.take([trunk, number])
        if leg is not None:
            self.calls[call][0].append(leg)

    @precondition(lambda self: self.in_state("ringing"))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        """200 OK: a ringing call is answered and keeps its channels."""
        call = data.draw(st.sampled_from(self.in_state("ringing")))
        self.calls[call] = (self.calls[call][0], "answered")

    @precondition(lambda self: self.in_state("ringing"))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """CANCEL of a ringing call releases its channels."""
        self.end(data.draw(st.sampled_from(self.in_state("ringing"))))

    @precondition(lambda self: self.in_state("answered"))
    @rule(data=st.data())
    def bye(self, data: st.DataObject) -> None:
        """BYE, from either side, of an answered call releases its channels."""
        self.end(data.draw(st.sampled_from(self.in_state("answered"))))

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def timeout(self, data: st.DataObject) -> None:
        """A timer (no answer, max duration, RTP inactivity) ends any call."""
        self.end(data.draw(st.sampled_from(self.in_state())))

    @precondition(lambda self: self.calls)
    @rule(data=st.data())
    def dialplan_error(self, data: st.DataObject) -> None:
        """A failing dialplan step hangs the call up."""
        self.end(data.draw(st.sampled_from(self.in_state())))

    @precondition(lambda self: any(len(legs) > 1 for legs, _ in self.calls.values()))
    @rule(data=st.data())
    def error_response(self, data: st.DataObject) -> None:
        """A 4xx-6xx to the forwarded leg releases that leg; the call goes on."""
        forwarded = sorted(c for c, (legs, _) in self.calls.items() if len(legs) > 1)
        legs = self.calls[data.draw(st.sampled_from(forwarded))][0]
        leg = legs.pop()
        assert self.limits.release(leg) is True
        self.released.append(leg)

    @precondition(lambda self: self.released)
    @rule(data=st.data())
    def double_release(self, data: st.DataObject) -> None:
        """A second teardown path (BYE crossing a timeout) releases nothing."""
        assert self.limits.release(data.draw(st.sampled_from(self.released))) is False
        self.double_releases += 1

    @rule(profile=st.sampled_from(PROFILES))
    def release_unknown(self, profile: str) -> None:
        """A grant never issued here releases nothing."""
        assert self.limits.release(Grant(id=self.next_call, profiles=(profile,))) is False
        self.double_releases += 1

    @rule(limits=limit_maps)
    def reload(self, limits: dict[str, int]) -> None:
        """The operator reloads with random new limits; nothing is cut."""
        self.limits.update_limits(limits)

    @rule()
    def shutdown(self) -> None:
        """Shutdown hangs every call up."""
        for call in self.in_state():
            self.end(call)

    @invariant()
    def counters_match_the_model_and_limits(self) -> None:
        """No counter is negative or off the model; none grows while at or above its limit."""
        for profile in PROFILES:
            count = self.limits.in_use(profile)
            assert count == self.model_count(profile) >= 0
            limit = self.limits.limit(profile)
            if limit is not None:
                assert count <= max(limit, self.previous.get(profile, 0))
            self.previous[profile] = count
        stats = self.limits.statistics()
        assert stats.active_grants == sum(len(legs) for legs, _ in self.calls.values())
        assert stats.double_releases == self.double_releases

    def teardown(self) -> None:
        """After shutdown every counter is zero and no grant is held."""
        self.shutdown()
        assert all(self.limits.in_use(profile) == 0 for profile in PROFILES)
        assert self.limits.statistics().active_grants == 0


ChannelLimitsMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=60,
    deadline=None,
)
TestChannelLimitsMachine = ChannelLimitsMachine.TestCase


class _Told:
    """A ChannelObserver that keeps what it was told."""

    def __init__(self) -> None:
        self.told: list[tuple[str, int, bool]] = []

    def acquired(self, grant: Grant, checked: bool) -> None:
        self.told.append(("acquired", grant.id, checked))

    def released(self, grant: Grant) -> None:
        self.told.append(("released", grant.id, False))


def test_the_observer_is_told_of_each_grant_and_release_once() -> None:
    """An observer hears every grant (a new call's marked checked) and each release once;
    a refusal and a second release tell it nothing."""
    limits = ChannelLimits({"trunk:a": 1})
    told = _Told()
    limits.observer = told
    call = limits.acquire(["trunk:a"], checked=True)
    assert isinstance(call, Grant)
    assert isinstance(limits.acquire(["trunk:a"]), Refusal)
    leg = limits.acquire(["trunk:b"])
    assert isinstance(leg, Grant)
    limits.release(call)
    limits.release(call)
    assert told.told == [
        ("acquired", call.id, True),
        ("acquired", leg.id, False),
        ("released", call.id, False),
    ]
    assert not limits.is_held(call) and limits.is_held(leg)


def test_channels_elsewhere_count_in_use_but_not_held_here() -> None:
    """The other nodes' channels as last seen add to in_use and the pools, not to held, and
    do not refuse a local acquire; a refusal decided elsewhere is counted by kind."""
    limits = ChannelLimits({"customer:acme": 3})
    limits.elsewhere = {"customer:acme": 2, "trunk:gw": 0}
    grant = limits.acquire(["customer:acme", "trunk:gw"])
    assert isinstance(grant, Grant)
    assert limits.in_use("customer:acme") == 3 and limits.held("customer:acme") == 1
    assert limits.pools_in_use() == {"customer:acme": 3, "trunk:gw": 1}
    assert limits.pools_held() == {"customer:acme": 1, "trunk:gw": 1}
    limits.count_refusal("customer:acme")
    assert limits.statistics().refused == {"customer": 1}
