"""A leg placed because a Centrex subscriber's forwarding diverted the call.

Such a leg is the forwarding subscriber's, not the caller's (``calls.forwarding``): it is
barred by the subscriber's barring classes and its group's (a toll-fraud guard: a caller
cannot reach through a forward what the subscriber could not dial), paid by the subscriber's
customer (``payer: called``, as ``config.tariffs.Tariffs.forwarded_charges`` rates any
forwarded leg; a leg to a number of the subscriber's own group is inside it, uncharged), and
carries the call's ``Diversion`` and ``History-Info`` entries (``policy.diversion.Chain``).
Its CDR says why (``diversion_reason``) and who diverted it (``diverted_from``).

It is the forwarding group's call out, so it takes its channel from the subscriber's group
and customer pools (``channelled_by``), as a call out from one of the group's phones does
(``calls.admission``: ``group:<id>``, ``customer:<id>``, the number's), not from the
caller's trunk; the caller's own inbound channel stays as it was. Over a limit the leg is not
placed: its CDR ends ``channel_limit`` with ``end_detail`` ``OVER_CHANNEL_LIMIT``, and the
caller is refused 503 with Q.850 cause 34 (RFC 3326), as over any channel limit.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.calls.reporting import CallFacts
from callserver.config.centrex import Subscriber
from callserver.policy.diversion import Chain
from callserver.policy.services import DiversionReason

__all__ = ["OVER_CHANNEL_LIMIT", "Diverted", "channelled_by"]

OVER_CHANNEL_LIMIT = "channel limit"
"""The ``end_detail`` of a leg refused because its pools' channels are all in use."""


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


def channelled_by(
    payer: CallFacts | None, diverted: Diverted | None, facts: CallFacts
) -> CallFacts | None:
    """The facts whose pools a leg's channel is taken from: the forwarding subscriber's for a
    diverted leg, else the payer's (the caller's, or a transfer's transferor)."""
    if diverted is None:
        return payer
    return diverted.barring_facts(facts.called, facts.offered_at)
