"""QueueCalls with a real centre and driver on the test's event loop: the agents' phones are a
fake ``Placing`` whose rings the test answers or refuses, the caller's session a fake that
records what it played and takes the digits the test presses.

The SIP side (legs to phones, bridging, CANCEL) is covered end to end in
tests/e2e/test_queue_calls.py; here the order of things is checked where the network would make
it a race: an answer in the moment the caller hangs up, a leave key, the outcome noted for the
CDR.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import structlog

from callserver.calls.centre_driver import CentreDriver
from callserver.calls.queue_calls import QueueCalls
from callserver.calls.session import Collected
from callserver.calls.session_host import QueueOutcome, QueueRequest, Shown
from callserver.media.prompts import Play, PlaylistItem
from callserver.policy.caller import CallerId
from callserver.queues.agents import AgentState
from tests.queues.support import agent, centrex, queue

CLOCK = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@dataclass
class FakePlacing:
    """Rings the test settles: ``rings[agent]`` is the future of the answered leg (None:
    refused); released legs and bridges are recorded; a bridge lasts until ``over`` is set
    (a leg in ``held``: until its own event is); ``successors[leg]`` is the leg a transfer put
    in ``leg``'s place."""

    rings: dict[str, asyncio.Future[object]] = field(default_factory=dict)
    shown: list[Shown] = field(default_factory=list)
    released: list[object] = field(default_factory=list)
    bridged: list[object] = field(default_factory=list)
    over: asyncio.Event = field(default_factory=asyncio.Event)
    held: dict[object, asyncio.Event] = field(default_factory=dict)
    successors: dict[object, object] = field(default_factory=dict)

    async def place_agent(
        self, call: Any, target: str, ring_timeout: float, shown: Shown, lost: Callable[[], bool]
    ) -> Any:
        self.shown.append(shown)
        ring = self.rings[target] = asyncio.get_running_loop().create_future()
        return await ring

    async def bridge_agent(self, leg: Any) -> None:
        self.bridged.append(leg)
        await self.held.get(leg, self.over).wait()

    async def transferred(self, leg: Any) -> Any:
        return self.successors.pop(leg, None)

    def release(self, leg: Any) -> None:
        self.released.append(leg)


class FakeSession:
    """A caller: what it hears, the digits pressed (``press``), its notes."""

    def __init__(self) -> None:
        self.caller = CallerId(raw="061123456", e164="+38761123456", country="BA")
        self.played: list[Sequence[PlaylistItem]] = []
        self.notes: list[tuple[str, object]] = []
        self.recorded: object | None = None
        self.recordings: list[tuple[str, str | None]] = []  # (mode, customer) asked for
        self._digits: asyncio.Queue[str] = asyncio.Queue()

    def press(self, digit: str) -> None:
        self._digits.put_nowait(digit)

    async def play(self, items: Sequence[PlaylistItem], *, barge_in: bool) -> str | None:
        self.played.append(items)
        return None

    async def collect(self, *, first_timeout: float, **_: object) -> Collected:
        try:
            digit = await asyncio.wait_for(self._digits.get(), first_timeout)
        except TimeoutError:
            return Collected(digits="", reason="no_input")
        return Collected(digits=digit, reason="max_digits")

    def note(self, key: str, value: object) -> None:
        self.notes.append((key, value))

    async def record_call(self, *, mode: str, customer: str | None = None) -> bool:
        self.recordings.append((mode, customer))
        self.recorded = self.recorded or mode
        return True


def _calls(placing: FakePlacing) -> tuple[QueueCalls, CentreDriver]:
    loop = asyncio.get_running_loop()
    groups = centrex()
    driver = CentreDriver(
        centrex=lambda: groups,
        licences=lambda customer: 60,
        phone_busy=lambda number: False,
        loop=loop,
        wall=lambda: CLOCK,
    )
    for n in (1, 2):
        driver.centre.login(agent(n), loop.time(), CLOCK)
    media = SimpleNamespace(is_open=lambda stream: False)
    calls = QueueCalls(driver, placing, media, lambda: None, loop)  # type: ignore[arg-type]
    return calls, driver


def _call(call_id: str = "c1") -> Any:
    return SimpleNamespace(call_id=call_id, stream=None, log=structlog.get_logger("test"))


def _request(**settings: Any) -> QueueRequest:
    announce = lambda position, wait: [Play(f"position{position}")]  # noqa: E731
    return QueueRequest(
        config=queue(2, ring_timeout=30.0, wrap_up=5.0),
        announcement=announce,
        greeting=[Play("queue_welcome")],
        **settings,
    )


async def _settled(condition: Callable[[], bool]) -> None:
    for _ in range(200):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("never settled")


async def test_an_answered_caller_is_bridged_and_the_agent_wraps_up_after() -> None:
    """The agent's answer bridges the caller; the outcome names the agent and the CDR note
    is made before the call ends; its end puts the agent in wrap-up."""
    placing = FakePlacing()
    calls, driver = _calls(placing)
    session = FakeSession()
    waiting = asyncio.create_task(calls.wait(_call(), session, _request()))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    (rung,) = placing.rings
    placing.rings[rung].set_result("leg")
    await _settled(lambda: bool(placing.bridged))
    name, noted = session.notes[-1][1]  # type: ignore[misc]
    assert (name, noted.result, noted.agent) == ("sales", "answered", rung)
    placing.over.set()
    outcome = await waiting
    assert (outcome.result, outcome.agent) == ("answered", rung)
    assert placing.released == ["leg"]
    assert driver.centre.agents.state_of(rung) is AgentState.WRAP_UP


