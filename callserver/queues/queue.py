"""A queue: its settings, its waiting callers in order, and whom a strategy rings.

Theory of operation
-------------------
A queue is ``(customer, name)`` with its agents (numbers of the customer's subscribers, each
with skills ``{name: level 1-100}`` and optionally its own ring timeout), a
:class:`Strategy`, the seconds an agent's phone rings, the wrap-up seconds after each call, the
most callers that may wait and the longest a caller waits (:class:`QueueConfig`).

Callers wait in order of ``priority`` (higher first: the dialplan's VIP or key customers), then
of joining; a caller's position is its 1-based place in that order, so positions are always
1..n. The order is a sorted list of ``(-priority, sequence)`` keys (and the callers beside
them): joining and leaving are a bisection and a list move, a position is a bisection.

Estimated wait: ``handle time x position / serving agents``. The handle time is the mean of the
queue's last 20 calls (talk and wrap-up); before any call it is ``handle_seconds``. Serving
agents are the queue's logged-in, unpaused agents that have the caller's required skills (free,
ringing, talking or in wrap-up); with none the estimate is unknown (None).

Whom to ring (:func:`choose`), among the free agents that have every skill the caller needs
and have not yet let this caller's ring go unanswered in this round:

- ``ring_all``: every one of them at once; the first to answer takes the call;
- ``longest_idle``: the one whose last call ended longest ago (or who logged in earliest);
- ``round_robin``: the next one in the queue's list after the one rung last;
- ``fewest_calls``: the one that answered the fewest of this queue's calls since the server
  started, then the longest idle;
- ``skills``: the highest total level in the skills the caller needs, then the longest idle.
"""

from __future__ import annotations

import bisect
from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from types import MappingProxyType

from callserver.queues.agents import Agent

__all__ = ["CallbackTarget", "Caller", "Queue", "QueueAgent", "QueueConfig", "Strategy", "choose"]

HANDLE_HISTORY = 20  # calls the estimated wait's handle time is the mean of


