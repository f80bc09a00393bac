"""Where callback requests survive a restart: the ``callback`` table of ``agents.sqlite``.

Theory of operation
-------------------
A callback request has no live call: the server is all there is of it, so it is kept on disk
from the moment it is made until it is answered or dropped (``callbacks``). The adapter
writes :class:`~callserver.queues.callbacks.StoredCallback` rows with :meth:`put` when a
request is made or fails (its attempts), and :meth:`delete`\\ s it when it is answered or
dropped; a request being called stays, so a restart in the middle of its call calls it again.
The connection commits with ``synchronous=FULL`` (each request reaches the disk before the
next write, unlike the agents' state next to it), in the agents store's file and thread.

A row holds the queue's settings as JSON (``QueueConfig``): after a restart no caller may have
run the queue's step yet, and the request is offered all the same. :meth:`load` gives the rows
in the order the callers joined; a row this version cannot read is returned apart, by its
caller's id, for the adapter to log (it stays on disk).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

from callserver.process.sqlite import open_database, transaction
from callserver.queues.callbacks import StoredCallback
from callserver.queues.queue import CallbackTarget, QueueAgent, QueueConfig, Strategy

__all__ = ["SqliteCallbackStore", "config_from_json", "config_to_json"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS callback (
    caller TEXT PRIMARY KEY,
    customer TEXT NOT NULL,
    queue TEXT NOT NULL,
    config TEXT NOT NULL,
    number TEXT NOT NULL,
    caller_id TEXT NOT NULL,
    display TEXT NOT NULL,
    priority INTEGER NOT NULL,
    skills TEXT NOT NULL,
    joined_at TEXT NOT NULL,
    attempts INTEGER NOT NULL
)
"""
_UPSERT = "INSERT OR REPLACE INTO callback VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = "caller, config, number, caller_id, display, priority, skills, joined_at, attempts"


class SqliteCallbackStore:
    """The callback requests in ``agents.sqlite`` (module docstring).

    Raises:
        sqlite3.Error: the file cannot be opened, or is not a database.
    """

    def __init__(self, path: Path, *, threads: bool = False) -> None:
        self._db = open_database(path, _SCHEMA, threads=threads)
        self._db.execute("PRAGMA synchronous=FULL")

    @classmethod
    def open(cls, data_dir: Path, *, threads: bool = False) -> SqliteCallbackStore:
        """The store of ``data_dir/agents.sqlite`` (created when missing)."""
        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(data_dir / "agents.sqlite", threads=threads)

    def load(self) -> tuple[list[StoredCallback], list[str]]:
        """The stored requests in the order their callers joined, and the callers' ids of
        the rows that could not be read."""
        found, unreadable = [], []
        for row in self._db.execute(f"SELECT {_COLUMNS} FROM callback ORDER BY joined_at"):
            try:
                found.append(_stored(row))
            except (ValueError, TypeError, KeyError):
                unreadable.append(str(row[0]))
        return found, unreadable

    def put(self, requests: Sequence[StoredCallback]) -> None:
        """Write ``requests`` (new, or with their attempts now) in one transaction."""
        if not requests:
            return
        with transaction(self._db):
            for r in requests:
                self._db.execute(
                    _UPSERT,
                    (
                        r.caller,
                        r.config.customer,
                        r.config.name,
                        config_to_json(r.config),
                        r.target.number,
                        r.target.caller_id,
                        r.target.display,
                        r.priority,
                        json.dumps(sorted(r.skills)),
                        r.joined_at.isoformat(),
                        r.attempts,
                    ),
                )

    def delete(self, callers: Sequence[str]) -> None:
        """Forget the requests of ``callers`` (answered or dropped)."""
        if not callers:
            return
        with transaction(self._db):
            self._db.executemany("DELETE FROM callback WHERE caller = ?", [(c,) for c in callers])

    def close(self) -> None:
        """Close the database."""
        self._db.close()


def config_to_json(config: QueueConfig) -> str:
    """A queue's settings as one JSON object."""
    agents = [
        {"number": a.number, "skills": dict(a.skills), "ring_timeout": a.ring_timeout}
        for a in config.agents
    ]
    data = {
        "customer": config.customer,
        "name": config.name,
        "agents": agents,
        "strategy": config.strategy.value,
        "ring_timeout": config.ring_timeout,
        "wrap_up": config.wrap_up,
        "max_waiting": config.max_waiting,
        "max_wait": config.max_wait,
        "retry": config.retry,
        "handle_seconds": config.handle_seconds,
        "callback_attempts": config.callback_attempts,
        "callback_retry": config.callback_retry,
    }
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def config_from_json(text: str) -> QueueConfig:
    """The settings :func:`config_to_json` wrote.

    Raises:
        ValueError, TypeError, KeyError: not such an object.
    """
    data = json.loads(text)
    agents = tuple(
        QueueAgent(
            number=a["number"],
            skills=MappingProxyType(dict(a["skills"])),
            ring_timeout=a["ring_timeout"],
        )
        for a in data.pop("agents")
    )
    strategy = Strategy(data.pop("strategy"))
    return QueueConfig(agents=agents, strategy=strategy, **data)


def _stored(row: tuple[object, ...]) -> StoredCallback:
    caller, config, number, caller_id, display, priority, skills, joined_at, attempts = row
    return StoredCallback(
        caller=str(caller),
        config=config_from_json(str(config)),
        target=CallbackTarget(number=str(number), caller_id=str(caller_id), display=str(display)),
        priority=int(str(priority)),
        skills=frozenset(json.loads(str(skills))),
        joined_at=datetime.fromisoformat(str(joined_at)),
        attempts=int(str(attempts)),
    )
