"""Admission of an inbound call: which trunk it is, then call rate, then channels.

DESIGN.md, call lifecycle step 2. In order, each refusing with its own answer:

1. The trunk: first a trunk without credentials whose ``match`` covers the INVITE's source
   address (``trunks.TrunkTable``); otherwise, when some trunk has digest credentials, the
   INVITE is challenged and its credentials checked (``calls.authentication``, RFC 3261 §22):
   a challenge is answered as :class:`Challenged` (no CDR, not a refusal), failed credentials
   get 403 (``auth_failed``). No trunk at all: 403 unless ``allow_unknown_sources``.
2. The call rate (``policy.cps``): the trunk's token bucket and the source address's; 503 with
   Retry-After. A flood from one source empties only its own bucket.
3. The channels (``policy.limits``): one channel in each of the trunk's, its customer's and
   the called number's pools, all or none; over a limit the configured answer (503 with
   ``Reason: Q.850;cause=34`` and Retry-After by default).

An admitted call holds a ``Grant`` that ``release`` gives back exactly once, whatever path
the call ends on. Reload swaps the table and the limits; counters, grants and issued nonces
carry over, so calls in progress are never cut, a lowered limit applies to new calls and a
challenge sent before the reload can still be answered.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.calls.authentication import Authenticated, Challenged, DigestAuthenticator
from callserver.calls.reporting import CallFacts
from callserver.policy.barring import check_outbound, parse_barring
from callserver.policy.cps import CallRateLimiter
from callserver.policy.limits import ChannelLimits, Grant, OverLimitResponse, refusal_headers
from callserver.policy.numbering import normalise
from callserver.sip.message import Request
from callserver.tariffs import Tariffs
from callserver.trunks import TrunksFile, TrunkTable

__all__ = ["Admission", "Admitted", "Challenged", "Rejected"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """The call may proceed; ``grant`` holds its channels until ``Admission.release``."""

    trunk: str | None
    customer: str | None
    grant: Grant


@dataclass(frozen=True, slots=True, kw_only=True)
class Rejected:
    """The call is refused with ``status`` and ``headers``; ``reason`` goes to the CDR."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    trunk: str | None = None
    customer: str | None = None  # the trunk's, for per-customer reports of refusals
    announcement: str | None = None  # a prompt played as early media before the refusal


class Admission:
    """Trunk identification and the limits it brings; see the module docstring."""

    def __init__(self, trunks: TrunksFile) -> None:
        self.table = TrunkTable(trunks)
        self._over = _over_limit(trunks)
        self.channels = ChannelLimits(self.table.channel_limits())
        self.rates = CallRateLimiter(default_rate=trunks.cps_per_source)
        self.rates.update_rates(self._rates(trunks))
        self.auth = DigestAuthenticator(trunks.digest)

    def reload(self, trunks: TrunksFile) -> None:
        """New trunks and limits; calls in progress keep their channels."""
        self.table = TrunkTable(trunks)
        self._over = _over_limit(trunks)
        self.channels.update_limits(self.table.channel_limits())
        self.rates.update_rates(self._rates(trunks), default_rate=trunks.cps_per_source)
        self.auth.update(trunks.digest)

    @staticmethod
    def _rates(trunks: TrunksFile) -> dict[str, tuple[float, float]]:
        return {
            f"trunk:{name}": (trunk.cps, trunk.cps_burst or max(1.0, trunk.cps))
            for name, trunk in trunks.trunks.items()
            if trunk.cps is not None
        }

    def admit(
        self, host: str, port: int, called: str, now: float, request: Request | None = None
    ) -> Admitted | Rejected | Challenged:
        """Admit, refuse or challenge a new call from ``host``:``port`` to ``called`` at ``now``.

        ``request`` is the INVITE, whose credentials identify a digest trunk (RFC 3261 §22.2);
        without it only trunks identified by address can match.
        """
        config = self.table.config
        identified = self._identify(host, port, now, request)
        if not isinstance(identified, str | None):
            return identified
        trunk = identified
        customer = None if trunk is None else config.trunks[trunk].customer
        keys = [f"source:{host}"] + ([] if trunk is None else [f"trunk:{trunk}"])
        over = self._over
        limited = self.rates.admit(keys, now)
        if limited is not None:
            headers = refusal_headers(over, limited)
            return Rejected(
                status=503, reason="cps_limit", headers=headers, trunk=trunk, customer=customer
            )
        granted = self.channels.acquire(self.table.profiles(trunk, called))
        if not isinstance(granted, Grant):
            return Rejected(
                status=over.status,
                reason="channel_limit",
                headers=refusal_headers(over, granted),
                trunk=trunk,
                customer=customer,
                announcement=config.over_limit.announcement,
            )
        return Admitted(trunk=trunk, customer=customer, grant=granted)

    def _identify(
        self, host: str, port: int, now: float, request: Request | None
    ) -> str | Rejected | Challenged | None:
        """The caller's trunk (None: unknown but allowed), or the refusal or challenge."""
        trunk = self.table.identify(host, port)
        if trunk is None and request is not None and self.table.has_digest:
            outcome = self.auth.authenticate(request, host, port, self.table, now)
            if isinstance(outcome, Authenticated):
                return outcome.trunk
            if isinstance(outcome, Challenged):
                return outcome
            customer = (
                None if outcome.trunk is None else self.table.config.trunks[outcome.trunk].customer
            )
            return Rejected(
                status=outcome.status, reason="auth_failed", trunk=outcome.trunk, customer=customer
            )
        if trunk is None and not self.table.config.allow_unknown_sources:
            return Rejected(status=403, reason="unknown_source")
        return trunk

    def barred(
        self,
        facts: CallFacts | None,
        target: str,
        tariffs: Tariffs,
    ) -> str | None:
        """The barring refusal (``barred_<class>``) of a forwarded leg to ``target``, or None.

        The classes barred are the caller's trunk's and its customer's (config/trunks.yaml);
        a target that is not a number (a SIP URI) or that the numbering plan cannot place is
        not barred here: the route refuses what it cannot reach.
        """
        if facts is None:
            return None
        config = self.table.config
        trunk = config.trunks.get(facts.trunk or "")
        customer = config.customers.get(facts.customer or "")
        names = [*(trunk.barring if trunk else []), *(customer.barring if customer else [])]
        if not names:
            return None
        group = frozenset(customer.numbers if customer else ())
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
        config = self.table.config.customers.get(customer or "")
        try:
            return config is not None and normalise(target) in config.numbers
        except ValueError:
            return False

    def acquire_leg(self, facts: CallFacts | None, target: str) -> Grant | None:
        """A channel for a forwarded leg in the caller's pools (each leg holds one), or None."""
        trunk = None if facts is None else facts.trunk
        granted = self.channels.acquire(self.table.profiles(trunk, target))
        return granted if isinstance(granted, Grant) else None

    def release(self, grant: Grant) -> None:
        """Give the call's channels back (a second release of the same grant does nothing)."""
        self.channels.release(grant)


def _over_limit(trunks: TrunksFile) -> OverLimitResponse:
    over = trunks.over_limit
    return OverLimitResponse(status=over.status, retry_after=over.retry_after)
