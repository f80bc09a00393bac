"""Hypothesis: whatever happens in whatever order, the call centre's invariants hold."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import MappingProxyType

from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.queues.agents import AgentState, TransitionRefused
from callserver.queues.centre import CallCentre
from callserver.queues.events import (
    AgentRung,
    CallbackDialled,
    CallerAnswered,
    CentreEvent,
    Joined,
    QueueEvent,
    RingCancelled,
    RingNoAnswer,
)
from callserver.queues.log_records import log_records
from callserver.queues.queue import CallbackTarget, QueueAgent, QueueConfig, Strategy

from .support import agent, at, make_centre

AGENTS = 6
LICENCES = 4
SKILLS = ("de", "en")


def _members(numbers: range, strategy: Strategy, name: str) -> QueueConfig:
    members = tuple(
        QueueAgent(number=agent(n), skills=MappingProxyType({SKILLS[n % 2]: 10 * n}))
        for n in numbers
    )
    return QueueConfig(
        customer="acme",
        name=name,
        agents=members,
        strategy=strategy,
        ring_timeout=7.0,
        wrap_up=5.0,
        max_waiting=6,
        max_wait=90.0,
        retry=3.0,
        callback_attempts=2,
        callback_retry=20.0,
    )


@dataclass
class World:
    """The centre under test and what the test has seen of it."""

    centre: CallCentre
    busy: set[str] = field(default_factory=set)
    ringing: dict[str, str] = field(default_factory=dict)  # agent: caller, from the events
    priorities: dict[str, int] = field(default_factory=dict)
    dialling: dict[str, str] = field(default_factory=dict)  # agent: the request it calls
    now: float = 0.0
    callers: int = 0


OPS = st.one_of(
    st.tuples(
        st.sampled_from(["login", "logout", "pause", "unpause", "end", "busy"]),
        st.integers(1, AGENTS),
    ),
    st.tuples(
        st.just("join"),
        st.integers(0, 1),
        st.integers(0, 2),
        st.sampled_from([(), ("de",), ("en",)]),
    ),
    st.tuples(
        st.sampled_from(["abandon", "answer", "refuse", "callback", "reached", "unreached"]),
        st.integers(0, 40),
    ),
    st.tuples(st.just("wait"), st.floats(0.1, 12.0)),
    st.tuples(st.just("offers")),
)


def _pick(world: World, index: int) -> str | None:
    names = sorted(world.ringing.items())
    return None if not names else names[index % len(names)][1]


def _step(world: World, op: tuple[object, ...]) -> None:
    centre, now = world.centre, world.now
    kind = op[0]
    if kind in ("login", "logout", "pause", "unpause", "end", "busy"):
        number = agent(int(op[1]))  # type: ignore[call-overload]
        with contextlib.suppress(TransitionRefused):
            if kind == "login":
                centre.login(number, now, at(now))
            elif kind == "logout":
                centre.logout(number, now, at(now))
            elif kind == "pause":
                centre.pause(number, "r", now, at(now))
            elif kind == "unpause":
                centre.unpause(number, now, at(now))
            elif kind == "end":
                centre.call_ended(number, now, at(now))
                world.dialling.pop(number, None)
            else:
                world.busy ^= {number}
    elif kind == "join":
        _join(world, op)
    elif kind in ("callback", "reached", "unreached"):
        _callback_op(world, str(kind), int(op[1]))  # type: ignore[call-overload]
    elif kind in ("abandon", "answer", "refuse"):
        _caller_op(world, str(kind), int(op[1]))  # type: ignore[call-overload]
    elif kind == "wait":
        world.now += float(op[1])  # type: ignore[arg-type]
        centre.handle_timer(world.now, at(world.now))
    else:
        _offers(world)


def _join(world: World, op: tuple[object, ...]) -> None:
    world.callers += 1
    caller, priority = f"c{world.callers}", int(op[2])  # type: ignore[call-overload]
    queue = ("acme", ("front", "back")[int(op[1])])  # type: ignore[call-overload]
    result = world.centre.join(queue, caller, world.now, at(world.now), priority, op[3])  # type: ignore[arg-type]
    if isinstance(result, Joined):
        world.priorities[caller] = priority


def _caller_op(world: World, kind: str, index: int) -> None:
    centre, now = world.centre, world.now
    if kind == "abandon":
        waiting = sorted(world.priorities)
        if waiting:
            centre.abandon(waiting[index % len(waiting)], now, at(now))
        return
    pairs = sorted(world.ringing.items())
    if not pairs:
        return
    number, caller = pairs[index % len(pairs)]
    if kind == "answer":
        assert centre.answered(caller, number, now, at(now))
    else:
        assert centre.ring_failed(caller, number, "busy", now, at(now))


def _callback_op(world: World, kind: str, index: int) -> None:
    """A waiting caller asks for a callback, or a dialled request's number answers or not."""
    centre, now = world.centre, world.now
    if kind == "callback":
        waiting = sorted(world.priorities)
        if waiting:
            target = CallbackTarget(number="+38761000000", caller_id="+38733100200")
            centre.request_callback(waiting[index % len(waiting)], target, now, at(now))
        return
    pairs = sorted(world.dialling)
    if not pairs:
        return
    number = pairs[index % len(pairs)]
    if kind == "reached":
        assert centre.callback_answered(number, now, at(now))
    else:
        assert centre.callback_failed(number, "busy", now, at(now), again=index % 3 > 0)
    del world.dialling[number]
    centre.call_ended(number, now, at(now))


