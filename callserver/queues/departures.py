"""Agents a configuration reload logs out: lowered licences, subscribers removed.

Theory of operation
-------------------
A reload (SIGHUP) may change centrex.yaml and trunks.yaml under logged-in agents.
:meth:`Departures.refresh` first takes every known agent's extension and customer from the
Centrex in force (``Agents.refresh``), then logs out:

- every logged-in agent that is no longer a subscriber (reason ``removed``);
- for each customer with more agents logged in than its licences now allow, as many agents
  as it is over (reason ``licence``), the most recently logged-in first: first those not on
  a call (available, paused or in wrap-up), then, only if these are too few, those whose
  phone rings for a caller or who talk, again the most recent first.

An agent on a call is not cut off: it is marked and logged out as soon as it is on none
(its ring ends unanswered or is cancelled, or its call ends: its wrap-up is cut short;
``Ringing._leave_if_due``). Until then it keeps its licence, so the customer's next login is
still refused. Each logout is an ``AgentStateChanged`` whose ``reason`` says why (the queue
log's ``logout`` line carries it); :meth:`Departures.refresh` returns a :class:`Departure`
for each agent chosen, ``pending`` when its logout waits for its call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callserver.queues.agents import Agent, AgentEvent, AgentState
from callserver.queues.ringing import ON_A_CALL, Ringing

__all__ = ["LICENCE", "REMOVED", "Departure", "Departures"]

LICENCE = "licence"
REMOVED = "removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Departure:
    """``agent`` of ``customer`` is logged out for ``reason`` (``licence``: its customer
    now has ``licences``; ``removed``: no longer a subscriber); ``pending`` when the logout
    waits for the end of its call."""

    agent: str
    customer: str
    reason: str
    licences: int
    pending: bool


class Departures(Ringing):
    """The reload's logouts (module docstring); the base of ``CallCentre``."""

    def refresh(self, now: float, at: datetime) -> list[Departure]:
        """The Centrex and the licences in force changed: refresh the agents and log out
        those removed or beyond their customer's licences (module docstring)."""
        self._given.clear()  # an agent may have moved: each queue is checked at its next join
        agents, out = self.agents, []
        for number in agents.refresh():
            if agents.state_of(number) is not AgentState.LOGGED_OUT:
                out.append(self._depart(agents.get(number), REMOVED, now, at))
        customers = {a.customer for a in agents if a.logged_in}
        for customer in sorted(customers):
            logged_in = agents.logged_in_order(customer)
            leaving = sum(1 for a in logged_in if a.number in self._leaving)
            over = len(logged_in) - agents.licences(customer) - leaving
            staying = [a for a in logged_in if a.number not in self._leaving]
            for agent in _latest(staying)[: max(0, over)]:
                out.append(self._depart(agent, LICENCE, now, at))
        return out

    def _depart(self, agent: Agent, reason: str, now: float, at: datetime) -> Departure:
        pending = agent.state in ON_A_CALL
        if pending:
            self._leaving[agent.number] = reason
        else:
            self._change(agent.number, AgentEvent.LOGOUT, now, at, reason)
        return Departure(
            agent=agent.number,
            customer=agent.customer,
            reason=reason,
            licences=self.agents.licences(agent.customer),
            pending=pending,
        )


def _latest(logged_in: list[Agent]) -> list[Agent]:
    """The order in which lowered licences log agents out: those on no call, the latest
    login first, then those on a call, the latest login first."""
    latest = logged_in[::-1]
    return [a for a in latest if a.state not in ON_A_CALL] + [
        a for a in latest if a.state in ON_A_CALL
    ]
