"""How long the call centre's decisions take inside the running server.

Theory of operation
-------------------
:class:`TimedCentre` is the ``queues.CallCentre`` the server's ``CentreDriver`` drives: each of
its entry points (``ENTRY_POINTS``: a caller joining, whom to ring, an answer, a wrap-up's
timer, a callback request ...) runs between two ``perf_counter_ns`` readings and the duration
goes to :class:`Timings`, which keeps the last ``window`` of each entry point and of all of them
together (bounded memory however long the server runs), and how many calls each had since
the figures were last cleared. Nothing of it runs per RTP packet or per call that never
reaches a queue. The control channel's ``centre.timings`` request answers
:meth:`Timings.figures` (``{"clear": true}`` starts a new count once answered).
"""

from __future__ import annotations

import functools
from collections import Counter, deque
from collections.abc import Callable, Iterable
from time import perf_counter_ns
from typing import Any

from callserver.queues.agents import Agents
from callserver.queues.centre import CallCentre

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
    "request_callback",
    "callback_answered",
    "callback_failed",
    "restore_callback",
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
    """A ``CallCentre`` whose entry points (``ENTRY_POINTS``) are timed into ``timings``
    (module docstring): each is ``CallCentre``'s own, wrapped by ``_timed``."""

    def __init__(
        self, agents: Agents, phone_busy: Callable[[str], bool], *, timings: Timings
    ) -> None:
        super().__init__(agents, phone_busy)
        self.timings = timings
        self._timing = False  # an entry point is running: one it calls is part of it


def _timed(name: str) -> Callable[..., Any]:
    """``CallCentre.<name>`` run between two ``perf_counter_ns`` readings, the duration added
    to the centre's ``timings`` under ``name`` (however the call ends). An entry point that
    another one calls (``call_ended`` ends a callback with ``callback_failed``) is counted in
    the outer one alone."""
    plain = getattr(CallCentre, name)

    @functools.wraps(plain)
    def timed(self: TimedCentre, *args: Any, **kwargs: Any) -> Any:
        if self._timing:
            return plain(self, *args, **kwargs)
        self._timing = True
        begin = perf_counter_ns()
        try:
            return plain(self, *args, **kwargs)
        finally:
            self.timings.add(name, perf_counter_ns() - begin)
            self._timing = False

    return timed


for _name in ENTRY_POINTS:
    setattr(TimedCentre, _name, _timed(_name))
