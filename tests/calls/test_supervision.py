"""A supervisor's monitor follows the agent's leg through a transfer: ``Supervision._monitor``
with the real calls registry and real media streams, the media engine a fake that records the
monitors started and stopped.

The SIP side (codes, refusals, who hears whom) is covered end to end in
tests/e2e/test_supervision.py; here the bridge the agent's leg is in is closed and opened as
a transfer does, in the order the calls layer does it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import structlog

from callserver.calls.bridge import Bridge, Side
from callserver.calls.phase import CallPhase
from callserver.calls.registry import Calls
from callserver.calls.reporting import CallFacts
from callserver.calls.supervision import Supervision
from callserver.media.stream import MediaStream
from callserver.sip.dialog import DialogId

LOG = structlog.get_logger("test")


@dataclass
class FakeMedia:
    """The monitors started (agent, other, mode) and stopped; the streams closed."""

    started: list[tuple[int, int, str]] = field(default_factory=list)
    stopped: int = 0
    closed: set[int] = field(default_factory=set)

    def monitor(self, mode: str, *, agent: Any, other: Any, supervisor: Any) -> object:
        self.started.append((agent.stream_id, other.stream_id, mode))
        return object()

    @property
    def monitors(self) -> Any:
        return SimpleNamespace(stop=lambda monitor: self._stop())

    def _stop(self) -> None:
        self.stopped += 1

    def is_open(self, stream: MediaStream) -> bool:
        return stream.stream_id not in self.closed


def _side(n: int, stream: MediaStream | None = None) -> Side:
    stream = stream or MediaStream(n, 20000 + 2 * n, ssrc=n, sequence=1, timestamp=0)
    return Side(
        leg="b", dialog_id=DialogId(f"c{n}", "l", "r"), stream=stream, session_id=1, version=1
    )


def _bridge(services: Any, a: Side, b: Side) -> Bridge:
    return Bridge(services, a, b, language="en", log=LOG)


async def _started(media: FakeMedia, count: int) -> None:
    for _ in range(200):
        if len(media.started) >= count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{media.started}")


def _supervising() -> tuple[Supervision, Calls, FakeMedia, Any, Any]:
    media = FakeMedia()
    services = SimpleNamespace(media=media, loop=asyncio.get_running_loop())
    calls = Calls()
    supervision = Supervision(services, calls, lambda: None)  # type: ignore[arg-type, return-value]
    stream = MediaStream(9, 20018, ssrc=9, sequence=1, timestamp=0)
    facts = CallFacts(call_id="sup", caller="38733100201", called="*223202", offered_at=0.0)
    call = SimpleNamespace(stream=stream, facts=facts, phase=CallPhase.ANSWERED, log=LOG)
    supervisor = SimpleNamespace(number="+38733100201")  # all the monitor reads of it
    return supervision, calls, media, call, supervisor


async def test_the_supervisor_follows_the_agents_leg_into_its_new_bridge() -> None:
    """A transfer moves the agent's leg (its stream) to a new party: the monitor is started
    again on the new bridge in the same mode; when the leg then leaves the call the
    supervision ends."""
    supervision, calls, media, call, supervisor = _supervising()
    services = SimpleNamespace(media=media)
    agent, caller, target = _side(1), _side(2), _side(3)
    first = _bridge(services, caller, agent)
    calls.bridge_opened(first)
    task = asyncio.create_task(supervision._monitor(call, supervisor, "whisper", first, agent))
    await _started(media, 1)
    calls.bridge_closed(first)  # the transfer: the old bridge closes ...
    await asyncio.sleep(0.05)
    moved = _side(1, agent.stream)
    calls.bridge_opened(_bridge(services, moved, target))  # ... and the leg is bridged anew
    await _started(media, 2)
    assert media.started == [(1, 2, "whisper"), (1, 3, "whisper")] and media.stopped == 1
    calls.bridge_closed(calls.side_by_stream(1)[0])  # type: ignore[index]
    media.closed.add(1)  # the agent hung up: its leg is gone
    await asyncio.wait_for(task, 1)
    assert media.stopped == 2 and len(media.started) == 2


async def test_a_leg_that_is_not_bridged_again_ends_the_supervision() -> None:
    """The agent's leg stays open but no new bridge comes within the grace: the supervision
    ends, nothing more is monitored."""
    supervision, calls, media, call, supervisor = _supervising()
    services = SimpleNamespace(media=media)
    agent, caller = _side(1), _side(2)
    bridge = _bridge(services, caller, agent)
    calls.bridge_opened(bridge)
    task = asyncio.create_task(supervision._monitor(call, supervisor, "listen", bridge, agent))
    await _started(media, 1)
    calls.bridge_closed(bridge)
    await asyncio.wait_for(task, 5)
    assert media.started == [(1, 2, "listen")] and media.stopped == 1


async def test_a_new_bridge_watched_by_another_supervisor_is_not_followed() -> None:
    """The leg's new bridge is monitored already (another supervisor): not followed."""
    supervision, calls, media, call, supervisor = _supervising()
    services = SimpleNamespace(media=media)
    agent, caller, target = _side(1), _side(2), _side(3)
    first = _bridge(services, caller, agent)
    calls.bridge_opened(first)
    task = asyncio.create_task(supervision._monitor(call, supervisor, "barge", first, agent))
    await _started(media, 1)
    calls.bridge_closed(first)
    target.stream.monitor = object()  # type: ignore[assignment]
    calls.bridge_opened(_bridge(services, _side(1, agent.stream), target))
    await asyncio.wait_for(task, 1)
    assert media.started == [(1, 2, "barge")]
