"""``/api/agents``: the call centre's agents, and their login, logout, pause and unpause.

An agent is named by its number (E.164; ``+`` optional, any form ``callserver agents``
takes). The changes go through ``calls.agent_desk.AgentDesk.act``, the one entry point the
phones' codes (``*45`` ...) and the control socket's ``callserver agents login ...`` use: the
licences are checked the same way, the same ``queues.agent_request`` line is logged and the
queue event log gets the same lines. A change the centre refuses (no licence left, an agent
ringing or talking) is 409 saying why; a customer token changes its own customer's agents
only (another's is 404).

A login serves every queue that lists the agent (the dialplans' ``queue`` steps say who
serves which queue); a ``"queues"`` body, when sent, must name exactly those.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.bodies import json_object
from callserver.admin.centre_view import (
    CentreView,
    PlanQueues,
    agent_json,
    agents_of,
    memberships,
)
from callserver.admin.params import check_known
from callserver.calls.agent_desk import ACTIONS, AgentOutcome
from callserver.config.centrex_groups import Centrex
from callserver.policy.numbering import e164
from callserver.queues.agents import Agent, UnknownAgent

__all__ = ["AgentActions", "AgentsApi"]

_REASON = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_FAILED = {
    "no_licence": "log another agent of the customer out, or raise its agents in trunks.yaml",
    "refused": "try again once the agent's call or ring is over",
}


class AgentActions(Protocol):
    """The agents' requests (``calls.agent_desk.AgentDesk``)."""

    def act(self, number: str, action: str, reason: str | None = None) -> AgentOutcome:
        """Do ``action`` for the agent ``number`` (raises ``UnknownAgent``)."""


class AgentsApi:
    """The handlers of ``/api/agents`` and ``/api/agents/{id}/<action>``.

    Args:
        driver: the server's call centre (read).
        desk: where agents' requests are made (the phones' and the control socket's).
        queues: the queues in force (who serves which).
        centrex: the Centrex in force (the agents' names).
    """

    def __init__(
        self,
        driver: CentreView,
        desk: AgentActions,
        queues: PlanQueues,
        centrex: Callable[[], Centrex],
    ) -> None:
        self._driver, self._desk = driver, desk
        self._queues, self._centrex = queues, centrex

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; POST each action."""
        router.add_get("/api/agents", self.list_agents)
        for action in ACTIONS:
            router.add_post(f"/api/agents/{{id}}/{action}", self._handler(action))

    async def list_agents(self, request: web.Request) -> web.Response:
        """The agents the token may see, by number."""
        check_known(request, ())
        token, centre = request_token(), self._driver.centre
        member = memberships(self._queues.configs(centre).values())
        centrex = self._centrex()
        return web.json_response(
            {
                "agents": [
                    agent_json(agent, centrex, member.get(agent.number, []))
                    for agent in agents_of(centre, member)
                    if sees_customer(token, agent.customer)
                ]
            }
        )

    def _handler(self, action: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            return await self._act(request, action)

        handle.__doc__ = f"POST /api/agents/{{id}}/{action}"
        return handle

    async def _act(self, request: web.Request, action: str) -> web.Response:
        agent = self._find(request)
        body = await _body(request, action)
        member = memberships(self._queues.configs(self._driver.centre).values())
        queues = member.get(agent.number, [])
        asked = body.get("queues")
        if asked is not None and sorted(asked) != sorted(queues):
            raise web.HTTPBadRequest(
                text=f"queues: agent {agent.number} serves every queue that lists it "
                f"({', '.join(queues) or 'none'}): leave queues out, or name them all"
            )
        try:
            outcome = self._desk.act(agent.number, action, body.get("reason"))
        except UnknownAgent:  # removed from centrex.yaml meanwhile
            raise web.HTTPNotFound(text=f"no agent {agent.number}") from None
        if outcome.outcome in _FAILED:
            raise web.HTTPConflict(text=f"{outcome.detail}: {_FAILED[outcome.outcome]}")
        now = self._driver.centre.agents.get(agent.number)
        view = agent_json(now, self._centrex(), queues)
        return web.json_response({**view, "outcome": outcome.outcome, "detail": outcome.detail})

    def _find(self, request: web.Request) -> Agent:
        """The agent of the path's id the token may see, else 404."""
        written = request.match_info["id"]
        try:
            number = e164(written)
        except ValueError:
            number = None
        agent = None if number is None else self._driver.centre.agents.find(number)
        if agent is None or not sees_customer(request_token(), agent.customer):
            raise web.HTTPNotFound(
                text=f"no agent {written}: an agent is a Centrex subscriber's number "
                "(GET /api/agents lists them)"
            )
        return agent


async def _body(request: web.Request, action: str) -> dict[str, Any]:
    """The request's JSON object (none: ``{}``), checked for ``action``'s fields."""
    allowed = {"login": "queues", "pause": "reason"}.get(action)
    example = {"login": '{"queues": ["sales"]}', "pause": '{"reason": "lunch"}'}.get(action, "{}")
    body = await json_object(request, f"{example} or nothing", optional=True)
    for name in body:
        if name != allowed:
            takes = f'takes only "{allowed}"' if allowed else "takes no fields"
            raise web.HTTPBadRequest(text=f"{name}: {action} {takes}")
    reason = body.get("reason")
    if reason is not None and not (isinstance(reason, str) and _REASON.fullmatch(reason)):
        raise web.HTTPBadRequest(
            text='reason: a reason code of 1 to 32 letters, digits, "_", "." or "-" (or null)'
        )
    queues = body.get("queues")
    if queues is not None and not (
        isinstance(queues, list) and all(isinstance(q, str) for q in queues)
    ):
        raise web.HTTPBadRequest(text="queues: a list of queue names")
    return body
