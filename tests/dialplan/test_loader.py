"""load_plans over a directory: good files load, a bad one keeps its last good version."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.loader import load_plans
from callserver.dialplan.plan import PlanSet
from callserver.dialplan.verbs import REGISTRY
from tests.default_plan import write_default_plan

CONTEXT = PlanContext(
    registry=REGISTRY, default_language="en", prompt_exists=lambda name, language: True
)
GOOD = "steps:\n  hello:\n    play: greeting\n"
BAD = "steps:\n  hello:\n    play: greeting\n    next: nowhere\n"


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / f"{name}.yaml").write_text(text, encoding="utf-8")


def test_every_good_file_loads_with_its_warnings(tmp_path: Path) -> None:
    """Each ``*.yaml`` becomes a plan by number; other files are ignored; warnings collected."""
    folder = tmp_path / "dialplans"
    write(folder, "38733100200", GOOD)
    write(folder, "default", GOOD + "  bye:\n    hangup:\n  unused:\n    play: closed\n")
    (folder / "notes.txt").write_text("not a dialplan", encoding="utf-8")
    result = load_plans(folder, CONTEXT)
    assert sorted(result.plans.plans) == ["38733100200", "default"]
    assert len(result.plans) == 2 and result.errors == () and result.kept == ()
    assert result.warnings == (
        f"{folder}/default.yaml:6: steps.unused: never reached from the start step 'hello'",
    )


def test_a_set_without_a_default_plan_warns_what_other_numbers_get(tmp_path: Path) -> None:
    """No default.yaml (missing, or never loaded because it is bad): one warning says that
    a number without its own plan is refused with 404."""
    write(tmp_path, "38733100200", GOOD)
    warning = (
        f"{tmp_path}/default.yaml: no default plan: a called number without a dialplan of its "
        "own is refused with 404 (CDR end_reason no_route)"
    )
    assert load_plans(tmp_path, CONTEXT).warnings == (warning,)
    write(tmp_path, "default", BAD)
    assert load_plans(tmp_path, CONTEXT).warnings == (warning,)
    write(tmp_path, "default", GOOD)
    assert load_plans(tmp_path, CONTEXT).warnings == ()


def test_the_shipped_default_plan_is_the_one_tests_write(tmp_path: Path) -> None:
    """dialplans/default.yaml compiles to the same steps as tests.default_plan's text."""
    shipped = Path(__file__).parents[2] / "dialplans" / "default.yaml"
    ours = compile_file(shipped, CONTEXT)
    theirs = compile_file(write_default_plan(tmp_path), CONTEXT)
    assert [(s.name, s.verb, s.params, s.next) for s in ours.steps.values()] == [
        (s.name, s.verb, s.params, s.next) for s in theirs.steps.values()
    ]
    assert ours.language is None and ours.max_duration is None


def test_a_missing_directory_holds_no_plans(tmp_path: Path) -> None:
    """No directory: an empty plan set and no errors."""
    result = load_plans(tmp_path / "absent", CONTEXT)
    assert len(result.plans) == 0 and result.errors == ()


def test_a_bad_file_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    """Without a previous version the bad number has no plan; its errors are returned."""
    write(tmp_path, "38733100200", GOOD)
    write(tmp_path, "38733100201", BAD)
    result = load_plans(tmp_path, CONTEXT)
    assert list(result.plans.plans) == ["38733100200"]
    assert result.errors == (
        f"{tmp_path}/38733100201.yaml:4: steps.hello.next: unknown step 'nowhere'",
    )
    assert result.kept == ()


def test_a_bad_edit_keeps_the_previous_version_in_force(tmp_path: Path) -> None:
    """A file that was good and is now bad keeps its old plan; fixing it loads the new one."""
    write(tmp_path, "38733100201", GOOD)
    first = load_plans(tmp_path, CONTEXT).plans
    old = first.plans["38733100201"]
    write(tmp_path, "38733100201", BAD)
    second = load_plans(tmp_path, CONTEXT, previous=first)
    assert second.kept == ("38733100201",) and len(second.errors) == 1
    assert second.plans.plans["38733100201"] is old
    write(tmp_path, "38733100201", GOOD.replace("greeting", "closed"))
    third = load_plans(tmp_path, CONTEXT, previous=second.plans)
    assert third.kept == () and third.plans.plans["38733100201"].version != old.version


def test_removed_files_are_dropped_on_reload(tmp_path: Path) -> None:
    """A number whose file is gone has no plan after the reload, even with a previous set."""
    write(tmp_path, "38733100200", GOOD)
    write(tmp_path, "38733100202", GOOD)
    first = load_plans(tmp_path, CONTEXT).plans
    (tmp_path / "38733100202.yaml").unlink()
    second = load_plans(tmp_path, CONTEXT, previous=first)
    assert list(second.plans.plans) == ["38733100200"] and second.kept == ()


@pytest.fixture
def plans(tmp_path: Path) -> PlanSet:
    """Plans for 38733100200, the short code 1282 and the default."""
    for name in ("38733100200", "1282", "default"):
        write(tmp_path, name, GOOD)
    return load_plans(tmp_path, CONTEXT).plans


@pytest.mark.parametrize(
    "called",
    [
        "38733100200",
        "+38733100200",
        "0038733100200",
        "033 100 200",
        "033/100-200",
        "+387 33 100200",
    ],
)
def test_plan_for_reads_every_written_form_of_the_number(plans: PlanSet, called: str) -> None:
    """E.164 digits, with +, with 00, national with 0 and with separators: one plan."""
    plan = plans.plan_for(called)
    assert plan is not None and plan.number == "38733100200"


@pytest.mark.parametrize(("called", "number"), [("1282", "1282"), ("38761000000", "default")])
def test_plan_for_short_codes_and_the_default(plans: PlanSet, called: str, number: str) -> None:
    """A short code finds its own file; a number without one gets the default plan."""
    plan = plans.plan_for(called)
    assert plan is not None and plan.number == number


def test_plan_for_without_a_default_is_none(tmp_path: Path) -> None:
    """With no default.yaml an unknown or unreadable number has no plan."""
    write(tmp_path, "38733100200", GOOD)
    plans = load_plans(tmp_path, CONTEXT).plans
    assert plans.plan_for("38761000000") is None
    assert plans.plan_for("sip-user") is None
    assert PlanSet().plan_for("38733100200") is None
