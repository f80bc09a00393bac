"""Admission of an inbound call: which trunk it is, then call rate, then channels.

The call lifecycle's step 2, in two halves so that the caller can check the rest of the
request between them. :meth:`Admission.screen` decides what needs no password:

1. The trunk by address: a trunk without credentials whose ``match`` covers the INVITE's
   source address (``config.trunks.TrunkTable``). Its calls take a token from the source's and the
   trunk's call-rate buckets (``policy.cps``, all or none; 503 with Retry-After). An INVITE
   whose From names a Centrex phone (its number or its user name) is a phone's call wherever
   it comes from, even from a trunk's address (a softphone beside a PBX): step 2.
2. Otherwise, when some trunk has digest credentials or config/centrex.yaml has phones
   (``calls.authentication``, RFC 3261 §22):
   a source in its penalty for guessing passwords is :class:`Blocked` (403 or no answer, no
   CDR); any other INVITE takes a token from its source's bucket, a challenge as much as a
   call, so a flood of INVITEs without credentials cannot draw challenges at line rate. No
   credentials: :class:`Challenged` (no CDR, not a refusal). Credentials: a :class:`Screened`
   with the claim to verify.
3. No trunk at all: 403 unless ``allow_unknown_sources``.

:meth:`Admission.complete` does the rest. A claim is verified (a failure gets 403,
``auth_failed``) and the trunk it names takes a token from its own bucket; a claim of a
phone's user name admits the call as that subscriber, its customer the customer of its Centrex
group. Then the channels (``policy.limits``): one in each of the trunk's (a phone's: its
group's), its customer's and the called number's pools, all or none; over a limit the
configured answer (503 with ``Reason: Q.850;cause=34`` and Retry-After by default).
:meth:`Admission.admit` is both halves at once.

An admitted call holds a ``Grant`` that ``release`` gives back exactly once, whatever path
the call ends on. Reload swaps the table, the Centrex groups and the limits; counters, grants
and issued nonces
carry over, so calls in progress are never cut, a lowered limit applies to new calls and a
challenge sent before the reload can still be answered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from callserver.calls.authentication import (
    AuthFailed,
    Blocked,
    Challenged,
    Claim,
    DigestAuthenticator,
)
from callserver.calls.reporting import CallFacts
from callserver.config.centrex import Centrex, Subscriber
from callserver.config.tariffs import Tariffs
from callserver.config.trunks import TrunksFile, TrunkTable
from callserver.policy.barring import check_outbound, parse_barring
from callserver.policy.cps import CallRateLimiter, RateRefusal
from callserver.policy.limits import (
    ChannelLimits,
    Grant,
    OverLimitResponse,
    Refusal,
    refusal_headers,
)
from callserver.policy.numbering import normalise
from callserver.policy.outbound import OutboundPlan
from callserver.sip.message import Request

__all__ = ["Admission", "Admitted", "Blocked", "Challenged", "Rejected", "Screened"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """The call may proceed; ``grant`` holds its channels until ``Admission.release``.

    A phone's call has its ``subscriber`` (its E.164 number) and Centrex ``group``, and no
    trunk; ``customer`` is the trunk's or the group's.
    """

    trunk: str | None
    customer: str | None
    grant: Grant
    subscriber: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """The call is refused with ``status`` and ``headers``; ``reason`` goes to the CDR."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    trunk: str | None = None
    customer: str | None = None  # the trunk's, for per-customer reports of refusals
    announcement: str | None = None  # a prompt played as early media before the refusal
    delay: float = 0.0  # seconds to hold the answer (a failed authentication, slowed down)


@dataclass(frozen=True, slots=True, kw_only=True)
class Screened:
    """Past :meth:`Admission.screen`: the trunk known by address, or a digest ``claim`` that
    :meth:`Admission.complete` verifies for ``request`` from ``host``:``port``."""

    host: str
    port: int
    trunk: str | None = None
    claim: Claim | None = None
    request: Request | None = None


