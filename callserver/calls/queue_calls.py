"""Callers waiting in call centre queues, and the calls to the agents' phones that serve them.

Theory of operation
-------------------
The ``queue`` dialplan step asks ``QueueCalls.wait`` for a wait (``session_host.QueueRequest``).
The caller joins the queue in the centre (``queues.CallCentre`` through its driver, the
``CentreDriver`` of the server: it drains the centre's events to the queue event log and to
the listeners, hands the centre's offers to the ringer and keeps its timer). A caller refused
as ``full`` or ``no_agents`` gets that outcome at once. A caller who waits hears the step's
greeting, then music on hold (``media.hold_music``), and every ``announce_every`` seconds its
position and estimated wait in its language; the leave key leaves the queue (``left``), the
callback key leaves a callback request in its place (``callback``, ``queue_callbacks``, which
also rings the agents for such requests: their offers go there), a hang-up abandons it, the
queue's maximum wait ends it (``timeout``). A recorded queue (``QueueRequest.record``) plays
its recording notice before the caller joins and starts the call's recording
(``CallSession.record_call``, filed under the queue's customer) when an agent answers, before
the two are bridged.

The ringing side: each offer (``queues.events.Offer``) becomes, for each agent it names, a leg
to the agent's registered phones placed as ``b2bua.Forwarder.place_answered`` places a call
to a phone (``calls.phones``: every contact of the phone at once), with the step's display
settings (a prefix before the caller's name, ``Alert-Info``, ``Call-Info``). The agent's own
call forwarding and do-not-disturb do not apply: a logged-in agent takes queue calls, and it
pauses (``*47*REASON#``) to stop them. The first agent to answer wins: the centre is told
(``answered``), which cancels the other agents' rings (their legs are cancelled with "Call
completed elsewhere"), the music stops and the caller is bridged to the agent until one of
them hangs up; then the centre starts the agent's wrap-up (``call_ended``). An agent's ring
time is the centre's (``RingCancelled`` with ``timeout``): the leg is cancelled; a phone that
refuses (busy, declined, not registered) is ``ring_failed``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.queue_callbacks import Calling, CentreDriver, QueueCallbacks
from callserver.calls.session import CallSession
from callserver.calls.session_host import QueueOutcome, QueueRequest
from callserver.media.engine import MediaEngine
from callserver.media.hold_music import Music
from callserver.queues.events import (
    CallerTimedOut,
    CentreEvent,
    Full,
    NoAgents,
    Offer,
    RingCancelled,
)

__all__ = ["CentreDriver", "Placing", "QueueCalls"]

_RING_SLACK = 2.0  # the leg's own ring limit beyond the centre's, which cancels it first
_QUIET = 3600.0  # how long a caller who hears no announcements waits for the leave key at once


class Placing(Calling, Protocol):
    """How a leg to a phone is placed and bridged (``b2bua.Forwarder``'s), and numbers called
    back (``queue_callbacks``)."""

    async def bridge_agent(self, leg: Leg) -> None:
        """Bridge the leg's caller with the answered ``leg`` until either side hangs up."""

    async def transferred(self, leg: Leg) -> Leg | None:
        """After ``leg`` ended: the leg its transfer (REFER) put in its place, or None."""


@dataclass(slots=True)
class _Waiting:
    """A caller waiting: its call, its request, how its wait ends and the agents' rings;
    ``answer`` is the agent and its answered leg once one answered."""

    call: Call
    request: QueueRequest
    outcome: asyncio.Future[QueueOutcome | tuple[str, Leg, float]]
    joined: float
    caller: str  # its number (or what its From said), for the agent's display
    rings: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    lost: set[str] = field(default_factory=set)  # agents whose ring another's answer ended


class QueueCalls:
    """The waiting callers and their agents' legs; see the module docstring.

    Args:
        driver: the call centre's driver.
        placing: how legs to the agents' phones are placed and bridged.
        media: where the music is played; ``music`` the music on hold in force.
    """

    def __init__(
        self,
        driver: CentreDriver,
        placing: Placing,
        media: MediaEngine,
        music: Callable[[], Music | None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.driver = driver
        self.placing = placing
        self.media = media
        self.music = music
        self.loop = loop
        self._waiting: dict[str, _Waiting] = {}
        self.callbacks = QueueCallbacks(driver, placing, loop)
        driver.on_event(self._event)
        driver.on_offers(self._offers)

    async def wait(self, call: Call, session: CallSession, request: QueueRequest) -> QueueOutcome:
        """The caller's wait in the request's queue (module docstring)."""
        centre, driver = self.driver.centre, self.driver
        try:
            centre.define(request.config)
        except (LookupError, ValueError) as exc:  # centrex.yaml changed since the plan loaded
            call.log.error("queue.agents_changed", queue=request.config.name, error=str(exc))
            return QueueOutcome(result="no_agents")
        if request.record_announcement and session.recorded is None:
            await session.play(request.record_announcement, barge_in=False)
        now, at = driver.moment()
        number = session.caller.e164 or session.caller.raw
        joined = centre.join(
            request.config.key, call.call_id, now, at, request.priority, request.skills, number
        )
        if isinstance(joined, NoAgents | Full):
            driver.changed()
            return QueueOutcome(result="no_agents" if isinstance(joined, NoAgents) else "full")
        waiting = _Waiting(call, request, self.loop.create_future(), now, number)
        self._waiting[call.call_id] = waiting
        hearing = self.loop.create_task(self._hear(session, waiting))
        driver.changed()
        try:
            ended = await asyncio.shield(waiting.outcome)
        except asyncio.CancelledError:  # the caller hung up
            self._abandoned(session, waiting)
            raise
        finally:
            hearing.cancel()
            self._music(call, on=False)
            self._waiting.pop(call.call_id, None)
            for ring in waiting.rings.values():
                ring.cancel()
        if isinstance(ended, QueueOutcome):
            if ended.result == "callback" and request.callback_confirm:
                await session.play(request.callback_confirm, barge_in=False)
            return ended
        agent, leg, wait = ended
        answered = QueueOutcome(result="answered", wait=wait, agent=agent)
        session.note("queue", (request.config.name, answered))  # the call may end the plan
        if request.record is not None:
            customer = request.config.customer or None
            await session.record_call(mode=request.record, customer=customer)
        await self._talk(agent, leg)
        return answered

    def _abandoned(self, session: CallSession, waiting: _Waiting) -> None:
        """The caller hung up while waiting, or in the moment an agent answered it (that
        agent's call ends at once)."""
        now, at = self.driver.moment()
        centre, call = self.driver.centre, waiting.call
        if centre.abandon(call.call_id, now, at):
            self.driver.changed()
        outcome = waiting.outcome
        if outcome.done() and isinstance(answered := outcome.result(), tuple):
            agent, leg, _ = answered
            self.placing.release(leg)
            centre.call_ended(agent, now, at)
            self.driver.changed()
        gone = QueueOutcome(result="abandoned", wait=now - waiting.joined)
        session.note("queue", (waiting.request.config.name, gone))

    async def _talk(self, agent: str, leg: Leg) -> None:
        """The caller and the agent who answered, bridged until one hangs up; then the
        agent's wrap-up. An agent who transferred the caller (REFER, ``calls.transfer``)
        starts its wrap-up when its leg ends, and the caller talks on with the leg the
        transfer put in its place, as a forwarded call's caller does (``b2bua``)."""
        try:
            successor = await self._bridged(leg)
        finally:
            now, at = self.driver.moment()
            self.driver.centre.call_ended(agent, now, at)
            self.driver.changed()
        while successor is not None:
            successor = await self._bridged(successor)

    async def _bridged(self, leg: Leg) -> Leg | None:
        """``leg`` bridged to the caller until it ends, then released (a transfer the
        caller's hang-up interrupts with it); the leg its transfer put in its place, if any."""
        try:
            await self.placing.bridge_agent(leg)
            return await self.placing.transferred(leg)
        finally:
            self.placing.release(leg)

    # What the caller hears ------------------------------------------------------------

    async def _hear(self, session: CallSession, waiting: _Waiting) -> None:
        """Greeting, then music with announcements; the leave key ends the wait, the callback
        key too when the request is taken. A key pressed during a prompt stops it and is
        read at the top of the loop."""
        request = waiting.request
        keys = (request.leave_key or "") + (request.callback_key or "")
        if request.greeting:
            await session.play(request.greeting, barge_in=bool(keys))
        playing = False
        while not waiting.outcome.done():
            if not playing:
                self._music(waiting.call, on=request.music)
                playing = True
            digit = await self._digit(session, keys, request.announce_every or _QUIET)
            if digit is not None:
                if await self._pressed(session, waiting, digit):
                    return
                playing = False  # a refusal was played: the music again
                continue
            status = self.driver.centre.status(waiting.call.call_id)
            if request.announce_every is None or request.announcement is None or status is None:
                continue
            self._music(waiting.call, on=False)
            playing = False
            items = request.announcement(status.position, status.estimated_wait)
            await session.play(items, barge_in=bool(keys))

    async def _pressed(self, session: CallSession, waiting: _Waiting, digit: str) -> bool:
        """The leave or callback key was pressed: whether the wait is over."""
        if digit != waiting.request.callback_key:
            self._leave(waiting)
            return True
        self._music(waiting.call, on=False)
        asked = await self.callbacks.request(session, waiting.call, waiting.request)
        if asked is None:
            return False
        _settle(waiting, QueueOutcome(result="callback", wait=asked - waiting.joined))
        return True

    async def _digit(self, session: CallSession, keys: str, every: float) -> str | None:
        """The leave key if it is pressed within ``every`` seconds; other digits are
        ignored."""
        deadline = self.loop.time() + every
        while (left := deadline - self.loop.time()) > 0:
            entry = await session.collect(
                max_digits=1, first_timeout=left, digit_timeout=left, terminator=None
            )
            if entry.digits and entry.digits in keys:
                return entry.digits
            if not entry.digits:
                return None
        return None

    def _music(self, call: Call, *, on: bool) -> None:
        """Music on hold to the waiting caller (silence when there is none), or stop it."""
        stream = call.stream
        if stream is None or not self.media.is_open(stream):
            return
        if not on:
            self.media.stop_playback(stream)
            return
        music = self.music()
        payload = b"" if music is None else music.encoded(stream.codec)
        if payload:
            self.media.play(stream, payload, loop=True)

    def _leave(self, waiting: _Waiting) -> None:
        now, at = self.driver.moment()
        if self.driver.centre.leave(waiting.call.call_id, "key", now, at):
            _settle(waiting, QueueOutcome(result="left", wait=now - waiting.joined))
            self.driver.changed()

    # The agents' side ------------------------------------------------------------------

    def _offers(self, offers: list[Offer]) -> None:
        for offer in offers:
            if offer.callback is not None:  # a request: no live call to ring for
                self.callbacks.offered(offer)
                continue
            waiting = self._waiting.get(offer.caller)
            if waiting is None:
                continue
            for agent in offer.agents:
                waiting.rings[agent] = self.loop.create_task(self._ring(waiting, agent))

    async def _ring(self, waiting: _Waiting, agent: str) -> None:
        """Ring ``agent`` for the waiting caller; the first answer takes the caller."""
        config = waiting.request.config
        member = next(m for m in config.agents if m.number == agent)
        ring_timeout = config.ring_timeout_of(member) + _RING_SLACK
        call, centre = waiting.call, self.driver.centre
        shown = waiting.request.display.shown(waiting.caller)
        lost = waiting.lost.__contains__
        leg = await self.placing.place_agent(call, agent, ring_timeout, shown, lambda: lost(agent))
        waiting.rings.pop(agent, None)
        now, at = self.driver.moment()
        if leg is None:
            if centre.ring_failed(call.call_id, agent, "refused", now, at):
                self.driver.changed()
            return
        if waiting.outcome.done() or not centre.answered(call.call_id, agent, now, at):
            self.placing.release(leg)  # the caller left, or another agent was first
            self.driver.changed()
            return
        _settle(waiting, (agent, leg, now - waiting.joined))
        self.driver.changed()

    def _event(self, event: CentreEvent) -> None:
        waiting = self._waiting.get(getattr(event, "caller", ""))
        if waiting is None:
            return
        if isinstance(event, RingCancelled):
            if event.reason == "answered_elsewhere":
                waiting.lost.add(event.agent)
            ring = waiting.rings.pop(event.agent, None)
            if ring is not None:
                ring.cancel()  # its leg is cancelled (place_agent's cleanup)
        elif isinstance(event, CallerTimedOut):
            _settle(waiting, QueueOutcome(result="timeout", wait=event.wait))


def _settle(waiting: _Waiting, outcome: QueueOutcome | tuple[str, Leg, float]) -> None:
    if not waiting.outcome.done():
        waiting.outcome.set_result(outcome)