def _offers(world: World) -> None:
    centre = world.centre
    free = {
        a.number
        for a in centre.agents
        if a.state is AgentState.AVAILABLE and a.number not in world.busy
    }
    for offer in centre.offers(world.now, at(world.now)):
        for number in offer.agents:
            assert number in free, f"{number} offered while not free"
            free.discard(number)


def _seen(world: World, events: list[CentreEvent]) -> None:
    for event in events:
        log_records(event, lambda: "u")  # every event makes valid queue log lines
        if isinstance(event, AgentRung):
            assert event.agent not in world.ringing, f"{event.agent} rings for two callers"
            world.ringing[event.agent] = event.caller
        elif isinstance(event, (RingNoAnswer, RingCancelled, CallerAnswered, CallbackDialled)):
            assert world.ringing.pop(event.agent) == event.caller
        if isinstance(event, CallbackDialled):
            world.dialling[event.agent] = event.caller
        if isinstance(event, QueueEvent) and event.kind in (
            "answer",
            "abandon",
            "leave",
            "timeout",
            "callback_answered",
            "callback_dropped",
        ):
            world.priorities.pop(event.caller, None)


def _check(world: World) -> None:
    centre = world.centre
    logged = [a for a in centre.agents if a.state is not AgentState.LOGGED_OUT]
    assert len(logged) == centre.agents.logged_in("acme") <= LICENCES
    for number, _ in world.ringing.items():
        assert centre.agents.state_of(number) is AgentState.RINGING
    for number, caller in world.dialling.items():
        assert centre.agents.state_of(number) is AgentState.IN_CALL
        assert centre.status(caller) is None, "a request dialled and waiting at once"
    for name in ("front", "back"):
        waiting = centre.waiting(("acme", name))
        positions = [status.position for c in waiting if (status := centre.status(c)) is not None]
        assert positions == list(range(1, len(waiting) + 1))
        ranks = [world.priorities[c] for c in waiting]
        assert ranks == sorted(ranks, reverse=True), "a caller waits ahead of a higher priority"


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(Strategy)),
    st.sampled_from(list(Strategy)),
    st.lists(OPS, min_size=20, max_size=120),
)
def test_invariants_hold_after_every_step(
    front: Strategy, back: Strategy, ops: list[tuple[object, ...]]
) -> None:
    """No agent rings for two callers, only free agents are offered, licences hold,
    positions are 1..n, priority callers wait ahead of the others (callback requests
    included), a dialled request is not waiting too, and every event makes valid queue log
    lines."""
    busy: set[str] = set()
    world = World(make_centre(licences={"acme": LICENCES}, phone_busy=busy.__contains__), busy)
    world.centre.define(_members(range(1, 5), front, "front"))
    world.centre.define(_members(range(3, AGENTS + 1), back, "back"))
    for n in range(1, LICENCES + 1):
        world.centre.login(agent(n), 0.0, at(0))
    for op in ops:
        _step(world, op)
        _seen(world, world.centre.drain_events())
        _check(world)
