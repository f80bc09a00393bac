"""agents.sqlite's callback requests: written, read back in joining order, deleted, and a row
this version cannot read set apart."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import MappingProxyType

from callserver.queues.callback_store import (
    SqliteCallbackStore,
    config_from_json,
    config_to_json,
)
from callserver.queues.callbacks import StoredCallback
from callserver.queues.queue import CallbackTarget, QueueAgent, QueueConfig, Strategy
from callserver.queues.store import SqliteAgentStore

from .support import agent, at

CONFIG = QueueConfig(
    customer="acme",
    name="sales",
    agents=(
        QueueAgent(number=agent(1), skills=MappingProxyType({"bs": 100, "en": 40})),
        QueueAgent(number=agent(2), ring_timeout=20.0),
    ),
    strategy=Strategy.SKILLS,
    max_waiting=5,
    max_wait=600.0,
    callback_attempts=4,
    callback_retry=120.0,
)


def _request(caller: str, joined: float, attempts: int = 0) -> StoredCallback:
    return StoredCallback(
        caller=caller,
        config=CONFIG,
        target=CallbackTarget(number="+38761123456", caller_id="+38733100200", display="CB "),
        priority=10,
        skills=frozenset({"bs"}),
        joined_at=at(joined),
        attempts=attempts,
    )


def test_a_queues_settings_survive_the_json_round_trip() -> None:
    """Every setting of a queue, skills and an agent's ring timeout included, comes back."""
    assert config_from_json(config_to_json(CONFIG)) == CONFIG


def test_requests_come_back_in_joining_order_updated_and_deleted(tmp_path: Path) -> None:
    """Two requests written (the later joiner first), one updated with its attempts, then the
    other deleted: a reopen reads what is left, beside the agents' table of the same file."""
    store = SqliteCallbackStore.open(tmp_path)
    store.put([_request("c2", 20.0), _request("c1", 10.0)])
    store.put([_request("c2", 20.0, attempts=1)])
    assert [r.caller for r in store.load()[0]] == ["c1", "c2"]
    store.delete(["c1"])
    store.close()
    agents = SqliteAgentStore.open(tmp_path)  # the same file holds the agents
    assert agents.load(0.0, at(0)) == []
    agents.close()
    again = SqliteCallbackStore.open(tmp_path)
    assert again.load() == ([_request("c2", 20.0, attempts=1)], [])
    again.close()


def test_an_unreadable_row_is_set_apart_and_kept(tmp_path: Path) -> None:
    """A row whose queue settings this version cannot read is named, not loaded, not lost."""
    store = SqliteCallbackStore.open(tmp_path)
    store.put([_request("c1", 10.0), _request("c2", 20.0)])
    store.close()
    with sqlite3.connect(tmp_path / "agents.sqlite") as db:
        db.execute("UPDATE callback SET config = '{\"strategy\": \"loudest\"}' WHERE caller = 'c2'")
    store = SqliteCallbackStore.open(tmp_path)
    loaded, unreadable = store.load()
    assert ([r.caller for r in loaded], unreadable) == (["c1"], ["c2"])
    store.close()
    with sqlite3.connect(tmp_path / "agents.sqlite") as db:
        assert db.execute("SELECT count(*) FROM callback").fetchone() == (2,)
