"""Where agent state survives a restart: ``<data_dir>/agents.sqlite``.

Theory of operation
-------------------
The call centre is sans-IO: each agent change comes out as an ``AgentStateChanged``, and its
adapter hands the agents that changed (``Agents.get``) to :meth:`SqliteAgentStore.apply`, one
transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``, WAL, ``synchronous=NORMAL``: as the registrar's
and the services' stores). A row is an agent's state, pause reason, calls answered, and three
wall times (UTC): its last change, when it became idle, when its last call ended.

Monotonic times mean nothing after a restart, so :meth:`SqliteAgentStore.load` gives each
agent its monotonic times back on the new clock: ``now - (at - stored wall time)``. The agents
come back as stored; ``CallCentre.restore`` then puts each through ``RESTARTED``: logged-in
and paused agents (with their reason) stay so, an agent that was ringing, in a call or in
wrap-up comes back ``AVAILABLE`` (its call did not outlive the process).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from callserver.process.sqlite import open_database, transaction
from callserver.queues.agents import Agent, AgentState

__all__ = ["SqliteAgentStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS agent (
    number TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    extension TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    changed_at TEXT,
    calls_answered INTEGER NOT NULL,
    idle_since_at TEXT,
    last_call_end_at TEXT
)
"""
_UPSERT = "INSERT OR REPLACE INTO agent VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = (
    "number, customer, extension, state, reason, changed_at, calls_answered, idle_since_at,"
    " last_call_end_at"
)


class SqliteAgentStore:
    """The agents' state in a SQLite file (``agents.sqlite`` in the data dir).

    Raises:
        sqlite3.Error: the file cannot be opened, or is not a database.
    """

    def __init__(self, path: Path, *, threads: bool = False) -> None:
        self._db = open_database(path, _SCHEMA, threads=threads)

    @classmethod
    def open(cls, data_dir: Path, *, threads: bool = False) -> SqliteAgentStore:
        """The store of ``data_dir/agents.sqlite`` (created when missing)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / "agents.sqlite", threads=threads)

    def load(self, now: float, at: datetime) -> list[Agent]:
        """Every stored agent, its monotonic times put on the clock of ``now`` (``at`` the
        wall time of ``now``); a row whose state this version does not know is skipped."""
        known = {state.value: state for state in AgentState}
        agents = []
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM agent ORDER BY number"):
            number, customer, extension, state, reason, changed, calls, idle, ended = row
            if state not in known:
                continue
            changed_at = _wall(changed)
            idle_at = _wall(idle)
            agents.append(
                Agent(
                    number=str(number),
                    customer=str(customer),
                    extension=str(extension),
                    state=known[state],
                    reason=None if reason is None else str(reason),
                    since=_monotonic(changed_at, now, at),
                    at=changed_at,
                    calls_answered=int(calls),
                    idle_since=_monotonic(idle_at, now, at),
                    last_call_end_at=_wall(ended),
                )
            )
        return agents

    def apply(self, agents: Sequence[Agent], now: float, at: datetime) -> None:
        """Write ``agents`` (their state now) in one transaction; ``at`` is the wall time of
        ``now``, which turns their idle time into a wall time."""
        if not agents:
            return
        with transaction(self._db):
            for agent in agents:
                idle_at = at.timestamp() - (now - agent.idle_since)
                ended = agent.last_call_end_at
                self._db.execute(
                    _UPSERT,
                    (
                        agent.number,
                        agent.customer,
                        agent.extension,
                        agent.state.value,
                        agent.reason,
                        None if agent.at is None else agent.at.isoformat(),
                        agent.calls_answered,
                        datetime.fromtimestamp(idle_at, at.tzinfo).isoformat(),
                        None if ended is None else ended.isoformat(),
                    ),
                )

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def _wall(text: object) -> datetime | None:
    return None if text is None else datetime.fromisoformat(str(text))


def _monotonic(wall: datetime | None, now: float, at: datetime) -> float:
    """The monotonic time of ``wall`` on the clock where ``now`` is ``at``."""
    return now if wall is None else now - (at - wall).total_seconds()
