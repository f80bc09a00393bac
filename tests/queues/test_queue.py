"""A queue's settings, its callers' order and positions, and the estimated wait."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from callserver.queues.queue import Caller, Queue, QueueAgent, QueueConfig

from .support import START, agent, queue


def caller(name: str, priority: int, sequence: int) -> Caller:
    """A caller joining ``sequence``-th with ``priority``."""
    return Caller(name, priority, frozenset(), (-priority, sequence), float(sequence), START)


def test_callers_wait_by_priority_then_joining() -> None:
    """VIPs (higher priority) go ahead of everyone who joined before them; positions 1..n."""
    q = Queue(queue())
    assert q.add(caller("a", 0, 1)) == 1
    assert q.add(caller("b", 0, 2)) == 2
    assert q.add(caller("vip", 5, 3)) == 1
    assert q.add(caller("key", 1, 4)) == 2
    assert [c.id for c in q.waiting()] == ["vip", "key", "a", "b"]
    assert [q.position(c) for c in q.waiting()] == [1, 2, 3, 4]
    assert q.remove(q.callers["key"]) == 2
    assert [(c.id, q.position(c)) for c in q.waiting()] == [("vip", 1), ("a", 2), ("b", 3)]
    assert q.first().id == "vip"
    assert len(q) == 3


def test_estimate_is_handle_time_times_position_over_serving_agents() -> None:
    """Before any call the configured handle time; then the mean of the last 20 calls."""
    q = Queue(queue(handle_seconds=120.0))
    assert q.estimate(3, 2) == 180.0
    assert q.estimate(1, 0) is None
    for seconds in [100.0] * 30 + [40.0] * 20:
        q.handled(seconds)
    assert q.handle_time() == 40.0
    assert q.estimate(4, 2) == 80.0


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ring_timeout": 0}, "ring_timeout must be above 0 seconds"),
        ({"wrap_up": -1}, "wrap_up cannot be negative"),
        ({"max_waiting": 0}, "max_waiting must be 1 or more"),
        ({"max_wait": 0}, "max_wait must be above 0 seconds"),
        ({"retry": 0.5}, "retry must be 1 second or more"),
        ({"handle_seconds": 0}, "handle_seconds must be above 0"),
    ],
)
def test_settings_out_of_range_are_refused(settings: dict[str, float], message: str) -> None:
    """Each limit out of its range is a ValueError naming the queue and the setting."""
    with pytest.raises(ValueError, match=f"queue acme/sales: {message}"):
        queue(**settings)


def test_an_agent_listed_twice_is_refused() -> None:
    """One agent twice in a queue is a ValueError naming it."""
    twice = [QueueAgent(number=agent(1)), QueueAgent(number=agent(1))]
    with pytest.raises(ValueError, match=r"agents listed twice: \['\+38733100201'\]"):
        QueueConfig(customer="acme", name="sales", agents=tuple(twice))


@pytest.mark.parametrize("level", [0, 101])
def test_skill_levels_go_from_1_to_100(level: int) -> None:
    """A skill level outside 1-100 is refused."""
    with pytest.raises(ValueError, match=r"skill levels go from 1 to 100: \['de'\]"):
        QueueAgent(number=agent(1), skills=MappingProxyType({"de": level}))


def test_an_agents_own_ring_timeout_wins() -> None:
    """An agent's ring_timeout overrides the queue's; a non-positive one is refused."""
    own = QueueAgent(number=agent(1), ring_timeout=8.0)
    config = queue([own, QueueAgent(number=agent(2))], ring_timeout=20.0)
    assert [config.ring_timeout_of(a) for a in config.agents] == [8.0, 20.0]
    with pytest.raises(ValueError, match="ring timeout must be above 0"):
        QueueAgent(number=agent(1), ring_timeout=0)
