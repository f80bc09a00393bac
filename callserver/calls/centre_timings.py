"""How long the call centre's decisions take inside the running server.

Theory of operation
-------------------
:class:`TimedCentre` is the ``queues.CallCentre`` the server's ``CentreDriver`` drives: each of
its entry points (``ENTRY_POINTS``: a caller joining, whom to ring, an answer, a wrap-up's
timer ...) runs between two ``perf_counter_ns`` readings and the duration goes to
:class:`Timings`, which keeps the last ``window`` of each entry point and of all of them
together (bounded memory however long the server runs), and how many calls each had since
the figures were last cleared. Nothing of it runs per RTP packet or per call that never
reaches a queue. The control channel's ``centre.timings`` request answers
:meth:`Timings.figures` (``{"clear": true}`` starts a new count once answered).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import datetime
from time import perf_counter_ns

from callserver.queues.agents import Agents, AgentStateChanged, NoLicence
from callserver.queues.centre import CallCentre
from callserver.queues.departures import Departure
from callserver.queues.events import Full, Joined, NoAgents, Offer
from callserver.queues.queue import QueueConfig

__all__ = ["ENTRY_POINTS", "WINDOW", "TimedCentre", "Timings"]

WINDOW = 10_000  # durations kept per entry point (and for all together)
ENTRY_POINTS = (
    "define",
    "join",
    "status",
    "offers",
    "answered",
    "ring_failed",
    "abandon",
    "leave",
    "call_ended",
    "handle_timer",
    "login",
    "logout",
    "pause",
    "unpause",
    "refresh",
)


def _percentile(ordered: list[int], fraction: float) -> int:
    """The nearest-rank percentile of a sorted non-empty list."""
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class Timings:
    """The durations of the centre's calls in ns, the last ``window`` of each kept."""

    def __init__(self, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError(f"a timings window holds 1 duration or more, not {window}")
        self.window = window
        self._each = {name: deque[int](maxlen=window) for name in ENTRY_POINTS}
        self._all = deque[int](maxlen=window)
        self._calls: Counter[str] = Counter()

    def add(self, name: str, nanoseconds: int) -> None:
        """One call of entry point ``name`` that took ``nanoseconds``."""
        self._each[name].append(nanoseconds)
        self._all.append(nanoseconds)
        self._calls[name] += 1

    def clear(self) -> None:
        """Forget every duration and count."""
        for kept in self._each.values():
            kept.clear()
        self._all.clear()
        self._calls.clear()

    def figures(self, *, clear: bool = False) -> dict[str, object]:
        """``all`` and each entry point called since the last clear (``entry_points``): its
        ``calls`` since then and, over the durations kept, ``kept``, ``p50_us``, ``p99_us``
        and ``max_us``; then forget them if ``clear``."""
        each = {name: _summary(kept, self._calls[name]) for name, kept in self._each.items()}
        answer: dict[str, object] = {
            "window": self.window,
            "all": _summary(self._all, sum(self._calls.values())),
            "entry_points": {name: figures for name, figures in each.items() if figures["calls"]},
        }
        if clear:
            self.clear()
        return answer


def _summary(kept: Iterable[int], calls: int) -> dict[str, float | int]:
    ordered = sorted(kept)
    if not ordered:
        return {"calls": calls, "kept": 0}
    return {
        "calls": calls,
        "kept": len(ordered),
        "p50_us": _percentile(ordered, 0.5) / 1000,
        "p99_us": _percentile(ordered, 0.99) / 1000,
        "max_us": ordered[-1] / 1000,
    }


class TimedCentre(CallCentre):
    """A ``CallCentre`` whose entry points are timed into ``timings`` (module docstring)."""

    def __init__(
        self, agents: Agents, phone_busy: Callable[[str], bool], *, timings: Timings
    ) -> None:
        super().__init__(agents, phone_busy)
        self.timings = timings

    def define(self, config: QueueConfig) -> None:
        """``CallCentre.define``, timed."""
        begin = perf_counter_ns()
        try:
            super().define(config)
        finally:
            self.timings.add("define", perf_counter_ns() - begin)

    def join(
        self,
        queue: tuple[str, str],
        caller: str,
        now: float,
        at: datetime,
        priority: int = 0,
        skills: Iterable[str] = (),
        number: str | None = None,
    ) -> Joined | Full | NoAgents:
        """``CallCentre.join``, timed."""
        begin = perf_counter_ns()
        try:
            return super().join(queue, caller, now, at, priority, skills, number)
        finally:
            self.timings.add("join", perf_counter_ns() - begin)

    def status(self, caller: str) -> Joined | None:
        """``CallCentre.status``, timed."""
        begin = perf_counter_ns()
        try:
            return super().status(caller)
        finally:
            self.timings.add("status", perf_counter_ns() - begin)

    def offers(self, now: float, at: datetime) -> list[Offer]:
        """``CallCentre.offers``, timed: the strategy's decision whom to ring."""
        begin = perf_counter_ns()
        try:
            return super().offers(now, at)
        finally:
            self.timings.add("offers", perf_counter_ns() - begin)

    def answered(self, caller: str, agent: str, now: float, at: datetime) -> bool:
        """``CallCentre.answered``, timed."""
        begin = perf_counter_ns()
        try:
            return super().answered(caller, agent, now, at)
        finally:
            self.timings.add("answered", perf_counter_ns() - begin)

    def ring_failed(self, caller: str, agent: str, reason: str, now: float, at: datetime) -> bool:
        """``CallCentre.ring_failed``, timed."""
        begin = perf_counter_ns()
        try:
            return super().ring_failed(caller, agent, reason, now, at)
        finally:
            self.timings.add("ring_failed", perf_counter_ns() - begin)

    def abandon(self, caller: str, now: float, at: datetime) -> bool:
        """``CallCentre.abandon``, timed."""
        begin = perf_counter_ns()
        try:
            return super().abandon(caller, now, at)
        finally:
            self.timings.add("abandon", perf_counter_ns() - begin)

    def leave(self, caller: str, reason: str, now: float, at: datetime) -> bool:
        """``CallCentre.leave``, timed."""
        begin = perf_counter_ns()
        try:
            return super().leave(caller, reason, now, at)
        finally:
            self.timings.add("leave", perf_counter_ns() - begin)

    def call_ended(self, agent: str, now: float, at: datetime) -> bool:
        """``CallCentre.call_ended``, timed."""
        begin = perf_counter_ns()
        try:
            return super().call_ended(agent, now, at)
        finally:
            self.timings.add("call_ended", perf_counter_ns() - begin)

    def handle_timer(self, now: float, at: datetime) -> None:
        """``CallCentre.handle_timer``, timed."""
        begin = perf_counter_ns()
        try:
            super().handle_timer(now, at)
        finally:
            self.timings.add("handle_timer", perf_counter_ns() - begin)

    def login(self, agent: str, now: float, at: datetime) -> AgentStateChanged | NoLicence:
        """``CallCentre.login``, timed."""
        begin = perf_counter_ns()
        try:
            return super().login(agent, now, at)
        finally:
            self.timings.add("login", perf_counter_ns() - begin)

    def logout(self, agent: str, now: float, at: datetime) -> AgentStateChanged:
        """``CallCentre.logout``, timed."""
        begin = perf_counter_ns()
        try:
            return super().logout(agent, now, at)
        finally:
            self.timings.add("logout", perf_counter_ns() - begin)

    def pause(self, agent: str, reason: str | None, now: float, at: datetime) -> AgentStateChanged:
        """``CallCentre.pause``, timed."""
        begin = perf_counter_ns()
        try:
            return super().pause(agent, reason, now, at)
        finally:
            self.timings.add("pause", perf_counter_ns() - begin)

    def unpause(self, agent: str, now: float, at: datetime) -> AgentStateChanged:
        """``CallCentre.unpause``, timed."""
        begin = perf_counter_ns()
        try:
            return super().unpause(agent, now, at)
        finally:
            self.timings.add("unpause", perf_counter_ns() - begin)

    def refresh(self, now: float, at: datetime) -> list[Departure]:
        """``CallCentre.refresh``, timed: a reload's agents checked again."""
        begin = perf_counter_ns()
        try:
            return super().refresh(now, at)
        finally:
            self.timings.add("refresh", perf_counter_ns() - begin)
