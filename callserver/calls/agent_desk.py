"""Agents log in, log out and pause: from their phone's codes and the operator's commands.

``AgentDesk.act`` is the one place an agent's own request meets the call centre (through the
server's ``CentreDriver``): the phone's codes (``route``, a hook of ``dialplan.routing`` like
``calls.service_codes``) and the control channel's ``agents.*`` requests (``handlers``) both
go through it, so both give the same answer:

================  ===================================  =====================================
request           outcome (the agent's state after)    the phone hears
================  ===================================  =====================================
``*45``           ``logged_in`` (also when it was)     ``agent_logged_in``
``*45``           ``no_licence`` (customer's licences  ``agent_no_licence``
                  all taken: stays logged out)
``*46``           ``logged_out`` (also when it was)    ``agent_logged_out``
``*47*REASON#``   ``paused`` (a new reason replaces    ``agent_paused``
                  the old)
``*47#``          ``paused`` with no reason code       ``agent_paused``
``#47#``          ``available`` (also when it was)     ``agent_available``
pause, ``#47#``   ``logged_out`` when logged out       ``agent_logged_out``
any               ``refused``: ringing or in a queue   ``service_not_allowed``
                  call (finish it first)
a code mistyped   ``invalid``                          ``service_invalid``
================  ===================================  =====================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime

import structlog

from callserver.calls.centre_driver import CentreDriver
from callserver.calls.session import CallSession
from callserver.config.centrex import Centrex
from callserver.media.prompts import Play
from callserver.policy.service_codes import AgentCode, Invalid, agent_code
from callserver.queues.agents import (
    AgentState,
    AgentStateChanged,
    NoLicence,
    TransitionRefused,
    UnknownAgent,
)

__all__ = ["ACTIONS", "AgentDesk", "AgentOutcome"]

log = structlog.get_logger("callserver.queues")

ACTIONS = ("login", "logout", "pause", "unpause")
_PROMPTS = {
    "logged_in": "agent_logged_in",
    "logged_out": "agent_logged_out",
    "paused": "agent_paused",
    "available": "agent_available",
    "no_licence": "agent_no_licence",
    "refused": "service_not_allowed",
    "invalid": "service_invalid",
}
_OUTCOME = {
    AgentState.LOGGED_OUT: "logged_out",
    AgentState.AVAILABLE: "available",
    AgentState.PAUSED: "paused",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentOutcome:
    """What a request did: ``outcome`` (module docstring), the agent's ``state`` and pause
    ``reason`` after it, and ``detail`` for a person."""

    agent: str
    outcome: str
    state: str
    reason: str | None
    detail: str


class AgentDesk:
    """The agents' own requests (module docstring).

    Args:
        driver: the server's call centre.
        centrex: the Centrex in force (the phone's subscriber, the codes).
    """

    def __init__(self, driver: CentreDriver, centrex: Callable[[], Centrex]) -> None:
        self._driver, self._centrex = driver, centrex

    def act(self, number: str, action: str, reason: str | None = None) -> AgentOutcome:
        """Do ``action`` (``login``, ``logout``, ``pause`` with its ``reason`` code or None,
        ``unpause``) for the agent ``number``.

        Raises:
            UnknownAgent: ``number`` is no Centrex subscriber.
            ValueError: an unknown action, or a reason with another action than pause.
        """
        if action not in ACTIONS or (action != "pause" and reason is not None):
            raise ValueError(
                f"{action!r}: an agent can {', '.join(ACTIONS)} (a reason only with a pause)"
            )
        centre = self._driver.centre
        agent = centre.agents.get(number)
        now, at = self._driver.moment()
        try:
            result = self._input(agent.number, agent.state, action, reason, now, at)
        finally:
            self._driver.changed()
        after = centre.agents.get(agent.number)
        if isinstance(result, NoLicence):
            outcome = "no_licence"
            detail = f"no licence: {result.customer} has {result.licences} agent(s) logged in"
        elif isinstance(result, TransitionRefused):
            outcome, detail = "refused", str(result)
        else:  # the state the request left (an offer may have rung the agent since)
            state = agent.state if result is None else result.state
            logged_in = action == "login" and state is not AgentState.LOGGED_OUT
            outcome = "logged_in" if logged_in else _OUTCOME.get(state, "refused")
            detail = f"agent {after.number} is {after.state.value}"
        log.info("queues.agent_request", agent=after.number, action=action, outcome=outcome)
        return AgentOutcome(
            agent=after.number,
            outcome=outcome,
            state=after.state.value,
            reason=after.reason,
            detail=detail,
        )

    def _input(
        self,
        number: str,
        state: AgentState,
        action: str,
        reason: str | None,
        now: float,
        at: datetime,
    ) -> AgentStateChanged | NoLicence | TransitionRefused | None:
        """The centre's input for ``action``; a request for the state the agent is in
        already changes nothing, and a refused one is returned, not raised."""
        centre, logged_out = self._driver.centre, state is AgentState.LOGGED_OUT
        try:
            if action == "login":
                return None if not logged_out else centre.login(number, now, at)
            if action == "logout":
                return None if logged_out else centre.logout(number, now, at)
            if logged_out or (action == "unpause" and state is AgentState.AVAILABLE):
                return None
            if action == "pause":
                return centre.pause(number, reason or None, now, at)
            return centre.unpause(number, now, at)
        except TransitionRefused as refused:
            return refused

    # -- the phone's codes ---------------------------------------------------------------------

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The answer to an agent's code the session's phone dialled, or None (not one)."""
        if session.subscriber is None:
            return None
        centrex = self._centrex()
        subscriber = centrex.subscriber(session.subscriber)
        request = None if subscriber is None else agent_code(session.called, centrex.codes)
        if subscriber is None or request is None:
            return None
        if subscriber.language is not None:
            session.language = subscriber.language
        return self._answer(session, subscriber.number, request)

    async def _answer(
        self, session: CallSession, number: str, request: AgentCode | Invalid
    ) -> None:
        if isinstance(request, Invalid):
            log.info("queues.agent_code_invalid", agent=number, reason=request.reason)
            prompt = _PROMPTS["invalid"]
        else:
            prompt = _PROMPTS[self.act(number, request.action, request.reason).outcome]
        await session.play((Play(prompt),), barge_in=False)
        await session.hangup(code=None, cause=None, reason="normal")

    # -- the control channel -------------------------------------------------------------------

    def handlers(self) -> dict[str, Callable[[Mapping[str, object]], dict[str, object]]]:
        """The control channel's ``agents.login`` ... requests: ``{"agent": NUMBER}`` and a
        pause's ``"reason"`` (optional); the answer is the :class:`AgentOutcome`'s fields.
        Also ``centre.timings``: how long the centre's decisions took
        (``calls.centre_timings``), cleared once answered with ``{"clear": true}``."""
        handlers = {f"agents.{action}": self._handler(action) for action in ACTIONS}
        return {**handlers, "centre.timings": self._timings}

    def _timings(self, request: Mapping[str, object]) -> dict[str, object]:
        clear = request.get("clear", False)
        if not isinstance(clear, bool):
            raise ValueError('"clear" is true or false')
        return self._driver.timings.figures(clear=clear)

    def _handler(self, action: str) -> Callable[[Mapping[str, object]], dict[str, object]]:
        def handle(request: Mapping[str, object]) -> dict[str, object]:
            number, reason = request.get("agent"), request.get("reason")
            if not isinstance(number, str) or not (reason is None or isinstance(reason, str)):
                raise ValueError('a request names its "agent" (and a pause its "reason")')
            try:
                return asdict(self.act(number, action, reason))
            except UnknownAgent as exc:
                raise ValueError(str(exc)) from None

        return handle