async def test_an_agent_who_transfers_the_caller_wraps_up_while_the_caller_talks_on() -> None:
    """The agent's leg ends with a transfer: the agent wraps up at once, the caller is
    bridged to the leg the transfer put in its place, and the wait's outcome comes when that
    one ends; each leg is released once."""
    placing = FakePlacing(successors={"leg": "target"})
    placing.held["target"] = target_over = asyncio.Event()
    calls, driver = _calls(placing)
    waiting = asyncio.create_task(calls.wait(_call(), FakeSession(), _request()))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    (rung,) = placing.rings
    placing.rings[rung].set_result("leg")
    await _settled(lambda: bool(placing.bridged))
    placing.over.set()  # the agent's leg ends: transferred
    await _settled(lambda: placing.bridged == ["leg", "target"])
    assert driver.centre.agents.state_of(rung) is AgentState.WRAP_UP
    assert placing.released == ["leg"] and not waiting.done()
    target_over.set()
    outcome = await waiting
    assert (outcome.result, outcome.agent) == ("answered", rung)
    assert placing.released == ["leg", "target"]


async def _hang_up(waiting: asyncio.Task[QueueOutcome]) -> None:
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def test_a_caller_who_hangs_up_while_talking_ends_the_agents_call() -> None:
    """The caller hangs up in the bridge: the agent's leg is released and it wraps up; the
    CDR keeps the answer (its wait and agent)."""
    placing = FakePlacing()
    calls, driver = _calls(placing)
    session = FakeSession()
    waiting = asyncio.create_task(calls.wait(_call(), session, _request()))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    (rung,) = placing.rings
    placing.rings[rung].set_result("leg")
    await _settled(lambda: bool(placing.bridged))
    await _hang_up(waiting)
    assert placing.released == ["leg"]
    assert driver.centre.agents.state_of(rung) is AgentState.WRAP_UP
    assert session.notes[-1][1][1].result == "answered"  # type: ignore[index]


async def test_a_caller_who_hangs_up_as_the_agent_answers_ends_the_agents_call() -> None:
    """The answer and the hang-up in one moment (before the wait resumes): the answered leg
    is released unbridged and the agent wraps up, not left in a call with nobody."""
    placing = FakePlacing()
    calls, driver = _calls(placing)
    session = FakeSession()
    waiting = asyncio.create_task(calls.wait(_call(), session, _request()))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    (rung,) = placing.rings
    placing.rings[rung].set_result("leg")
    for _ in range(100):  # step by step: the wait has not resumed yet
        if driver.centre.agents.state_of(rung) is AgentState.IN_CALL:
            break
        await asyncio.sleep(0)
    await _hang_up(waiting)
    assert placing.released == ["leg"] and placing.bridged == []
    assert driver.centre.agents.state_of(rung) is AgentState.WRAP_UP
    assert session.notes[-1][1][1].result == "abandoned"  # type: ignore[index]


async def test_the_leave_key_leaves_and_a_refusing_phone_is_a_failed_ring() -> None:
    """A phone that refuses is ring_failed (the agent is not rung again at once); the leave
    key ends the wait as left, and the greeting was heard first."""
    placing = FakePlacing()
    calls, driver = _calls(placing)
    session = FakeSession()
    request = _request(leave_key="9", announce_every=0.05)
    waiting = asyncio.create_task(calls.wait(_call(), session, request))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    (rung,) = placing.rings
    placing.rings.pop(rung).set_result(None)
    await _settled(lambda: len(session.played) >= 2)  # the greeting, an announcement
    session.press("5")  # not the key: ignored
    session.press("9")
    outcome = await waiting
    assert outcome.result == "left" and outcome.wait > 0
    assert session.played[0] == [Play("queue_welcome")]
    assert [Play("position1")] in session.played
    assert driver.centre.waiting(("acme", "sales")) == []


async def test_a_recorded_queue_announces_first_and_records_from_the_answer() -> None:
    """The recording notice is played before the caller joins (before the greeting); the
    call's recording starts at the agent's answer, under the queue's customer, before the
    bridge."""
    placing = FakePlacing()
    calls, _ = _calls(placing)
    session = FakeSession()
    request = _request(record="stereo", record_announcement=[Play("recording_notice")])
    waiting = asyncio.create_task(calls.wait(_call(), session, request))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    assert session.played[:2] == [[Play("recording_notice")], [Play("queue_welcome")]]
    assert session.recordings == []
    (rung,) = placing.rings
    placing.rings[rung].set_result("leg")
    await _settled(lambda: bool(placing.bridged))
    assert session.recordings == [("stereo", "acme")]
    placing.over.set()
    assert (await waiting).result == "answered"


async def test_a_call_recorded_already_hears_no_second_notice() -> None:
    """A call its customer records already skips the queue's notice (one recording)."""
    placing = FakePlacing()
    calls, _ = _calls(placing)
    session = FakeSession()
    session.recorded = "mixed"
    request = _request(record="stereo", record_announcement=[Play("recording_notice")])
    waiting = asyncio.create_task(calls.wait(_call(), session, request))  # type: ignore[arg-type]
    await _settled(lambda: bool(placing.rings))
    assert session.played[0] == [Play("queue_welcome")]
    await _hang_up(waiting)
