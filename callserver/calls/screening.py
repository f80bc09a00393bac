"""A new INVITE's way through admission, and how authentication's answers go out.

Theory of operation
-------------------
:meth:`Screening.admit` runs ``Admission.screen`` (penalty, call rate, challenge) and then
the global blacklist (config/blacklist.txt, the list in force: ``blacklist`` returns it, so a
reload swaps it): a caller on it is declined with 603 and ``Reason: Q.850;cause=21`` (CDR end
reason ``blacklist``, the entry as its detail) before ``Admission.complete`` takes any channel,
so a blacklisted caller never holds one a good call needs. For a digest claim the SDP offer
(488) is checked too before ``Admission.complete`` verifies the password. A request refused
anyway therefore gets the same answer with a right password as with a wrong one, and its
password is neither checked nor counted: a guesser learns nothing from a request the server
would not have taken. Calls from trunks known by their address carry no password: the
blacklist, then the channels, then the offer (after admission, in ``CallManager``).

Behind a SIP edge (``cluster.edge``) the caller is known by the address the edge names, not by
the edge's own (``cluster.edge.EdgeSources``): a request the edge did not name a caller for is
answered 400 (or, under ``edge.only``, forgotten) before anything else, with no CDR.

Answers of authentication (401/407 challenges, 403) carry a ``delay`` once the source or the
username has failed ``slow_after`` times (``policy.lockout``). They are held on the event loop
(``loop.call_at``), never by blocking it, at most ``max_held`` at once; the server transaction
sends its 100 (Trying) meanwhile (RFC 3261 §17.2.1). Past ``max_held``, and for a source in its
penalty when the answer is ``drop``, the INVITE gets no answer at all: its server transaction
is discarded before its 100 (Trying) is due, so the source hears nothing (RFC 3261 §26.3.2.4
leaves such defences to the implementation).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from callserver.calls.admission import Admitted, Blocked, Challenged, Rejected, Screened
from callserver.calls.call import Call
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices, RefuseCall
from callserver.cluster.edge import EdgeSources
from callserver.policy.blacklist import NumberList, NumberListHit
from callserver.policy.caller import CallerId
from callserver.sip.events import RequestReceived
from callserver.sip.offer_answer import answer_offer
from callserver.sip.sdp import SdpError, parse_sdp
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Screening", "ScreeningStatistics"]

_PROBE_PORT = 9  # any port: an offer is checked against our codecs, not a stream
_DECLINED = (("Reason", "Q.850;cause=21"),)  # call rejected (ITU-T Q.850 Table 1, RFC 3326)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScreeningStatistics:
    """Answers held now, held since start, and INVITEs left unanswered (penalty or overflow)."""

    holding: int
    held: int
    dropped: int


class Screening:
    """Admission of new INVITEs; see the module docstring.

    Args:
        services: the endpoint, loop and admission of the calls it screens.
        refuse: how a call that was taken in is refused (the manager's).
        max_held: the most answers held at once.
    """

    def __init__(self, services: CallServices, *, refuse: RefuseCall, max_held: int = 1000) -> None:
        self.services = services
        self._refuse = refuse
        self.max_held = max_held
        self.blacklist: Callable[[], NumberList] = NumberList  # the list in force (app.py)
        self.edge: EdgeSources | None = None  # behind a SIP edge: who called (app.py)
        self._holding: dict[object, asyncio.TimerHandle] = {}
        self._held = self._dropped = 0

    def admit(
        self, call: Call, event: RequestReceived, caller: CallerId, facts: CallFacts, now: float
    ) -> Admitted | Rejected | None:
        """Admission of ``event``'s INVITE; None when it was answered here (a challenge, a
        source in its penalty, a digest claim refused before its password was looked at)."""
        admission = self.services.admission
        if self.edge is None:
            peer = event.peer
            screened = admission.screen(peer.host, peer.port, event.rtime, event.request)
        elif (found := self.edge.caller(event, now)) is not None:
            screened = admission.screen(*found, event.rtime, event.request)
        else:  # refused for where it came from: answered 400 or dropped, no CDR
            return None
        result: Admitted | Rejected | Challenged | Blocked
        if isinstance(screened, Screened):
            if screened.claim is not None and self._refused_anyway(call, event, caller, facts, now):
                return None
            if screened.claim is None and self._blacklisted(call, screened, caller, facts, now):
                return None
            result = admission.complete(screened, facts.called, event.rtime)
        else:
            result = screened
        if isinstance(result, Blocked):
            self._blocked(event.key, result, now)
            return None
        if isinstance(result, Challenged):  # part of the set-up, no CDR (RFC 3261 §22.2)
            call.log.info("call.challenged", status=result.status, stale=result.stale)
            self.respond(event.key, result.status, now, headers=result.headers, delay=result.delay)
            return None
        return result

    def source_of(self, event: RequestReceived, now: float) -> tuple[str, int] | None:
        """The caller's address of ``event`` (a REGISTER, a SUBSCRIBE): its source, or behind
        the SIP edge the address the edge names (``cluster.edge``); None when the request was
        refused for where it came from (answered 400, or forgotten unanswered)."""
        if self.edge is None:
            return event.peer.host, event.peer.port
        return self.edge.caller(event, now)

    def respond(
        self,
        key: TransactionKey | None,
        status: int,
        now: float,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        delay: float = 0.0,
    ) -> None:
        """Answer the INVITE of ``key`` now, or hold the answer ``delay`` seconds.

        Past ``max_held`` answers held at once, the INVITE is left unanswered instead.
        """
        if delay <= 0:
            self.services.endpoint.respond(key, status, now, headers=headers)
            return
        if len(self._holding) >= self.max_held:
            self._drop(key, now)
            return
        loop = self.services.loop
        self._holding[key] = loop.call_at(loop.time() + delay, self._release, key, status, headers)
        self._held += 1

    def statistics(self) -> ScreeningStatistics:
        """The counters since start and the answers held now."""
        return ScreeningStatistics(
            holding=len(self._holding), held=self._held, dropped=self._dropped
        )

    def offer_refused(self, body: bytes) -> bool:
        """True when ``body`` is no SDP offer the server can answer (RFC 3264 §6): the call
        would get 488 once admitted. No body at all is a late offer, answered by our offer in
        the 2xx (RFC 3261 §13.2.1)."""
        if not body:
            return False
        try:
            answer_offer(parse_sdp(body), self.services.answer_config(_PROBE_PORT))
        except SdpError:
            return True
        return False

    def _refused_anyway(
        self, call: Call, event: RequestReceived, caller: CallerId, facts: CallFacts, now: float
    ) -> bool:
        """Refuse (603, 488) a digest claim the call would refuse after admission anyway."""
        call.facts = facts  # the refusal's CDR: its trunk is not known, nothing was verified
        hit = self.blacklist().match(caller)
        if hit is not None:
            self._decline(call, hit, now)
            return True
        if self.offer_refused(event.request.body):
            call.log.info("call.offer_refused", status=488)
            self._refuse(call, 488, now)
            return True
        call.facts = None
        return False

    def _blacklisted(
        self, call: Call, screened: Screened, caller: CallerId, facts: CallFacts, now: float
    ) -> bool:
        """Decline a caller on the blacklist from a trunk known by its address (or an unknown
        source), before any channel is taken; its CDR names the trunk and its customer."""
        hit = self.blacklist().match(caller)
        if hit is None:
            return False
        trunk = screened.trunk
        facts.trunk, facts.customer = trunk, self.services.admission.customer_of(trunk)
        call.facts = facts
        call.log = call.log.bind(trunk=trunk)
        self._decline(call, hit, now)
        return True

    def _decline(self, call: Call, hit: NumberListHit, now: float) -> None:
        """603 with ``Reason: Q.850;cause=21`` (RFC 3326), CDR end reason ``blacklist`` with
        the entry and its reason as ``end_detail``."""
        call.log.info("call.blacklisted", entry=hit.summary)
        if call.facts is not None:
            call.facts.extra["end_detail"] = hit.summary
        self._refuse(call, 603, now, reason="blacklist", headers=_DECLINED)

    def _blocked(self, key: TransactionKey | None, blocked: Blocked, now: float) -> None:
        if blocked.status is None:
            self._drop(key, now)
        else:
            self.services.endpoint.respond(key, blocked.status, now)

    def _drop(self, key: TransactionKey | None, now: float) -> None:
        self.services.endpoint.discard(key, now)
        self._dropped += 1

    def _release(
        self, key: TransactionKey | None, status: int, headers: tuple[tuple[str, str], ...]
    ) -> None:
        self._holding.pop(key, None)
        services = self.services
        if services.endpoint.is_pending_invite(key):  # not CANCELled meanwhile
            services.endpoint.respond(key, status, services.now(), headers=headers)
            services.wake()
