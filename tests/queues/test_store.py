"""agents.sqlite: agent state survives a restart, put back on the new monotonic clock."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from callserver.queues.agents import AgentState
from callserver.queues.store import SqliteAgentStore

from .support import QUEUE, agent, at, logged_in, make_centre, queue


def test_agents_survive_a_reopen_and_ringing_ones_come_back_available(tmp_path: Path) -> None:
    """Logged-in, paused (with reason) and talking agents are stored; after the reopen the
    talking one is available, times and counters are as they were."""
    centre = make_centre(queue(1, wrap_up=0))  # agents 2-4 are in no queue
    logged_in(centre, agent(1), agent(2), agent(3), agent(4), now=10.0)
    centre.logout(agent(4), 11.0, at(11))
    centre.pause(agent(2), "training", 12.0, at(12))
    centre.join(QUEUE, "c1", 13.0, at(13))
    centre.offers(13.0, at(13))
    centre.answered("c1", agent(1), 14.0, at(14))
    centre.call_ended(agent(1), 74.0, at(74))
    centre.join(QUEUE, "c2", 80.0, at(80))
    centre.offers(80.0, at(80))
    centre.answered("c2", agent(1), 81.0, at(81))
    store = SqliteAgentStore.open(tmp_path / "data")
    store.apply(list(centre.agents), 90.0, at(90))
    store.close()

    # The new process: its monotonic clock reads 5.0 at wall time at(1000).
    again = SqliteAgentStore.open(tmp_path / "data")
    loaded = {a.number: a for a in again.load(5.0, at(1000))}
    again.close()
    first = loaded[agent(1)]
    assert (first.state, first.calls_answered, first.last_call_end_at) == (
        AgentState.IN_CALL,
        2,
        at(74),
    )
    assert first.idle_since == 5.0 - (1000 - 74)
    assert (first.at, first.since) == (at(81), 5.0 - (1000 - 81))
    assert (loaded[agent(2)].state, loaded[agent(2)].reason) == (AgentState.PAUSED, "training")
    assert loaded[agent(4)].state is AgentState.LOGGED_OUT

    restarted = make_centre(queue(4))
    restarted.restore(loaded.values(), 5.0, at(1000))
    states = [restarted.agents.state_of(agent(n)) for n in range(1, 5)]
    assert states == [
        AgentState.AVAILABLE,
        AgentState.PAUSED,
        AgentState.AVAILABLE,
        AgentState.LOGGED_OUT,
    ]
    assert restarted.agents.get(agent(2)).reason == "training"
    assert restarted.agents.logged_in("acme") == 3


def test_a_row_of_an_unknown_state_is_skipped(tmp_path: Path) -> None:
    """A state this version does not know (a newer one's) is not loaded."""
    store = SqliteAgentStore(tmp_path / "agents.sqlite")
    centre = make_centre(queue(2))
    logged_in(centre, agent(1), agent(2))
    store.apply(list(centre.agents), 1.0, at(1))
    store.close()
    with sqlite3.connect(tmp_path / "agents.sqlite") as db:
        db.execute("UPDATE agent SET state = 'on_break' WHERE number = ?", (agent(2),))
    again = SqliteAgentStore(tmp_path / "agents.sqlite")
    assert [a.number for a in again.load(1.0, at(1))] == [agent(1)]
    again.close()


def test_apply_writes_the_latest_state_over_the_last(tmp_path: Path) -> None:
    """Applying an agent again replaces its row; nothing to apply writes nothing."""
    store = SqliteAgentStore(tmp_path / "agents.sqlite")
    centre = make_centre(queue(1))
    logged_in(centre, agent(1))
    store.apply(list(centre.agents), 1.0, at(1))
    centre.logout(agent(1), 2.0, at(2))
    store.apply(list(centre.agents), 2.0, at(2))
    store.apply([], 3.0, at(3))
    (only,) = store.load(3.0, at(3))
    assert (only.state, only.at) == (AgentState.LOGGED_OUT, at(2))
    store.close()
