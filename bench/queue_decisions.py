"""bench/queue_decisions: how long each call-centre decision takes with a full queue.

One queue of 50 agents (``--agents``, ``--strategy``, default longest_idle) and 500 callers
(``--callers``) kept waiting: as one is answered another joins. On a simulated clock (no
sleeping) each ring is answered after 2-6 s, each call lasts 20-120 s, wrap-up is 5 s, and the
centre's deadlines (wrap-up ends, ring timeouts) are handled when due. Every call into the
centre is timed with ``perf_counter_ns``: ``join``, ``offers`` (whom to ring: the strategy's
decision), ``answered``, ``call_ended`` (and ``handle_timer``). It prints p50, p99 and the
largest of each, in µs, for ``--calls`` answered calls, and the CPU of the whole run.

    .venv/bin/python bench/queue_decisions.py                      # 500 callers, 50 agents
    .venv/bin/python bench/queue_decisions.py --strategy skills --calls 5000
"""

from __future__ import annotations

import argparse
import gc
import heapq
import random
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import TypeVar

from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.centrex_groups import Centrex
from callserver.queues.agents import Agents
from callserver.queues.centre import CallCentre
from callserver.queues.events import Joined
from callserver.queues.queue import QueueAgent, QueueConfig, Strategy

T = TypeVar("T")
START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
QUEUE = ("acme", "sales")


def _centrex(agents: int) -> Centrex:
    subscribers = {
        f"+38733{100000 + n}": {"ha1_md5": "0" * 32, "username": f"a{n}"} for n in range(agents)
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 000-999"],
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert not errors, errors

    return centrex


class Timed:
    """The centre's calls, each timed into ``samples[name]`` (ns)."""

    def __init__(self, centre: CallCentre) -> None:
        self.centre = centre
        self.samples: dict[str, list[int]] = defaultdict(list)

    def __call__(self, name: str, call: Callable[..., T], *args: object) -> T:
        begin = time.perf_counter_ns()
        result = call(*args)
        self.samples[name].append(time.perf_counter_ns() - begin)
        return result


def _centre(agents: int, strategy: Strategy) -> CallCentre:
    numbers = [f"+38733{100000 + n}" for n in range(agents)]
    skills = ("de", "en", "bs")
    members = tuple(
        QueueAgent(number=n, skills=MappingProxyType({skills[i % 3]: 1 + i % 100, "en": 50}))
        for i, n in enumerate(numbers)
    )
    phones = _centrex(agents)
    centre = CallCentre(Agents(lambda: phones, lambda customer: agents))
    config = QueueConfig(
        customer="acme", name="sales", agents=members, strategy=strategy, wrap_up=5.0
    )
    centre.define(config)
    for number in numbers:
        centre.login(number, 0.0, START)
    return centre


def run(agents: int, callers: int, calls: int, strategy: Strategy, seed: int) -> Timed:
    """Simulate until ``calls`` calls were answered; the timings."""
    rng = random.Random(seed)
    timed = Timed(_centre(agents, strategy))
    centre = timed.centre
    now, joined, answered = 0.0, 0, 0
    due: list[tuple[float, int, str, str, str]] = []  # (when, n, what, caller, agent)

    def join() -> None:
        nonlocal joined
        joined += 1
        skills = ("en",) if strategy is not Strategy.SKILLS else (rng.choice(["de", "bs"]),)
        result = timed(
            "join", lambda: centre.join(QUEUE, f"c{joined}", now, at, rng.randint(0, 1), skills)
        )
        assert isinstance(result, Joined)

    at = START
    for _ in range(callers):
        join()
    while answered < calls:
        at = START + timedelta(seconds=now)
        for offer in timed("offers", centre.offers, now, at):
            agent = offer.agents[0]
            heapq.heappush(due, (now + rng.uniform(2, 6), joined, "answer", offer.caller, agent))
        deadline = centre.next_deadline()
        when = min(due[0][0] if due else float("inf"), deadline or float("inf"))
        now = max(now, when)
        at = START + timedelta(seconds=now)
        if deadline is not None and deadline <= now:
            timed("handle_timer", centre.handle_timer, now, at)
        while due and due[0][0] <= now:
            _, _, what, caller, agent = heapq.heappop(due)
            if what == "answer":
                if timed("answered", centre.answered, caller, agent, now, at):
                    answered += 1
                    join()
                    end = now + rng.uniform(20, 120)
                    heapq.heappush(due, (end, joined, "end", caller, agent))
            else:
                timed("call_ended", centre.call_ended, agent, now, at)
        centre.drain_events()
    return timed


def _percentile(samples: list[int], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def main() -> None:
    """Parse the arguments, run, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--strategy", default="longest_idle", choices=[s.value for s in Strategy])
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    gc.collect()
    cpu = time.process_time()
    timed = run(args.agents, args.callers, args.calls, Strategy(args.strategy), args.seed)
    cpu = time.process_time() - cpu
    print(
        f"{args.callers} callers waiting, {args.agents} agents, {args.strategy}, "
        f"{args.calls} calls answered, CPU {cpu:.2f} s"
    )
    every: list[int] = []
    for name in ("join", "offers", "answered", "call_ended", "handle_timer"):
        samples = timed.samples.get(name, [])
        every += samples
        if samples:
            print(
                f"  {name:12s} n={len(samples):6d}  p50 {_percentile(samples, 0.5):7.1f} µs"
                f"  p99 {_percentile(samples, 0.99):7.1f} µs  max {max(samples) / 1000:8.1f} µs"
            )
    print(f"  {'every call':12s} n={len(every):6d}  p99 {_percentile(every, 0.99):7.1f} µs")


if __name__ == "__main__":
    main()
