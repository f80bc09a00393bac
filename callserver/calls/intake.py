"""A new call: what the server does with an initial INVITE (no To tag) up to its plan.

While draining (SIGTERM), or with ``calls.max_calls`` calls in progress, the INVITE gets 503
with Retry-After. Otherwise it is screened and admitted (``calls.screening``: the trunk or
phone, call rate, blacklist, channels; the CDR journal's open line), gets an RTP port pair
(503 with Retry-After when every port is in use) and its SDP offer answered (488 without a
common codec; an INVITE without one gets our offer in the 2xx: ``calls.negotiation``); then the
called number's dialplan runs the call (``calls.hosting``). A number with no plan at all is
refused with 404 and ``Reason: Q.850;cause=3`` (no route to destination, RFC 3398; CDR end
reason ``no_route``). In a cluster (``cluster.redis``) an admitted call first waits for the
shared limits (``calls.shared_admission``); without one nothing waits.
"""

from __future__ import annotations

import itertools

import structlog

from callserver.calls.admission import Admitted, Rejected
from callserver.calls.call import Call, caller_of, facts_of, max_forwards_of
from callserver.calls.hosting import SessionHosting
from callserver.calls.negotiation import Negotiation
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.screening import Screening
from callserver.calls.services import CallOperations, CallServices
from callserver.calls.shared_admission import SharedCheck, SharedWait
from callserver.media.engine import PortsExhausted
from callserver.policy.caller import CallerId
from callserver.sip.events import RequestReceived

__all__ = ["Intake"]

log = structlog.get_logger("callserver.calls")
_NO_DIALPLAN = "no dialplan of its own and no default.yaml"


class Intake:
    """Takes in each initial INVITE the ``CallManager`` is given (see the module docstring)."""

    def __init__(
        self,
        services: CallServices,
        calls: Calls,
        *,
        negotiation: Negotiation,
        host: SessionHosting,
        screening: Screening,
        operations: CallOperations,
    ) -> None:
        self.services = services
        self.endpoint = services.endpoint
        self.media = services.media
        self.admission = services.admission
        self.reporter = services.reporter
        self.live = services.live
        self.calls = calls
        self.negotiation = negotiation
        self.host = host
        self.screening = screening
        self.refuse = operations.refuse
        self.end_call = operations.end_call
        self.draining = False  # from SIGTERM: new INVITEs get 503
        self.shared: SharedWait | None = None  # a cluster's wait for the shared limits
        self._session_ids = itertools.count(1)

    def share(self, check: SharedCheck) -> SharedWait:
        """Have each new call, once admitted here, wait for ``check`` (the cluster's shared
        limits) before it goes on (``calls.shared_admission``)."""
        self.shared = SharedWait(
            self.services,
            check,
            resume=self.on_invite,
            refused=self.refused,
            draining=self._draining,
        )
        return self.shared

    def _draining(self) -> bool:
        return self.draining

    def on_invite(self, event: RequestReceived, now: float, admitted: Call | None = None) -> None:
        """Refuse an initial INVITE, or admit it and start its plan (RFC 3261 §13.3.1).

        In a cluster the call waits for the shared limits after its local admission
        (``calls.shared_admission``) and comes back here as ``admitted`` to go on.
        """
        request = event.request
        if admitted is None:
            call = Call(call_id=request.call_id(), key=event.key, offered_at=event.rtime)
            call.max_forwards = max_forwards_of(event)
            call.diversion = tuple(request.headers.get_all("Diversion"))
            call.history_info = tuple(request.headers.get_all("History-Info"))
            caller = caller_of(event)
            if self.draining or len(self.calls) >= self.live.settings.calls.max_calls:
                reason = "shutdown" if self.draining else "rejected"
                self.reporter.ended(facts_of(call.call_id, event, caller), reason, sip_code=503)
                self.endpoint.respond(event.key, 503, now, headers=(("Retry-After", "30"),))
                return
            call.log = log.bind(call_id=call.call_id)
            if not self._admit(call, event, caller, now):
                return
            if self.shared is not None:  # a cluster: the other nodes' channels count too
                self.shared.start(call, event)
                return
        else:
            call, caller = admitted, caller_of(event)
        try:
            call.stream = self.media.open_stream()
        except (PortsExhausted, OSError) as exc:
            call.log.error("call.no_rtp_port", error=str(exc))
            self.refuse(call, 503, now, headers=(("Retry-After", "5"),))
            return
        call.sdp_session = next(self._session_ids)
        if not request.body:  # a late offer: ours goes in the 2xx (RFC 3261 §13.2.1)
            self.negotiation.offer(call)
        elif (answer := self.negotiation.answer(call, request.body)) is not None:
            call.answer = answer
        else:
            self.media.close_stream(call.stream)
            self.refuse(call, 488, now)
            return
        self.calls.add(call)
        if self.host.start_session(call, caller, now, event):
            return
        if call.facts is not None:  # no plan: the CDR says the server's language
            call.facts.extra["language"] = self.live.settings.media.default_language
            call.facts.extra["end_detail"] = _NO_DIALPLAN
        call.log.info("call.no_dialplan")  # no route to destination: Q.850 3 is SIP 404
        self.endpoint.respond(call.key, 404, now, headers=(("Reason", "Q.850;cause=3"),))
        self.end_call(call, "no_route", sip_code=404)

    def _admit(self, call: Call, event: RequestReceived, caller: CallerId, now: float) -> bool:
        facts = facts_of(call.call_id, event, caller)
        result = self.screening.admit(call, event, caller, facts, now)
        if result is None:  # answered already: a challenge, a penalty, refused before the password
            return False
        facts.trunk, facts.customer = result.trunk, result.customer
        if isinstance(result, Admitted):
            facts.subscriber, facts.group = result.subscriber, result.group
            call.admitted, call.facts = result, facts
            inside = self.admission.inside_group  # a Centrex group's internal call is free
            facts.inside_group = inside(result.customer, facts.caller) and inside(
                result.customer, facts.called
            )
            call.log = call.log.bind(trunk=result.trunk, subscriber=result.subscriber)
            self.reporter.opened(facts)
            return True
        self.refused(call, event, facts, result, now)
        return False

    def refused(
        self, call: Call, event: RequestReceived, facts: CallFacts, result: Rejected, now: float
    ) -> None:
        """Refuse the INVITE as ``result`` says (the announcement first, when configured), with
        its CDR and log line."""
        if result.announcement and self.host.announce_refusal(call, event, facts, result, now):
            return
        self.reporter.ended(facts, result.reason, sip_code=result.status)
        call.log.info(
            "call.rejected",
            status=result.status,
            reason=result.reason,
            trunk=result.trunk,
            source=event.peer.host,
        )
        self.screening.respond(
            event.key, result.status, now, headers=result.headers, delay=result.delay
        )
