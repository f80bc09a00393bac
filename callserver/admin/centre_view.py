"""What the queues and agents resources read of the call centre, and their JSON.

The queues are those the centre has defined (a caller ran the step since the start, or a
callback request was restored) and, for the others, the ``queue`` steps of the dialplans in
force (``PlanQueues``: read once per plan set, which a reload replaces whole). An agent is
one the centre knows (restored, or seen) or a member of one of those queues. The JSON of an
agent is :func:`agent_json`; a queue's numbers come from ``queues.board``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol

from callserver.admin.answers import iso_utc
from callserver.config.centrex_groups import Centrex
from callserver.dialplan.plan import PlanSet
from callserver.dialplan.verbs.queue import Prepared
from callserver.queues.agents import Agent, AgentState
from callserver.queues.board import agent_key
from callserver.queues.centre import CallCentre
from callserver.queues.day_tally import DayTally
from callserver.queues.queue import QueueConfig

__all__ = ["CentreView", "PlanQueues", "agent_json", "agents_of", "memberships"]

Key = tuple[str, str]


class CentreView(Protocol):
    """What the API reads of the server's call centre (``calls.centre_driver.CentreDriver``)."""

    @property
    def centre(self) -> CallCentre:
        """The centre (read only: its queues and agents)."""

    def moment(self) -> tuple[float, datetime]:
        """(monotonic now on the centre's clock, UTC now)."""

    async def today(self) -> DayTally:
        """The queues' figures kept live, seeded with the event log's."""


class PlanQueues:
    """The settings of every queue the centre serves now: its own, else the plans' steps'.

    Args:
        plans: the dialplans in force (``dialplan.reload.Dialplans.plans``).
    """

    def __init__(self, plans: Callable[[], PlanSet]) -> None:
        self._plans = plans
        self._read: tuple[PlanSet, dict[Key, QueueConfig]] | None = None

    def configs(self, centre: CallCentre) -> dict[Key, QueueConfig]:
        """Every queue's settings by ``(customer, name)``, sorted by customer then name."""
        found = dict(self._of_plans())
        found.update((key, q.config) for key, q in centre.queues.items())
        return dict(sorted(found.items()))

    def _of_plans(self) -> dict[Key, QueueConfig]:
        plans = self._plans()
        if self._read is None or self._read[0] is not plans:
            configs: dict[Key, QueueConfig] = {}
            for number in sorted(plans.plans):
                for step in plans.plans[number].steps.values():
                    if isinstance(step.prepared, Prepared):
                        configs.setdefault(step.prepared.config.key, step.prepared.config)
            self._read = (plans, configs)
        return self._read[1]


def memberships(configs: Iterable[QueueConfig]) -> dict[str, list[str]]:
    """The names of the queues each agent (E.164 with ``+``) is an agent of, in order."""
    member: dict[str, list[str]] = {}
    for config in configs:
        for agent in config.agents:
            member.setdefault(agent_key(agent.number), []).append(config.name)
    return member


def agents_of(centre: CallCentre, members: Iterable[str]) -> list[Agent]:
    """The agents the centre knows and the queues' members, by number; a member that is no
    subscriber any more is left out."""
    known = {agent.number: agent for agent in centre.agents}
    for number in members:
        if number not in known and (agent := centre.agents.find(number)) is not None:
            known[number] = agent
    return [known[number] for number in sorted(known)]


def agent_json(agent: Agent, centrex: Centrex, queues: list[str]) -> dict[str, Any]:
    """The JSON of ``agent``: the contract's fields, then when its state last changed and
    the calls it answered since the server started."""
    subscriber = centrex.subscriber(agent.number)
    paused = agent.state is AgentState.PAUSED
    return {
        "id": agent.number,
        "name": None if subscriber is None else subscriber.name,
        "extension": agent.extension,
        "customer": agent.customer,
        "state": agent.state.value,
        "queues": queues,
        "pause_reason": agent.reason if paused else None,
        "since": None if agent.at is None else iso_utc(agent.at),
        "calls_answered": agent.calls_answered,
    }
