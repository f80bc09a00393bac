"""Blind transfer from the calling side: the caller hands its forwarded party to a target.

Theory of operation
-------------------
When the REFER comes from the caller of a bridged call (a Centrex phone: ``calls.transfer``
accepted it), the transferee is the forwarded leg and the call the caller made has to end.
From the 202 on, the leg is *detached*: the caller's forward no longer tears it down when
the caller's call ends (``Leg.detached``), so a transferor that hangs up at once does not
stop the transfer. The new leg is placed for the caller's call as the caller's own call out
(``Transfers.attempt``); while it is attempted the two stay bridged as they were (music on
hold for the transferee when the caller held it).

- On its 2xx the two legs are bridged to each other (a ``bridge.Bridge`` of two legs, the
  transferee's SDP version kept), the caller gets NOTIFY 200 and BYE and its call ends
  ``transferred``; the two legs then last until either hangs up, when both are released
  (BYE to the other, CDRs) as a forward releases its leg.
- On a failure the caller gets the NOTIFY with it and its call goes on as it was; if the
  caller has hung up meanwhile, the transferee is released (BYE). A new leg answered after
  the transferee hung up, or picked up by another phone (``calls.pickup``), is released and
  the NOTIFY says 487.

An attended transfer from the calling side whose consultation call the caller placed too
(``calls.attended``) ends the same way: ``join`` bridges the two far legs to each other at
once (both detached from their calls) and both of the caller's calls end ``transferred``.

Such pairs belong to no call, so a shutdown ends them here (``hang_up_all``); so are the pairs
a queue's callback bridges (``hold``: the agent and the number called back).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from callserver.calls.bridge import Bridge, Side
from callserver.calls.bridges import Bridges
from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase
from callserver.calls.reporting import CallFacts
from callserver.calls.services import CallServices
from callserver.calls.session import ForwardOutcome
from callserver.sip.dialog import DialogId
from callserver.sip.names import reason_phrase
from callserver.sip.refer import Notify, ReferSubscription

__all__ = ["Handover"]

Attempt = Callable[[Call, CallFacts], Awaitable[Leg | ForwardOutcome]]
_HANG_UP_WAIT = 1.0  # seconds a shutdown gives the transfers' BYEs to go out


class Handover:
    """Transfers from the calling side; see the module docstring.

    Args:
        attempt: places the new leg as the facts' payer's call, answered or its failure.
        release: ends a leg (BYE, stream, channel, CDR), as a forward does.
        bridges: opens and closes bridges (``bridges.Bridges``).
        notify: sends a NOTIFY in a side's dialog.
    """

    def __init__(
        self,
        services: CallServices,
        attempt: Attempt,
        release: Callable[[Leg], None],
        bridges: Bridges,
        notify: Callable[[Side, Notify], None],
    ) -> None:
        self.services = services
        self._attempt = attempt
        self.release = release
        self._open_bridge = bridges.open
        self._close_bridge = bridges.close
        self._notify = notify
        self._running: set[asyncio.Task[None]] = set()
        self._joined: dict[asyncio.Task[None], tuple[Leg, Leg]] = {}

    def start(
        self, side: Side, leg: Leg, facts: CallFacts, subscription: ReferSubscription
    ) -> None:
        """Transfer ``leg`` (the caller's forwarded party) to ``facts.called``."""
        leg.detached = True
        task = self.services.loop.create_task(self._run(side, leg, facts, subscription))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(
        self, side: Side, leg: Leg, facts: CallFacts, subscription: ReferSubscription
    ) -> None:
        caller = leg.a
        try:
            placed = await self._attempt(caller, facts)
        except asyncio.CancelledError:
            self._abandoned(leg)
            raise
        if isinstance(placed, ForwardOutcome) or leg.ended.is_set() or placed.picked:
            self._failed(side, leg, placed, subscription, facts.called)
            return
        caller.log.info("call.transferred", target=facts.called, leg_call_id=placed.facts.call_id)
        await self._paired(side, leg, placed, subscription, (caller,))

    def join(
        self,
        side: Side,
        leg: Leg,
        far: Leg,
        subscription: ReferSubscription,
        consultation: Call,
    ) -> None:
        """Attended transfer from the calling side (``calls.attended``): bridge the
        transferee's ``leg`` to ``far``, the party of the caller's ``consultation`` call;
        both of the caller's calls end. ``far`` gets ``transferred_from``: the caller's
        first call."""
        leg.detached = far.detached = True  # neither call's forward tears them down now
        far.facts.extra["transferred_from"] = leg.a.call_id
        leg.a.log.info("call.transferred", leg_call_id=far.facts.call_id, attended=True)
        ends = (leg.a, consultation)
        task = self.services.loop.create_task(self._paired(side, leg, far, subscription, ends))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _paired(
        self,
        side: Side,
        leg: Leg,
        placed: Leg,
        subscription: ReferSubscription,
        ends: tuple[Call, ...],
    ) -> None:
        """Bridge the two legs, end the transferor's ``ends`` (NOTIFY 200, BYE), then hold
        the pair until either leg ends and release both."""
        self._join(leg, placed)
        self._notify(side, subscription.final(200, "OK"))
        for call in ends:
            call.cause = "transferred"
            if call.dialog_id is not None and call.phase is not CallPhase.ENDED:
                self.services.endpoint.bye(call.dialog_id, self.services.now())
        self.services.wake()
        task = asyncio.current_task()
        assert task is not None
        self._joined[task] = (leg, placed)
        try:
            await _first_ended(leg, placed)
        finally:
            del self._joined[task]
            self.release(leg)
            self.release(placed)

    async def hold(self, one: Leg, other: Leg) -> None:
        """Bridge two answered legs of no call to each other (a queue's callback: the agent
        and the number called back) until either ends; a shutdown ends them as it ends a
        transfer's pair (``hang_up_all``). Both are the caller's to release after."""
        self._join(one, other)
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)
        self._joined[task] = (one, other)
        try:
            await _first_ended(one, other)
        finally:
            del self._joined[task]
            self._running.discard(task)

    async def hang_up_all(self) -> None:
        """Shutdown: end every pair a transfer joined (BYE to both, CDRs ``shutdown``) and
        every transfer still attempted; waits a second at most for them to finish."""
        for task in list(self._running):
            joined = self._joined.get(task)
            if joined is None:
                task.cancel()
                continue
            for leg in joined:
                leg.end_reason = "shutdown"
                leg.ended.set()
        if self._running:
            await asyncio.wait(self._running, timeout=_HANG_UP_WAIT)

    def _failed(
        self,
        side: Side,
        leg: Leg,
        placed: Leg | ForwardOutcome,
        subscription: ReferSubscription,
        target: str,
    ) -> None:
        """The call goes on as it was, unless its caller left meanwhile; the NOTIFY says why."""
        if isinstance(placed, Leg):  # answered after the transferee hung up, or picked up
            self.release(placed)
            status = 487
        else:
            status = placed.sip_code if placed.sip_code and placed.sip_code >= 300 else 500
        leg.a.log.info("call.transfer_failed", target=target, status=status)
        self._notify(side, subscription.final(status, reason_phrase(status)))
        self._abandoned(leg)

    def _abandoned(self, leg: Leg) -> None:
        """Give the leg back to the caller's forward, or release it if that has ended."""
        leg.detached = False
        if leg.orphaned:
            self.release(leg)

    def _join(self, leg: Leg, placed: Leg) -> None:
        """Bridge the transferee's leg to the new one, each out of the bridge it was in."""
        language = self.services.live.settings.media.default_language
        for one in (placed, leg):  # the transferee's language last: it is the one kept
            old = one.bridge
            if old is not None:
                one.sdp_version, language = old.b.version, old.language
                self._close_bridge(old)
        self.services.media.bridge(leg.stream, placed.stream)
        assert leg.dialog_id is not None and placed.dialog_id is not None
        bridge = Bridge(
            self.services,
            _side(leg, leg.dialog_id),
            _side(placed, placed.dialog_id),
            language=language,
            log=leg.a.log,
        )
        leg.bridge = placed.bridge = self._open_bridge(bridge)


def _side(leg: Leg, dialog_id: DialogId) -> Side:
    return Side(
        leg="b",
        dialog_id=dialog_id,
        stream=leg.stream,
        session_id=leg.stream.stream_id,
        version=leg.sdp_version,
    )


async def _first_ended(one: Leg, other: Leg) -> None:
    """Return when either leg has ended."""
    waits = [asyncio.ensure_future(leg.ended.wait()) for leg in (one, other)]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