class Strategy(Enum):
    """How a queue picks the agent to ring (module docstring)."""

    RING_ALL = "ring_all"
    LONGEST_IDLE = "longest_idle"
    ROUND_ROBIN = "round_robin"
    FEWEST_CALLS = "fewest_calls"
    SKILLS = "skills"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueAgent:
    """An agent of a queue: its number (E.164), skills and its own ring timeout (None: the
    queue's).

    Raises:
        ValueError: a skill level outside 1-100, or a ring timeout not above 0.
    """

    number: str
    skills: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    ring_timeout: float | None = None

    def __post_init__(self) -> None:
        wrong = sorted(name for name, level in self.skills.items() if not 1 <= level <= 100)
        if wrong:
            raise ValueError(f"agent {self.number}: skill levels go from 1 to 100: {wrong}")
        if self.ring_timeout is not None and self.ring_timeout <= 0:
            raise ValueError(f"agent {self.number}: the ring timeout must be above 0 seconds")

    def has(self, skills: frozenset[str]) -> bool:
        """It has every skill of ``skills``."""
        return all(name in self.skills for name in skills)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """A queue's settings (module docstring). ``retry``: the seconds before a caller whose
    every agent let its ring go unanswered is offered again; ``callback_attempts``: the calls
    made to a callback request's number before it is dropped, ``callback_retry`` the seconds
    between them.

    Raises:
        ValueError: an agent listed twice, or a limit out of its range.
    """

    customer: str
    name: str
    agents: tuple[QueueAgent, ...]
    strategy: Strategy = Strategy.LONGEST_IDLE
    ring_timeout: float = 15.0
    wrap_up: float = 10.0
    max_waiting: int | None = None
    max_wait: float | None = None
    retry: float = 5.0
    handle_seconds: float = 180.0
    callback_attempts: int = 3
    callback_retry: float = 300.0

    def __post_init__(self) -> None:
        numbers = [agent.number for agent in self.agents]
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        checks = [
            (not twice, f"agents listed twice: {twice}"),
            (self.ring_timeout > 0, "ring_timeout must be above 0 seconds"),
            (self.wrap_up >= 0, "wrap_up cannot be negative"),
            (self.max_waiting is None or self.max_waiting >= 1, "max_waiting must be 1 or more"),
            (self.max_wait is None or self.max_wait > 0, "max_wait must be above 0 seconds"),
            (self.retry >= 1, "retry must be 1 second or more"),
            (self.handle_seconds > 0, "handle_seconds must be above 0"),
            (1 <= self.callback_attempts <= 20, "callback_attempts must be from 1 to 20"),
            (self.callback_retry >= 1, "callback_retry must be 1 second or more"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(f"queue {self.customer}/{self.name}: {message}")

    @property
    def key(self) -> tuple[str, str]:
        """``(customer, name)``, which names the queue."""
        return (self.customer, self.name)

    def ring_timeout_of(self, agent: QueueAgent) -> float:
        """How long ``agent``'s phone rings for a caller of this queue."""
        return self.ring_timeout if agent.ring_timeout is None else agent.ring_timeout


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackTarget:
    """Whom a callback request calls: ``number`` (E.164 with ``+``), presenting ``caller_id``
    (the number the caller had called); ``display`` goes before the number on the agent's
    phone."""

    number: str
    caller_id: str
    display: str = "Callback: "


class Caller:
    """A caller waiting in a queue. ``ringing``: the agents ringing for it now; ``tried``:
    the agents that let its ring go unanswered in this round; ``not_before``: no offer before
    this time (a new round's wait). ``callback``: a callback request that keeps the caller's
    place with no live call, ``attempts`` the calls made to its number so far. ``number``:
    the caller's telephone number as it joined (None: not known), for the views of the queue."""

    __slots__ = (
        "attempts",
        "callback",
        "deadline",
        "id",
        "joined",
        "joined_at",
        "key",
        "not_before",
        "number",
        "priority",
        "ringing",
        "skills",
        "tried",
    )

    def __init__(
        self,
        caller: str,
        priority: int,
        skills: frozenset[str],
        key: tuple[int, int],
        now: float,
        at: datetime,
    ) -> None:
        self.id = caller
        self.priority = priority
        self.skills = skills
        self.key = key  # (-priority, sequence): the waiting order
        self.joined = now
        self.joined_at = at
        self.deadline: float | None = None  # max wait
        self.ringing: set[str] = set()
        self.tried: set[str] = set()
        self.not_before = now
        self.callback: CallbackTarget | None = None
        self.attempts = 0
        self.number: str | None = None


class Queue:
    """A queue's waiting callers in order, and what its strategies need to remember."""

    def __init__(self, config: QueueConfig) -> None:
        self.config = config
        self._keys: list[tuple[int, int]] = []
        self._entries: list[Caller] = []  # in step with _keys
        self.callers: dict[str, Caller] = {}
        self.answered: Counter[str] = Counter()  # calls of this queue each agent answered
        self.last_rung: str | None = None  # round_robin's place
        self._handled: deque[float] = deque(maxlen=HANDLE_HISTORY)

    def __len__(self) -> int:
        return len(self._keys)

    def waiting(self) -> Iterator[Caller]:
        """The callers in their order (a copy: the queue may change while it is read)."""
        return iter(self._entries.copy())

    def first(self) -> Caller:
        """The caller at position 1 (the queue is not empty)."""
        return self._entries[0]

    def add(self, caller: Caller) -> int:
        """Put ``caller`` in its place; its position."""
        index = bisect.bisect_left(self._keys, caller.key)
        self._keys.insert(index, caller.key)
        self._entries.insert(index, caller)
        self.callers[caller.id] = caller
        return index + 1

    def remove(self, caller: Caller) -> int:
        """Take ``caller`` out; the position it had."""
        position = self.position(caller)
        del self._keys[position - 1]
        del self._entries[position - 1]
        del self.callers[caller.id]
        return position

    def position(self, caller: Caller) -> int:
        """``caller``'s 1-based place in the queue."""
        return bisect.bisect_left(self._keys, caller.key) + 1

    def handled(self, seconds: float) -> None:
        """A call of the queue took ``seconds`` (talk and wrap-up)."""
        self._handled.append(seconds)

    def handle_time(self) -> float:
        """The mean handle time of the last calls, else the configured one."""
        if not self._handled:
            return self.config.handle_seconds
        return sum(self._handled) / len(self._handled)

    def estimate(self, position: int, serving: int) -> float | None:
        """The estimated wait (seconds) at ``position`` with ``serving`` agents, None when no
        agent serves."""
        if serving == 0:
            return None
        return self.handle_time() * position / serving


def choose(queue: Queue, caller: Caller, free: list[tuple[QueueAgent, Agent]]) -> list[str]:
    """Whom of ``free`` (the queue's free agents that may take ``caller``, in the queue's
    order) to ring for ``caller``, by the queue's strategy (module docstring)."""
    if not free:
        return []
    strategy = queue.config.strategy
    if strategy is Strategy.RING_ALL:
        return [agent.number for _, agent in free]
    if strategy is Strategy.ROUND_ROBIN:
        return [_next_round(queue, free)]
    if strategy is Strategy.FEWEST_CALLS:
        best = min(free, key=lambda pair: (queue.answered[pair[1].number], pair[1].idle_since))
    elif strategy is Strategy.SKILLS:
        best = min(free, key=lambda pair: (-_level(pair[0], caller.skills), pair[1].idle_since))
    else:
        best = min(free, key=lambda pair: pair[1].idle_since)
    return [best[1].number]


def _level(agent: QueueAgent, skills: frozenset[str]) -> int:
    return sum(agent.skills.get(name, 0) for name in skills)


def _next_round(queue: Queue, free: list[tuple[QueueAgent, Agent]]) -> str:
    """The first free agent after the one rung last, in the queue's list, wrapping round."""
    order = [agent.number for agent in queue.config.agents]
    start = order.index(queue.last_rung) + 1 if queue.last_rung in order else 0
    places = {agent.number: (order.index(agent.number) - start) % len(order) for _, agent in free}
    return min(places, key=places.__getitem__)
