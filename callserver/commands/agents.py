"""``callserver agents list|login|logout|pause|unpause``: the call-centre agents, for the operator.

``list`` reads ``<data_dir>/agents.sqlite`` (the running server saves every change there as
it happens), so it works whether a server runs or not. The others change what a running
server holds: they are requests on its control socket (``process.control``,
``<data_dir>/control.sock``) answered by the same ``calls.agent_desk.AgentDesk`` the phones'
codes use, so a login respects the licences as a phone's does and the queue event log gets
its line. With no server running they do the same on the data dir itself: the agents are
restored from agents.sqlite as a start would, the request is made, and agents.sqlite and the
queue event log are written before the command ends; the output says so.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from callserver.calls.agent_desk import AgentDesk, AgentOutcome
from callserver.calls.centre_driver import CentreDriver
from callserver.config.centrex import Centrex
from callserver.policy.numbering import e164
from callserver.process.control import NotRunning, request
from callserver.queues.eventlog import EVENTS_DIR, QueueEventLog
from callserver.queues.store import SqliteAgentStore

__all__ = ["AgentRow", "agent_rows", "change_agent", "format_rows"]

FAILED = frozenset({"no_licence", "refused"})
"""Outcomes that did not do what was asked (the command exits 1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentRow:
    """One stored agent: its state and pause reason since ``since`` (UTC), calls answered."""

    number: str
    extension: str
    customer: str
    state: str
    reason: str | None
    since: str | None
    calls_answered: int


def agent_rows(data_dir: Path, customer: str | None = None) -> list[AgentRow]:
    """The agents of ``data_dir/agents.sqlite`` (none when it does not exist), of
    ``customer`` only if given, by number.

    Raises:
        sqlite3.Error: the file is not a database.
    """
    if not (data_dir / "agents.sqlite").exists():
        return []
    store = SqliteAgentStore.open(data_dir)
    try:
        agents = store.load(0.0, datetime.now(UTC))  # the monotonic times are not shown
    finally:
        store.close()
    return [
        AgentRow(
            number=a.number,
            extension=a.extension,
            customer=a.customer,
            state=a.state.value,
            reason=a.reason,
            since=None if a.at is None else a.at.isoformat(timespec="seconds"),
            calls_answered=a.calls_answered,
        )
        for a in agents
        if customer is None or a.customer == customer
    ]


def format_rows(rows: list[AgentRow], fmt: str, out: TextIO) -> None:
    """Write ``rows`` as a text table or a JSON list."""
    if fmt == "json":
        json.dump([asdict(row) for row in rows], out, indent=2)
        out.write("\n")
        return
    header = ("number", "ext", "customer", "state", "reason", "since (UTC)", "calls")
    table = [header] + [
        (
            r.number,
            r.extension,
            r.customer,
            r.state,
            r.reason or "-",
            r.since or "-",
            str(r.calls_answered),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            + "\n"
        )


def change_agent(
    data_dir: Path,
    number: str,
    action: str,
    reason: str | None,
    *,
    centrex: Callable[[], Centrex],
    licences: Callable[[str], int],
) -> tuple[AgentOutcome, bool]:
    """Do ``action`` for the agent ``number`` on the server running on ``data_dir``, else on
    the data dir itself (``centrex`` and ``licences``: the files' values); the outcome and
    whether a server did it.

    Raises:
        ValueError: a number that is not a subscriber's, or an action the server refused.
        OSError, sqlite3.Error: the data dir cannot be read or written.
    """
    agent = e164(number)
    message = {"command": f"agents.{action}", "agent": agent, "reason": reason}
    try:
        answer = request(data_dir, message)
    except NotRunning:
        return asyncio.run(_offline(data_dir, agent, action, reason, centrex, licences)), False
    if not isinstance(answer, dict):
        raise ValueError(f"the server answered {answer!r}")
    return AgentOutcome(**answer), True


async def _offline(
    data_dir: Path,
    agent: str,
    action: str,
    reason: str | None,
    centrex: Callable[[], Centrex],
    licences: Callable[[str], int],
) -> AgentOutcome:
    """The request on the data dir, as a server started there would do it."""
    driver = CentreDriver(
        centrex=centrex,
        licences=licences,
        phone_busy=lambda number: False,  # no server: no phone is in a call of ours
        loop=asyncio.get_running_loop(),
    )
    events = QueueEventLog(data_dir / EVENTS_DIR)
    try:
        driver.open(data_dir, events)
        return AgentDesk(driver, centrex).act(agent, action, reason)
    finally:
        await driver.close()
        await asyncio.to_thread(events.close)
