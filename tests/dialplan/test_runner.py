"""run_plan: steps in order, preconditions before each verb, the final hang-up, isolation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.plan import Plan
from callserver.dialplan.runner import run_plan
from callserver.dialplan.verbs import REGISTRY, play
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, Verb
from tests.dialplan.fakes import FakeCall, Hangup

CONTEXT = PlanContext(
    registry=REGISTRY, default_language="en", prompt_exists=lambda name, language: True
)


def plan(tmp_path: Path, text: str) -> Plan:
    """Compile ``text`` as the dialplan of 38733100200."""
    path = tmp_path / "38733100200.yaml"
    path.write_text(text, encoding="utf-8")
    return compile_file(path, CONTEXT)


def with_play(run: Callable[[CallControl, Step], Awaitable[str | None]]) -> dict[str, Verb]:
    """The registry with ``play`` replaced by a verb whose run is ``run``."""
    verb = Verb(name="play", params=play.Params, requires=Precondition.MEDIA, run=run)
    return {**REGISTRY, "play": verb}


IVR = """
steps:
  welcome:
    play: greeting
  main_menu:
    menu: menu
    options: {1: info, 2: bye}
  info:
    set: {seen: "yes"}
    next: main_menu
  bye:
    hangup: 486
"""


async def test_steps_are_noted_in_the_order_the_caller_takes_them(tmp_path: Path) -> None:
    """Each visited step is noted once per visit, in order, and the hangup step ends the call."""
    call = FakeCall(["1", "2"])
    await run_plan(plan(tmp_path, IVR), call, REGISTRY)
    assert call.noted("step") == ["welcome", "main_menu", "info", "main_menu", "bye"]
    assert call.hangups == [Hangup(486, None, "normal")]


async def test_a_play_on_an_unanswered_call_answers_it_first(tmp_path: Path) -> None:
    """The runner answers (200 OK) before the first verb that needs media."""
    call = FakeCall()
    await run_plan(plan(tmp_path, "steps:\n  hi:\n    play: greeting\n"), call, REGISTRY)
    assert call.actions == ["answer now", "play", "hangup"]


async def test_steps_that_need_no_media_leave_the_call_unanswered(tmp_path: Path) -> None:
    """``set`` and ``hangup`` run before any answer: the refusal is a final response."""
    call = FakeCall()
    text = "steps:\n  mark:\n    set: {x: '1'}\n  busy:\n    hangup: 486\n"
    await run_plan(plan(tmp_path, text), call, REGISTRY)
    assert call.answers == []
    assert call.hangups == [Hangup(486, None, "normal")]


async def test_early_media_is_kept_for_play_and_menu(tmp_path: Path) -> None:
    """After ``answer: early`` prompts and menus play as early media; voicemail answers."""
    text = """
steps:
  early:
    answer: early
  notice:
    play: closed
  ask:
    menu: menu
    options: {1: leave}
  leave:
    voicemail: office
"""
    call = FakeCall(["1"])
    await run_plan(plan(tmp_path, text), call, REGISTRY)
    media = ["answer early", "play", "play", "collect"]
    assert call.actions == [*media, "answer now", "play", "record", "hangup"]


async def test_the_call_is_hung_up_normally_when_the_steps_run_out(tmp_path: Path) -> None:
    """A plan whose last step does not hang up ends with a normal hang-up (BYE)."""
    call = FakeCall()
    await run_plan(plan(tmp_path, "steps:\n  hi:\n    play: greeting\n"), call, REGISTRY)
    assert call.hangups == [Hangup(None, None, "normal")]


async def test_a_failing_verb_hangs_up_with_500_cause_41_and_is_logged(tmp_path: Path) -> None:
    """A verb that raises ends the call with 500 / Q.850 41 and logs the step."""

    async def broken(call: CallControl, step: Step) -> str | None:
        raise RuntimeError("prepared data is wrong")

    call = FakeCall()
    with capture_logs() as logs:
        await run_plan(plan(tmp_path, IVR), call, with_play(broken))
    assert call.hangups == [Hangup(500, 41, "error")]
    failed = [entry for entry in logs if entry["event"] == "dialplan.step_failed"]
    assert len(failed) == 1
    assert failed[0]["log_level"] == "error"
    assert (failed[0]["plan"], failed[0]["step"]) == ("38733100200", "welcome")


async def test_cancellation_passes_through_without_a_hangup(tmp_path: Path) -> None:
    """The caller's BYE cancels the task: CancelledError escapes and the runner hangs up nothing."""
    started = asyncio.Event()

    async def endless(call: CallControl, step: Step) -> str | None:
        started.set()
        await asyncio.Event().wait()
        return None

    call = FakeCall()
    task = asyncio.create_task(run_plan(plan(tmp_path, IVR), call, with_play(endless)))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert call.hangups == []


async def test_max_steps_bounds_a_call_that_goes_round_forever(tmp_path: Path) -> None:
    """A caller who keeps choosing the same option is cut off after ``max_steps`` steps."""
    text = "steps:\n  again:\n    menu: menu\n    options: {1: again}\n"
    call = FakeCall(["1"] * 50)
    with capture_logs() as logs:
        await run_plan(plan(tmp_path, text), call, REGISTRY, max_steps=5)
    assert call.noted("step") == ["again"] * 5
    assert call.hangups == [Hangup(500, 41, "error")]
    assert [entry["event"] for entry in logs] == ["dialplan.too_many_steps"]
