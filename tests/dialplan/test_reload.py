"""Dialplans.reload_in_slices: the running server's reload, one file per turn of the event loop,
swapped in whole at the end; a bad file keeps its previous version."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callserver.dialplan import loader
from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.loader import load_plans
from callserver.dialplan.plan import Plan, PlanSet
from callserver.dialplan.reload import Dialplans
from callserver.dialplan.verbs import REGISTRY

CONTEXT = PlanContext(
    registry=REGISTRY, default_language="en", prompt_exists=lambda name, language: True
)
GOOD = "steps:\n  hello:\n    play: greeting\n"
EDITED = "steps:\n  hello:\n    play: closed\n"
BAD = "steps:\n  hello:\n    play: greeting\n    next: nowhere\n"
FILES = 12


def _write(directory: Path, text: str, count: int = FILES) -> None:
    directory.mkdir(exist_ok=True)
    for n in range(count):
        (directory / f"3873310{n:04d}.yaml").write_text(text, encoding="utf-8")


def _versions(plans: PlanSet) -> dict[str, str]:
    return {number: plan.version for number, plan in plans.plans.items()}


async def test_the_sliced_reload_gives_what_load_plans_gives(tmp_path: Path) -> None:
    """Plans, errors, warnings and kept numbers are those of load_plans over the same files."""
    _write(tmp_path, GOOD)
    dialplans = Dialplans(tmp_path, lambda: CONTEXT)
    dialplans.reload()
    (tmp_path / "38733100003.yaml").write_text(BAD, encoding="utf-8")
    (tmp_path / "38733100004.yaml").write_text(EDITED, encoding="utf-8")
    (tmp_path / "default.yaml").write_text(GOOD + "  unused:\n    play: closed\n")
    expected = load_plans(tmp_path, CONTEXT, dialplans.plans)
    result = await dialplans.reload_in_slices()
    assert (result.errors, result.warnings, result.kept) == (
        expected.errors,
        expected.warnings,
        expected.kept,
    )
    assert _versions(result.plans) == _versions(expected.plans)
    assert dialplans.plans is result.plans


async def test_a_bad_file_is_logged_with_file_line_and_field_and_keeps_its_version(
    tmp_path: Path,
) -> None:
    """A file made bad logs dialplan.invalid with file:line: field and its number keeps the
    plan it had; the other edited files take effect."""
    _write(tmp_path, GOOD)
    dialplans = Dialplans(tmp_path, lambda: CONTEXT)
    dialplans.reload()
    before = _versions(dialplans.plans)
    _write(tmp_path, EDITED)
    bad = tmp_path / "38733100005.yaml"
    bad.write_text(BAD, encoding="utf-8")
    with capture_logs() as logs:
        await dialplans.reload_in_slices()
    invalid = [entry["error"] for entry in logs if entry["event"] == "dialplan.invalid"]
    assert invalid == [f"{bad}:4: steps.hello.next: unknown step 'nowhere'"]
    (loaded,) = [entry for entry in logs if entry["event"] == "dialplan.loaded"]
    assert (loaded["plans"], loaded["errors"], loaded["kept_previous"]) == (FILES, 1, [bad.stem])
    after = _versions(dialplans.plans)
    assert after[bad.stem] == before[bad.stem]
    assert all(after[n] != before[n] for n in after if n != bad.stem)


async def test_the_loop_runs_other_tasks_between_any_two_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another task runs after every file compiled (none waits for the whole directory), and
    sees the previous plan set in force until the new one is swapped in whole."""
    _write(tmp_path, GOOD)
    dialplans = Dialplans(tmp_path, lambda: CONTEXT)
    dialplans.reload()
    previous = dialplans.plans
    _write(tmp_path, EDITED)
    compiled: list[Path] = []

    def counting(path: Path, context: PlanContext) -> Plan:
        compiled.append(path)
        return compile_file(path, context)

    monkeypatch.setattr(loader, "compile_file", counting)
    seen: list[tuple[int, bool]] = []  # files compiled so far, and the old set still in force

    async def other_task() -> None:
        while len(compiled) < FILES or dialplans.plans is previous:
            seen.append((len(compiled), dialplans.plans is previous))
            await asyncio.sleep(0)

    watcher = asyncio.create_task(other_task())
    await dialplans.reload_in_slices()
    await watcher
    assert {count for count, _ in seen} >= set(range(1, FILES))  # after each file
    assert all(old for _, old in seen)
    assert dialplans.plans is not previous and len(dialplans.plans) == FILES


async def test_reloads_run_one_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two reloads started together compile the directory one after the other, never
    interleaving their files."""
    _write(tmp_path, GOOD)
    dialplans = Dialplans(tmp_path, lambda: CONTEXT)
    compiled: list[str] = []

    def counting(path: Path, context: PlanContext) -> Plan:
        compiled.append(path.stem)
        return compile_file(path, context)

    monkeypatch.setattr(loader, "compile_file", counting)
    one, two = await asyncio.gather(dialplans.reload_in_slices(), dialplans.reload_in_slices())
    numbers = [f"3873310{n:04d}" for n in range(FILES)]
    assert compiled == numbers + numbers
    assert len(one.plans) == len(two.plans) == FILES
    assert dialplans.plans is two.plans


async def test_reload_file_replaces_one_number_and_a_bad_file_keeps_its_version(
    tmp_path: Path,
) -> None:
    """reload_file swaps in the one file's new plan, the other numbers' plans as they were
    (the same objects, though their files changed too); a bad file keeps the version before."""
    _write(tmp_path, GOOD)
    dialplans = Dialplans(tmp_path, lambda: CONTEXT)
    dialplans.reload()
    before = dict(dialplans.plans.plans)
    _write(tmp_path, EDITED)  # every file edited, only one reloaded
    one = tmp_path / "38733100002.yaml"
    result = await dialplans.reload_file(one)
    assert result.errors == () and dialplans.plans is result.plans
    after = dialplans.plans.plans
    assert after["38733100002"].version == compile_file(one, CONTEXT).version
    assert after["38733100002"].version != before["38733100002"].version
    assert all(after[n] is plan for n, plan in before.items() if n != "38733100002")
    one.write_text(BAD, encoding="utf-8")
    with capture_logs() as logs:
        result = await dialplans.reload_file(one)
    assert result.kept == ("38733100002",)
    assert dialplans.plans.plans["38733100002"] is after["38733100002"]
    [invalid] = [line for line in logs if line["event"] == "dialplan.invalid"]
    assert invalid["error"].startswith(f"{one}:4: steps.hello.next: ")
