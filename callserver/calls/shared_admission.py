"""A new call's wait for the cluster's shared limits (``cluster.channels``), with Redis set.

Theory of operation
-------------------
Only with ``cluster.redis``. Once the local admission admitted an INVITE (its channels taken
on this node, its CDR journalled), :meth:`SharedWait.start` runs a task that awaits the
shared check: one Redis round trip, or the local view at once when Redis is unreachable (the
link's timeout bounds the wait). Meanwhile the call is *waiting*: in this object's table by
its INVITE's transaction key, not in the ``Calls`` registry.

- A retransmitted INVITE is absorbed by its server transaction, which sends its 100 (Trying)
  after 200 ms or on the retransmission (RFC 3261 §17.2.1): nothing reaches the intake.
- A CANCEL is answered by the SIP core (200, then 487 to the INVITE, RFC 3261 §9.2) and
  reaches the manager as ``InviteCancelled``; finding no call in the registry, the manager asks
  :meth:`SharedWait.cancelled`: the call leaves the table and gets its CDR as any cancelled
  call (``cancelled``, ORIGINATOR_CANCEL) at once; its channels go back when the answer comes
  (withdrawn from Redis then, if it counted them).
- Admitted: the intake takes the call up where it left it (``Intake.on_invite`` with the
  call: its RTP port, the offer and answer, the plan). Had the server begun draining
  meanwhile, the call gets 503 with Retry-After and the CDR ``shutdown``, as a new call would.
- Refused (the trunk's call rate or a pool's channels across the nodes): the local grant goes
  back and the call is refused as a local refusal is (``Intake.refused``): the configured
  over-limit answer (503 with ``Reason: Q.850;cause=34`` and Retry-After by default, the
  announcement first when one is configured) and the CDR ``channel_limit``; over the rate 503
  with Retry-After and ``cps_limit``. A phone's refused call names no subscriber or group, as
  locally.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from callserver.calls.admission import Rejected
from callserver.calls.call import Call
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.policy.cps import RateRefusal
from callserver.policy.limits import Grant, Refusal
from callserver.sip.events import RequestReceived
from callserver.sip.transaction_key import TransactionKey

__all__ = ["SharedCheck", "SharedWait"]

log = structlog.get_logger("callserver.calls")

Resume = Callable[[RequestReceived, float, Call], None]
Refuse = Callable[[Call, RequestReceived, CallFacts, Rejected, float], None]


class SharedCheck(Protocol):
    """The cluster's check of a new call (``cluster.channels.SharedChannels.admit``)."""

    async def admit(self, grant: Grant, trunk: str | None) -> Refusal | RateRefusal | None:
        """None: admitted across the nodes (or by the local view, Redis unreachable); else
        what refused the call."""


class SharedWait:
    """New calls waiting for the shared check; see the module docstring.

    Args:
        services: the endpoint, loop, admission and reporter of the calls.
        check: the shared check.
        resume: goes on with an admitted call (``Intake.on_invite``).
        refused: refuses a call as a local refusal would (``Intake.refused``).
        draining: True once the server drains.
    """

    def __init__(
        self,
        services: CallServices,
        check: SharedCheck,
        *,
        resume: Resume,
        refused: Refuse,
        draining: Callable[[], bool],
    ) -> None:
        self.services = services
        self.check = check
        self._resume = resume
        self._refused = refused
        self._draining = draining
        self._waiting: dict[TransactionKey | None, Call] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Calls waiting now."""
        return len(self._waiting)

    def start(self, call: Call, event: RequestReceived) -> None:
        """Wait for the shared check of ``call`` (admitted here) in a task of its own."""
        self._waiting[call.key] = call
        task = self.services.loop.create_task(self._wait(call, event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def cancelled(self, key: TransactionKey | None) -> bool:
        """A CANCEL ended the INVITE of ``key`` (answered 487 by the core): True when it was
        a waiting call's, which now has its CDR."""
        call = self._waiting.pop(key, None)
        if call is None:
            return False
        if call.facts is not None:
            self.services.reporter.ended(call.facts, "cancelled")
        call.log.info("call.ended", reason="cancelled")
        return True

    async def close(self) -> None:
        """Shutdown: stop waiting (each call gets 503 and its channels back)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _wait(self, call: Call, event: RequestReceived) -> None:
        admitted = call.admitted
        assert admitted is not None
        try:
            refusal = await self.check.admit(admitted.grant, admitted.trunk)
        except asyncio.CancelledError:
            self._end(call, 503, "shutdown")
            raise
        except Exception:  # a bug (a Redis script's error): this call only
            log.exception("call.shared_admission_failed", call_id=call.call_id)
            self._end(call, 500, "error")
            return
        if self._waiting.pop(call.key, None) is None:  # cancelled meanwhile: its CDR is out
            self._release(call)
            return
        try:
            self._go_on(call, event, refusal)
        except Exception:  # a bug in what follows: as the pump's own handler does
            log.exception("call.shared_admission_failed", call_id=call.call_id)
            endpoint = self.services.endpoint
            if endpoint.is_pending_invite(call.key):
                endpoint.respond(call.key, 500, self.services.now())
        self.services.wake()

    def _go_on(
        self, call: Call, event: RequestReceived, refusal: Refusal | RateRefusal | None
    ) -> None:
        now = self.services.now()
        if refusal is not None:
            rejection = self._rejection(call, refusal)
            self._release(call)
            assert call.facts is not None
            self._refused(call, event, call.facts, rejection, now)
        elif self._draining():
            self._end(call, 503, "shutdown")
        else:
            self._resume(event, now, call)

    def _rejection(self, call: Call, refusal: Refusal | RateRefusal) -> Rejected:
        """The local refusal's answer to ``refusal``; the CDR facts as a local refusal's."""
        admitted, facts = call.admitted, call.facts
        assert admitted is not None and facts is not None
        admission = self.services.admission
        facts.subscriber = facts.group = None
        facts.inside_group = False
        if isinstance(refusal, RateRefusal):
            return admission.rate_refusal(refusal, admitted.trunk)
        return admission.channel_refusal(refusal, admitted.trunk, admitted.customer)

    def _end(self, call: Call, status: int, reason: str) -> None:
        """Answer a waiting call ``status`` (503 with Retry-After), give its channels back and
        write its CDR."""
        waiting = self._waiting.pop(call.key, None) is not None
        self._release(call)
        if not waiting:  # cancelled meanwhile: answered and reported already
            return
        services = self.services
        if services.endpoint.is_pending_invite(call.key):
            headers = (("Retry-After", "30"),) if status == 503 else ()
            services.endpoint.respond(call.key, status, services.now(), headers=headers)
        if call.facts is not None:
            services.reporter.ended(call.facts, reason, sip_code=status)
        call.log.info("call.ended", reason=reason)
        services.wake()

    def _release(self, call: Call) -> None:
        if call.admitted is not None:
            self.services.admission.release(call.admitted.grant)
            call.admitted = None