class Admission:
    """Trunk identification and the limits it brings; see the module docstring."""

    def __init__(self, trunks: TrunksFile, centrex: Centrex | None = None) -> None:
        self.table = TrunkTable(trunks)
        self.centrex = centrex or Centrex()
        self.outbound = OutboundPlan.of(trunks)
        self._over = _over_limit(trunks)
        self.channels = ChannelLimits(self._channel_limits())
        self.rates = CallRateLimiter(default_rate=trunks.cps_per_source)
        self.rates.update_rates(self._rates(trunks))
        self._trunk_rates_here = True  # False: a cluster's shared buckets hold them
        self.auth = DigestAuthenticator(trunks.digest)
        self.reloaded: list[Callable[[], object]] = []  # told after each reload

    def reload(self, trunks: TrunksFile, centrex: Centrex | None = None) -> None:
        """New trunks, Centrex groups (None: the ones in force) and limits; calls in progress
        keep their channels. Then each of ``reloaded`` is called (the call centre's agents)."""
        self.table = TrunkTable(trunks)
        self.centrex = self.centrex if centrex is None else centrex
        self.outbound = OutboundPlan.of(trunks)
        self._over = _over_limit(trunks)
        self.channels.update_limits(self._channel_limits())
        here = self._rates(trunks) if self._trunk_rates_here else {}
        self.rates.update_rates(here, default_rate=trunks.cps_per_source)
        self.auth.update(trunks.digest)
        for listener in self.reloaded:
            listener()

    def _channel_limits(self) -> dict[str, int]:
        """The trunks' file's limits and each Centrex group's pool (``group:<id>``)."""
        groups = {
            f"group:{gid}": group.channels
            for gid, group in self.centrex.groups.items()
            if group.channels is not None
        }
        return {**self.table.channel_limits(), **groups}

    def share_trunk_rates(self) -> None:
        """Leave the trunks' call rates to a cluster's shared buckets (``cluster.rates``, asked
        after this admission with the trunk of the call): the local limiter keeps the
        per-source buckets only."""
        self._trunk_rates_here = False
        self.rates.update_rates({})

    def trunk_rates(self) -> dict[str, tuple[float, float]]:
        """``(rate, burst)`` of each trunk with a call rate, by ``trunk:<id>``."""
        return self._rates(self.table.config)

    def pool_profiles(self) -> list[str]:
        """Every configured trunk's, customer's and Centrex group's pool and every limited
        one (the pools the admin API and the metrics show)."""
        config = self.table.config
        return list(
            dict.fromkeys(
                [
                    *(f"trunk:{name}" for name in config.trunks),
                    *(f"customer:{name}" for name in config.customers),
                    *(f"group:{gid}" for gid in self.centrex.groups),
                    *self.channels.limits,
                ]
            )
        )

    @staticmethod
    def _rates(trunks: TrunksFile) -> dict[str, tuple[float, float]]:
        return {
            f"trunk:{name}": (trunk.cps, trunk.cps_burst or max(1.0, trunk.cps))
            for name, trunk in trunks.trunks.items()
            if trunk.cps is not None
        }

    def admit(
        self, host: str, port: int, called: str, now: float, request: Request | None = None
    ) -> Admitted | Rejected | Challenged | Blocked:
        """Admit, refuse or challenge a new call from ``host``:``port`` to ``called`` at ``now``:
        :meth:`screen` and :meth:`complete` with nothing checked between them."""
        screened = self.screen(host, port, now, request)
        if not isinstance(screened, Screened):
            return screened
        return self.complete(screened, called, now)

    def screen(
        self, host: str, port: int, now: float, request: Request | None = None
    ) -> Screened | Rejected | Challenged | Blocked:
        """Steps 1-3 of the module docstring for a new call from ``host``:``port`` at ``now``.

        ``request`` is the INVITE, whose credentials identify a digest trunk (RFC 3261 §22.2);
        without it only trunks identified by address can match.
        """
        trunk = self.table.identify(host, port)
        digest = self.table.has_digest or bool(self.centrex.by_username)
        if request is not None and digest and (trunk is None or self._from_a_phone(request)):
            return self._screen_digest(host, port, now, request)
        if trunk is None and not self.table.config.allow_unknown_sources:
            return Rejected(status=403, reason="unknown_source")
        keys = [f"source:{host}"] + ([] if trunk is None else [f"trunk:{trunk}"])
        refused = self._rate_refusal(keys, trunk, now)
        return refused or Screened(host=host, port=port, trunk=trunk)

    def _from_a_phone(self, request: Request) -> bool:
        """True when the From of ``request`` names a Centrex phone: challenge it as one."""
        user = getattr(request.from_().uri, "user", None)
        if not user or not self.centrex.by_username:
            return False
        centrex = self.centrex
        return centrex.account(user) is not None or centrex.subscriber(user) is not None

    def complete(
        self, screened: Screened, called: str, now: float
    ) -> Admitted | Rejected | Challenged:
        """Verify the screened claim (its trunk's call rate), then take the call's channels
        (``checked``: in a cluster the intake checks them across the nodes before the call
        goes on, ``calls.shared_admission``)."""
        trunk = screened.trunk
        if screened.claim is not None:
            assert screened.request is not None
            verified = self.auth.verify(
                screened.request, screened.claim, screened.host, screened.port, self.table, now
            )
            if isinstance(verified, Challenged):
                return verified
            if isinstance(verified, AuthFailed):
                return self._auth_refusal(verified)
            if verified.account is not None:
                return self._admit_phone(verified.account.aor, called)
            trunk = verified.trunk
            refused = self._rate_refusal([f"trunk:{trunk}"], trunk, now)
            if refused is not None:
                return refused
        customer = self.customer_of(trunk)
        granted = self.channels.acquire(self.table.profiles(trunk, called), checked=True)
        if not isinstance(granted, Grant):
            return self.channel_refusal(granted, trunk, customer)
        return Admitted(trunk=trunk, customer=customer, grant=granted)

    def _admit_phone(self, aor: str, called: str) -> Admitted | Rejected:
        """The channels of an authenticated phone's call: its group's, its customer's and
        the called number's pools."""
        subscriber = self.centrex.subscriber(aor)
        if subscriber is None:  # a reload took the phone away after its password was checked
            return Rejected(status=403, reason="auth_failed")
        customer = self.centrex.groups[subscriber.group].customer
        profiles = _phone_profiles(subscriber.group, customer, called)
        granted = self.channels.acquire(profiles, checked=True)
        if not isinstance(granted, Grant):
            return self.channel_refusal(granted, None, customer)
        return Admitted(
            trunk=None,
            customer=customer,
            grant=granted,
            subscriber=subscriber.number,
            group=subscriber.group,
        )

    def channel_refusal(
        self, refusal: Refusal, trunk: str | None, customer: str | None
    ) -> Rejected:
        """The configured over-limit answer to a call refused by ``refusal``."""
        return Rejected(
            status=self._over.status,
            reason="channel_limit",
            headers=refusal_headers(self._over, refusal),
            trunk=trunk,
            customer=customer,
            announcement=self.table.config.over_limit.announcement,
        )

    def _screen_digest(
        self, host: str, port: int, now: float, request: Request
    ) -> Screened | Rejected | Challenged | Blocked:
        standing = self.auth.source_standing(host, now)
        if isinstance(standing, Blocked):
            return standing
        refused = self._rate_refusal([f"source:{host}"], None, now)
        if refused is not None:
            return refused
        inspected = self.auth.inspect(request, host, standing, now)
        if isinstance(inspected, AuthFailed):
            return self._auth_refusal(inspected)
        if isinstance(inspected, Challenged):
            return inspected
        return Screened(host=host, port=port, claim=inspected, request=request)

    def _rate_refusal(self, keys: list[str], trunk: str | None, now: float) -> Rejected | None:
        limited = self.rates.admit(keys, now)
        if limited is None:
            return None
        return self.rate_refusal(limited, trunk)

    def rate_refusal(self, limited: RateRefusal, trunk: str | None) -> Rejected:
        """The answer to a call of ``trunk`` over a call rate: 503 with Retry-After."""
        customer = self.customer_of(trunk)
        headers = refusal_headers(self._over, limited)
        return Rejected(
            status=503, reason="cps_limit", headers=headers, trunk=trunk, customer=customer
        )

    def _auth_refusal(self, failed: AuthFailed) -> Rejected:
        trunk = failed.trunk
        customer = self.customer_of(trunk)
        return Rejected(
            status=failed.status,
            reason="auth_failed",
            trunk=trunk,
            customer=customer,
            delay=failed.delay,
        )

    def barred(
        self,
        facts: CallFacts | None,
        target: str,
        tariffs: Tariffs,
    ) -> str | None:
        """The barring refusal (``barred_<class>``) of a leg to ``target``, or None.

        The classes barred are the caller's trunk's and its customer's (config/trunks.yaml),
        and a phone's own and its group's (config/centrex.yaml); an emergency number
        (trunks.yaml ``emergency``) is never barred. A target that is not a number (a SIP URI)
        or that the numbering plan cannot place is not barred here: the route refuses what it
        cannot reach.
        """
        if facts is None or self.outbound.is_emergency(target):
            return None
        config = self.table.config
        trunk = config.trunks.get(facts.trunk or "")
        customer = config.customers.get(facts.customer or "")
        names = [
            *(trunk.barring if trunk else []),
            *(customer.barring if customer else []),
            *self._phone_barring(facts),
        ]
        if not names:
            return None
        group = self.table.customer_numbers(facts.customer)
        try:
            number_class = tariffs.classify(target)
            refusal = check_outbound(
                target,
                number_class,
                parse_barring(names),
                group_numbers=group,
                caller=facts.caller or None,
            )
        except ValueError:
            return None
        return None if refusal is None else refusal.reason

    def inside_group(self, customer: str | None, target: str) -> bool:
        """True when ``target`` is one of the customer's own (Centrex group) numbers."""
        numbers = self.table.customer_numbers(customer)
        try:
            return bool(numbers) and normalise(target) in numbers
        except ValueError:
            return False

    def _phone_barring(self, facts: CallFacts) -> tuple[str, ...]:
        """A phone's barring classes: its own and its group's (the subscriber's hold both)."""
        subscriber: Subscriber | None = self.centrex.subscriber(facts.subscriber or "")
        group = self.centrex.groups.get(facts.group or "")
        return (
            *(subscriber.barring if subscriber else ()),
            *(group.barring if group else ()),
        )

    def acquire_leg(self, facts: CallFacts | None, target: str) -> Grant | None:
        """A channel for a leg in the caller's pools (each leg holds one: a trunk's call in its
        trunk's and customer's, a phone's in its group's and customer's), or None."""
        if facts is not None and facts.group is not None:
            profiles = _phone_profiles(facts.group, facts.customer, target)
        else:
            trunk = None if facts is None else facts.trunk
            profiles = self.table.profiles(trunk, target)
        granted = self.channels.acquire(profiles)
        return granted if isinstance(granted, Grant) else None

    def customer_of(self, trunk: str | None) -> str | None:
        """The customer whose trunk ``trunk`` is (None for no trunk or a trunk of its own)."""
        return None if trunk is None else self.table.config.trunks[trunk].customer

    def release(self, grant: Grant) -> None:
        """Give the call's channels back (a second release of the same grant does nothing)."""
        self.channels.release(grant)


def _phone_profiles(group: str, customer: str | None, called: str) -> list[str]:
    """The channel profiles of a phone's call: its group's, its customer's, the number's."""
    profiles = [f"group:{group}"]
    if customer is not None:
        profiles.append(f"customer:{customer}")
    profiles.append(f"number:{called.lstrip('+')}")
    return profiles


def _over_limit(trunks: TrunksFile) -> OverLimitResponse:
    over = trunks.over_limit
    return OverLimitResponse(status=over.status, retry_after=over.retry_after)
