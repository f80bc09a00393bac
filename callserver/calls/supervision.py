"""A supervisor's phone on another phone's call: listen, whisper or barge (``*222EXT`` ...).

Theory of operation
-------------------
A phone of a subscriber with ``role: supervisor`` (centrex.yaml) dials a supervisor's code
and an extension of its group (``Supervision.route``, one of ``dialplan.routing``'s codes;
``policy.service_codes.supervision`` reads it): ``*222EXT`` listen, ``*223EXT`` whisper,
``*224EXT`` barge by default. The phone of EXT must be in a bridged call (``Calls.phone_side``:
a call it made, a call that rang it, a call it picked up). The supervisor's call is answered
and its stream joins that call's media (``media.monitoring``, on the engine's clock): in
``listen`` it hears both parties and nobody hears it, in ``whisper`` the agent (EXT's phone)
hears it too and the other party does not, in ``barge`` all three hear one another. The
bridged call's packets are relayed as before, at the moment they arrive.

It lasts until either end: the supervisor hangs up (the bridged call goes on untouched), or
the agent's leg leaves the call: the supervisor's call gets BYE. A transfer that moves the
agent's own leg to another party (the other side transferred the agent, or an attended
transfer put the agent's leg in its place) closes the bridge but not the leg: the
supervisor follows it into its new bridge (``_FOLLOW`` seconds at most for it to open), in
the same mode, logged as ``call.supervision_followed``, and the new parties' records get
``monitored_by``. It follows the leg, never the phone: a new call of the agent's phone is
another conversation, not monitored without a new code; and a transfer by which the agent
hands its caller on ends the agent's leg, and the supervision with it.

Refusals are sent after a prompt in early media (183), with the final response and the
CDR's ``end_detail``:

======================================  =====================  ===============================
what happened                           the phone hears        final response, ``end_detail``
======================================  =====================  ===============================
the caller's subscriber is no           ``service_not_allowed``  403, ``not a supervisor``
supervisor
EXT is no extension of its group        ``supervise_no_agent``   404, ``no extension EXT``
EXT's phone is in no bridged call       ``supervise_not_in_call``  480, ``EXT is not in a call``
another supervisor monitors that call   ``service_not_allowed``  486, ``EXT is monitored already``
======================================  =====================  ===============================

A trunk presenting a phone's number gets 403 without a prompt (as for pickup). CDRs: the
supervisor's record has ``monitored_call`` (the Call-ID of the monitored call's leg ``a``) and
``monitor_mode``; both records of the monitored call have ``monitored_by`` (the supervisor).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import cast

from callserver.calls.bridge import Bridge, Side
from callserver.calls.call import Call
from callserver.calls.registry import Calls
from callserver.calls.services import CallServices
from callserver.calls.session import CallSession
from callserver.config.centrex import Centrex, Subscriber
from callserver.media.monitoring import Mode
from callserver.media.prompts import Play
from callserver.policy.service_codes import supervision

__all__ = ["SUPERVISOR", "Supervision"]

SUPERVISOR = "supervisor"  # centrex.yaml's role of a subscriber that may monitor calls
_FOLLOW = 2.0  # seconds a transferred agent's leg may take to be bridged anew
_FOLLOW_POLL = 0.02  # how often the registry is looked at meanwhile (once a media tick)


class Supervision:
    """Supervisors' codes dialled from phones; see the module docstring.

    Args:
        services: the calls layer's services (media engine, clock).
        calls: the registry where the bridged calls of phones are found.
        centrex: the groups, subscribers and codes in force.
    """

    def __init__(
        self, services: CallServices, calls: Calls, centrex: Callable[[], Centrex]
    ) -> None:
        self.services = services
        self.calls = calls
        self._centrex = centrex

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The monitoring a phone's call to a supervisor's code asks for, or None for any
        other call."""
        called = session.called
        if called[:1] != "*" or not session.originating:  # no code: at once
            return None
        centrex = self._centrex()
        request = supervision(called, centrex.codes)
        if request is None or centrex.subscriber(session.caller.e164 or session.caller.raw) is None:
            return None
        mode, extension = request
        return self._supervise(session, cast(Mode, mode), extension)

    async def _supervise(self, session: CallSession, mode: Mode, extension: str) -> None:
        session.note("step", mode)
        call = self.calls.by_session(session)
        number = None if call is None or call.facts is None else call.facts.subscriber
        supervisor = None if number is None else self._centrex().subscriber(number)
        if call is None or supervisor is None:  # a trunk presenting a phone's number
            await session.hangup(code=403, cause=21, reason="normal")
            return
        if supervisor.language is not None:
            session.language = supervisor.language
        refusal = self._refusal(supervisor, extension)
        if refusal is not None:
            await self._refuse(session, call, *refusal)
            return
        await session.answer()
        agent = self._centrex().extension(supervisor.group, extension)
        found = None if agent is None else self.calls.phone_side(agent.number)
        if found is None or call.stream is None or not call.phase.in_dialog:
            await session.hangup(code=None, cause=None, reason="normal")  # it ended meanwhile
            return
        await self._monitor(call, supervisor, mode, *found)
        await session.hangup(code=None, cause=None, reason="normal")

    def _refusal(self, supervisor: Subscriber, extension: str) -> tuple[str, int, int, str] | None:
        """Why ``supervisor`` may not monitor ``extension``: (prompt, SIP code, Q.850 cause,
        end_detail), or None."""
        if supervisor.role != SUPERVISOR:
            return "service_not_allowed", 403, 21, "not a supervisor"
        agent = self._centrex().extension(supervisor.group, extension)
        if agent is None or agent is supervisor:
            return "supervise_no_agent", 404, 1, f"no extension {extension}"
        found = self.calls.phone_side(agent.number)
        if found is None:
            return "supervise_not_in_call", 480, 18, f"{extension} is not in a call"
        if found[1].stream.monitor is not None:
            return "service_not_allowed", 486, 17, f"{extension} is monitored already"
        return None

    async def _refuse(
        self, session: CallSession, call: Call, prompt: str, code: int, cause: int, detail: str
    ) -> None:
        call.log.info("call.supervision_refused", code=session.called, reason=detail, status=code)
        session.note("end_detail", detail)
        await session.answer(early=True)
        await session.play((Play(prompt),), barge_in=False)
        await session.hangup(code=code, cause=cause, reason="normal")

    async def _monitor(
        self, call: Call, supervisor: Subscriber, mode: Mode, bridge: Bridge, side: Side
    ) -> None:
        """Monitor ``bridge`` (``side`` the agent's) from ``call`` until the supervisor hangs
        up or the agent's leg leaves the call, following the leg through transfers."""
        assert call.stream is not None and call.facts is not None
        monitored = self.calls.facts_of(bridge.a)
        monitored_call = None if monitored is None else monitored.call_id
        call.facts.extra.update(monitored_call=monitored_call, monitor_mode=mode)
        self._mark(bridge, supervisor)
        call.log.info(
            "call.supervising", mode=mode, monitored_call=monitored_call, rtp_port=call.stream.port
        )
        by = "supervisor"
        try:
            while True:
                await self._watch(call, mode, bridge, side)
                moved = await self._moved(call, side)
                if moved is None:
                    by = "monitored call"
                    return
                bridge, side = moved
                self._mark(bridge, supervisor)
                followed = self.calls.facts_of(bridge.other(side))
                call.log.info(
                    "call.supervision_followed",
                    mode=mode,
                    other_call=None if followed is None else followed.call_id,
                )
        finally:
            call.log.info("call.supervision_ended", mode=mode, monitored_call=monitored_call, by=by)

    async def _watch(self, call: Call, mode: Mode, bridge: Bridge, side: Side) -> None:
        """Monitor ``bridge`` from ``call``'s stream until it closes (or the task is
        cancelled: the supervisor hung up)."""
        assert call.stream is not None
        media = self.services.media
        closed = self.calls.watch(bridge)
        monitor = media.monitor(
            mode, agent=side.stream, other=bridge.other(side).stream, supervisor=call.stream
        )
        try:
            await closed.wait()
        finally:
            self.calls.unwatch(bridge)
            media.monitors.stop(monitor)

    async def _moved(self, call: Call, side: Side) -> tuple[Bridge, Side] | None:
        """The agent's leg (its stream) in a new bridge, unmonitored, within ``_FOLLOW``
        seconds of the old one closing; None when it left the call (or the supervisor's)."""
        media, stream = self.services.media, side.stream
        deadline = self.services.loop.time() + _FOLLOW
        while self.services.loop.time() < deadline:
            if not (media.is_open(stream) and call.stream is not None and call.phase.in_dialog):
                return None
            found = self.calls.side_by_stream(stream.stream_id)
            if found is not None:
                bridge, moved = found
                free = bridge.other(moved).stream.monitor is None and stream.monitor is None
                return found if free else None
            await asyncio.sleep(_FOLLOW_POLL)
        return None

    def _mark(self, bridge: Bridge, supervisor: Subscriber) -> None:
        """Both records of ``bridge``'s call name the supervisor (``monitored_by``)."""
        for facts in (self.calls.facts_of(bridge.a), self.calls.facts_of(bridge.b)):
            if facts is not None:
                facts.extra["monitored_by"] = supervisor.number
