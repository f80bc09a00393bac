"""A leg placed because a Centrex subscriber's forwarding diverted the call.

Such a leg is the forwarding subscriber's, not the caller's (``calls.forwarding``): it is
barred by the subscriber's barring classes and its group's (a toll-fraud guard: a caller
cannot reach through a forward what the subscriber could not dial), paid by the subscriber's
customer (``payer: called``, as ``config.tariffs.Tariffs.forwarded_charges`` rates any
forwarded leg; a leg to a number of the subscriber's own group is inside it, uncharged), and
carries the call's ``Diversion`` and ``History-Info`` entries (``policy.diversion.Chain``).
Its CDR says why (``diversion_reason``) and who diverted it (``diverted_from``).
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.calls.reporting import CallFacts
from callserver.config.centrex import Subscriber
from callserver.policy.diversion import Chain
from callserver.policy.services import DiversionReason

__all__ = ["Diverted"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Diverted:
    """Who diverted the call (``by``, of ``customer``), why, and the chain so far."""

    by: Subscriber
    customer: str | None
    reason: DiversionReason
    chain: Chain

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        """The diverted INVITE's ``Diversion`` and ``History-Info`` fields."""
        return self.chain.headers()

    def barring_facts(self, target: str, now: float) -> CallFacts:
        """The facts barring reads for a leg to ``target``: the subscriber calling it."""
        facts = CallFacts(call_id="", caller=self.by.number, called=target, offered_at=now)
        facts.subscriber, facts.group, facts.customer = self.by.number, self.by.group, self.customer
        return facts

    def mark(self, facts: CallFacts, *, inside_group: bool) -> None:
        """Make ``facts`` (the leg's CDR facts) the subscriber's: its customer pays, inside
        its own group nothing, and the CDR says why the call was diverted and by whom."""
        facts.customer = self.customer
        facts.forwarded_from = self.by.number
        facts.inside_group = inside_group
        facts.originating = False
        facts.extra["diversion_reason"] = self.reason
        facts.extra["diverted_from"] = self.by.number
