"""compile_file: the plan it builds and every error it reports, with file, line and field."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from callserver.config.errors import OperatorFileError
from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.loader import load_plans
from callserver.dialplan.plan import Plan
from callserver.dialplan.verbs import REGISTRY

NAMES = ["greeting", "menu", "invalid_choice", "no_input", "closed", "goodbye", "beep"]
NAMES.append("voicemail_greeting")
PROMPTS = {(name, language) for name in NAMES for language in ("en", "bs")} | {("greeting", "hr")}


def premium_cap(number: str, max_duration: float) -> None:
    """Per-call premium numbers (090...) are capped at 180 s; a dialplan may only shorten it."""
    if number.startswith("38790") and max_duration > 180:
        raise ValueError(f"max_duration {max_duration:g} s exceeds the class cap of 180 s")


CONTEXT = PlanContext(
    registry=REGISTRY,
    default_language="en",
    prompt_exists=lambda name, language: (name, language) in PROMPTS,
    cap_of=premium_cap,
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Work in tmp_path, so files are ``dialplans/<number>.yaml`` as operators see them."""
    monkeypatch.chdir(tmp_path)
    Path("dialplans").mkdir()


def write(text: str, number: str = "38733100200") -> Path:
    path = Path("dialplans") / f"{number}.yaml"
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path


def compiled(text: str, number: str = "38733100200") -> Plan:
    return compile_file(write(text, number), CONTEXT)


def errors(text: str, number: str = "38733100200") -> list[str]:
    with pytest.raises(OperatorFileError) as caught:
        compile_file(write(text, number), CONTEXT)
    assert str(caught.value) == "\n".join(caught.value.errors)
    return caught.value.errors


SEED = """
description: Seed company reception
language: bs
steps:
  welcome:
    play: greeting
  main_menu:
    menu: menu
    options: {1: info, 2: support}
    fallback: bye
  info:
    play: closed
    next: main_menu
  support:
    play: goodbye
  bye:
    hangup:
"""


def test_steps_fall_through_to_the_next_listed_and_the_last_ends() -> None:
    """Without ``next`` a step continues with the one listed after it; the last with none."""
    plan = compiled(SEED)
    assert plan.number == "38733100200" and plan.source == "dialplans/38733100200.yaml"
    assert plan.start == "welcome" and plan.language == "bs"
    assert {name: step.next for name, step in plan.steps.items()} == {
        "welcome": "main_menu",
        "main_menu": "info",
        "info": "main_menu",
        "support": "bye",
        "bye": None,
    }
    assert plan.steps["main_menu"].line == 6 and plan.warnings == ()


def test_explicit_start_and_next_are_kept() -> None:
    """``start`` picks the first step and an explicit ``next`` overrides the listing order."""
    text = "start: b\nsteps:\n  a:\n    play: greeting\n  b:\n    set: {x: y}\n    next: d\n"
    plan = compiled(text + "  c:\n    play: closed\n  d:\n    hangup:\n")
    assert plan.start == "b" and plan.steps["b"].next == "d" and plan.steps["a"].next == "b"
    assert [warning.split(": ")[1] for warning in plan.warnings] == ["steps.a", "steps.c"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("start: nope\nsteps:\n  a:\n    hangup:\n", ":1: start: unknown step 'nope'"),
        ("steps:\n  a:\n    play: greeting\n    next: b\n", ":4: steps.a.next: unknown step 'b'"),
        ("steps:\n  a:\n    goto: elsewhere\n", ":3: steps.a.goto: unknown step 'elsewhere'"),
        (
            "steps:\n  main_menu:\n    menu: menu\n    options:\n      1: info\n      3: sales\n"
            "  info:\n    hangup:\n",
            ":6: steps.main_menu.options.3: unknown step 'sales'",
        ),
        (
            "steps:\n  a:\n    menu: menu\n    options: {1: a}\n    fallback: operator\n",
            ":5: steps.a.fallback: unknown step 'operator'",
        ),
        (
            "steps:\n  a:\n    hours: {mon-fri: '08:00-16:00'}\n    open: b\n    holiday: feast\n"
            "  b:\n    hangup:\n",
            ":5: steps.a.holiday: unknown step 'feast'",
        ),
        (
            "steps:\n  a:\n    blacklist: []\n    vip: ['+38761111111']\n    vip_step: vips\n",
            ":5: steps.a.vip_step: unknown step 'vips'",
        ),
    ],
)
def test_unknown_step_references_are_errors(text: str, expected: str) -> None:
    """Every field that names a step is checked: start, next, goto, options, branches, vip."""
    assert errors(text) == [f"dialplans/38733100200.yaml{expected}"]


VERBS = ", ".join(sorted(REGISTRY))


def test_a_step_needs_exactly_one_verb() -> None:
    """A step without a verb or with two is refused, naming the verbs there are."""
    text = "steps:\n  a:\n    next: b\n  b:\n    play: greeting\n    hangup: 486\n"
    assert errors(text) == [
        f"dialplans/38733100200.yaml:2: steps.a: a step needs exactly one verb (one of {VERBS})",
        f"dialplans/38733100200.yaml:4: steps.b: a step needs exactly one verb (one of {VERBS})"
        "; this one has hangup, play",
    ]


def test_unknown_keys_are_errors_at_the_top_and_in_steps() -> None:
    """A misspelt top-level key and a key no verb knows are both named."""
    assert errors("lang: bs\nsteps:\n  a:\n    hangup:\n") == [
        "dialplans/38733100200.yaml:1: lang: unknown key (misspelt, or in the wrong place?)"
    ]
    assert errors("steps:\n  a:\n    play: greeting\n    volume: 3\n") == [
        "dialplans/38733100200.yaml:4: steps.a.volume: "
        "unknown key (misspelt, or in the wrong place?)"
    ]


def test_bad_durations_say_how_to_write_one() -> None:
    """Durations accept 5s, 2m, 1m30s, 500ms; anything else is refused with examples."""
    hint = "is not a duration (write e.g. 5s, 2m, 1m30s, 500ms)"
    text = "max_duration: 5 minutes\nsteps:\n  a:\n    hangup:\n"
    assert errors(text) == [f"dialplans/38733100200.yaml:1: max_duration: '5 minutes' {hint}"]
    text = "steps:\n  a:\n    menu: menu\n    options: {1: a}\n    digit_timeout: 3 secs\n"
    assert errors(text) == [f"dialplans/38733100200.yaml:5: steps.a.digit_timeout: '3 secs' {hint}"]
    plan = compiled("max_duration: 1m30s\nsteps:\n  a:\n    hangup:\n")
    assert plan.max_duration == 90.0


def test_ring_loop_and_after_are_checked_where_they_are_written() -> None:
    """A bad ``ring``, ``loop`` or ``after`` value, and ring with early media, are named by
    file, line and field."""
    text = (
        "steps:\n  a:\n    answer:\n    ring: soon\n  b:\n    play: greeting\n"
        "    loop: often\n  c:\n    answer: early\n    ring: 2s\n  d:\n    hangup:\n"
        "    after: 0s\n"
    )
    assert errors(text) == [
        "dialplans/38733100200.yaml:4: steps.a.ring: 'soon' is not a duration "
        "(write e.g. 5s, 2m, 1m30s, 500ms)",
        "dialplans/38733100200.yaml:7: steps.b.loop: Input should be a valid boolean, "
        "unable to interpret input",
        "dialplans/38733100200.yaml:8: steps.c: "
        "ring goes with an answer (200 OK): early media starts at once",
        "dialplans/38733100200.yaml:13: steps.d.after: Input should be greater than 0",
    ]
    plan = compiled("steps:\n  a:\n    answer:\n    ring: 1m\n  b:\n    hangup:\n    after: 30s\n")
    assert plan.steps["a"].params.ring == 60.0  # type: ignore[attr-defined]
    assert plan.steps["b"].params.after == 30.0  # type: ignore[attr-defined]


def test_loops_that_never_wait_for_the_caller_are_refused() -> None:
    """goto a → b → a and a step going to itself would spin forever: both are errors."""
    text = "steps:\n  a:\n    goto: b\n  b:\n    set: {x: y}\n    next: a\n  c:\n    goto: c\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml:2: steps.a: the steps a → b → a loop without waiting for the "
        "caller",
        "dialplans/38733100200.yaml:7: steps.c: the steps c → c loop without waiting for the "
        "caller",
    ]


def test_loops_through_a_menu_or_past_a_hangup_are_accepted() -> None:
    """A loop that waits for digits is fine; a hangup step never falls through to the next."""
    assert compiled(SEED).steps["info"].next == "main_menu"
    text = "steps:\n  ask:\n    menu: menu\n    options: {1: sales, 9: bye}\n  bye:\n    hangup:\n"
    plan = compiled(text + "  sales:\n    play: greeting\n    next: bye\n")
    assert plan.warnings == ()


def test_unreachable_steps_are_warnings_not_errors() -> None:
    """Steps no path reaches are warned about, by line; the plan still compiles."""
    text = "steps:\n  a:\n    play: greeting\n  b:\n    hangup:\n  c:\n    play: closed\n"
    text += "  d:\n    hangup:\n"
    assert compiled(text).warnings == (
        "dialplans/38733100200.yaml:6: steps.c: never reached from the start step 'a'",
        "dialplans/38733100200.yaml:8: steps.d: never reached from the start step 'a'",
    )


def test_a_voicemail_step_continues_only_with_a_next_it_names() -> None:
    """After a voicemail the call ends: the step listed after it is unreachable unless named."""
    text = "steps:\n  leave:\n    voicemail: office\n  bye:\n    play: goodbye\n"
    assert compiled(text).warnings == (
        "dialplans/38733100200.yaml:4: steps.bye: never reached from the start step 'leave'",
    )
    assert compiled(text.replace("office\n", "office\n    next: bye\n")).warnings == ()


def test_prompts_must_exist_in_every_language_of_the_file() -> None:
    """A language step adds its languages; a prompt missing in one of them is an error."""
    text = (
        "language: bs\nsteps:\n  pick:\n    language: called_number\n    map: {387: bs, 385: hr}\n"
    )
    text += "  hi:\n    play: [greeting, goodbye]\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml:7: steps.hi.play: prompt 'goodbye' is missing for language hr"
    ]
    plan = compiled(text.replace("385: hr", "1: en"))
    assert plan.languages == frozenset({"bs", "en"})


def test_default_prompts_of_a_menu_are_checked_too() -> None:
    """The menu's default retry prompts must exist as well; the error sits at the step's line."""
    text = "languages: [en, hr]\nsteps:\n  ask:\n    menu: greeting\n    options: {1: ask}\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml:3: steps.ask.invalid: prompt 'invalid_choice' is missing for "
        "language hr",
        "dialplans/38733100200.yaml:3: steps.ask.no_input: prompt 'no_input' is missing for "
        "language hr",
    ]


@pytest.mark.parametrize("name", ["38733100200", "default", "38790291123"])
def test_file_names_are_numbers_or_default(name: str) -> None:
    """A number of 3 to 15 digits or ``default`` names a plan."""
    assert compiled("steps:\n  a:\n    hangup:\n", name).number == name


def test_a_file_name_that_is_not_a_number_is_an_error() -> None:
    """``sales.yaml`` is refused with a sentence saying how to name the file."""
    message = (
        "(file name): {!r} is not an E.164 number: name the file after the called number's "
        "international digits (38733100200.yaml, not 033100200.yaml) or default.yaml"
    )
    assert errors("steps:\n  a:\n    hangup:\n", "sales") == [
        "dialplans/sales.yaml:1: " + message.format("sales")
    ]
    assert errors("steps:\n  a:\n    hangup:\n", "033100200") == [
        "dialplans/033100200.yaml:1: " + message.format("033100200")
    ]


def test_max_duration_may_shorten_the_number_cap_but_not_lengthen_it() -> None:
    """cap_of refuses 5m on a 090 premium number; 2m there and 5m elsewhere compile."""
    text = "max_duration: 5m\nsteps:\n  a:\n    play: greeting\n"
    assert errors(text, "38790291123") == [
        "dialplans/38790291123.yaml:1: max_duration: max_duration 300 s exceeds the class cap of "
        "180 s"
    ]
    assert compiled(text.replace("5m", "2m"), "38790291123").max_duration == 120.0
    assert compiled(text).max_duration == 300.0


def test_version_is_a_hash_of_the_content() -> None:
    """The same bytes give the same version; any change gives another."""
    first = compiled(SEED).version
    assert compiled(SEED).version == first and len(first) == 12
    assert compiled(SEED.replace("Seed company", "Seed Company")).version != first


def test_yaml_syntax_errors_name_the_line() -> None:
    """A YAML mistake is one error with its line."""
    assert errors("steps:\n  a:\n    play: [greeting\n  b: x\n") == [
        "dialplans/38733100200.yaml:4: not valid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 3)"
    ]


def test_a_date_that_does_not_exist_is_an_error_not_a_crash() -> None:
    """YAML reads 2026-02-30 as a date and fails; the file is refused, the loader goes on."""
    text = "steps:\n  a:\n    hours: {mon: '08:00-16:00'}\n    closed_dates: [2026-02-30]\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml: not valid YAML: day is out of range for month"
    ]


def test_the_file_must_be_a_mapping_with_steps() -> None:
    """A list or an empty file is refused with what the file must hold."""
    assert errors("- play: greeting\n") == [
        "dialplans/38733100200.yaml:1: the file must hold a dialplan (a mapping with a steps key)"
    ]
    assert errors("") == ["dialplans/38733100200.yaml:1: steps: Field required"]


THREE_MISTAKES = """
steps:
  welcome:
    play: greeting
    barge_in: sometimes
  main_menu:
    menu: menu
    options: {1: welcome}
    first_digit_timeout: ten seconds
  empty:
    next: welcome
"""


def test_three_mistakes_are_all_reported_in_line_order() -> None:
    """Each mistake of a file is reported with its file:line, in line order."""
    assert errors(THREE_MISTAKES) == [
        "dialplans/38733100200.yaml:4: steps.welcome.barge_in: Input should be a valid boolean, "
        "unable to interpret input",
        "dialplans/38733100200.yaml:8: steps.main_menu.first_digit_timeout: 'ten seconds' is not "
        "a duration (write e.g. 5s, 2m, 1m30s, 500ms)",
        f"dialplans/38733100200.yaml:9: steps.empty: a step needs exactly one verb (one of "
        f"{VERBS})",
    ]


def test_forward_targets_are_normalised_and_routes_checked_at_load_time() -> None:
    """A national target becomes E.164; an unknown route and a bad number are load errors."""
    context = dataclasses.replace(CONTEXT, routes=frozenset({"pstn"}))
    good = "steps:\n  out:\n    forward: '061 200 300'\n    route: pstn\n"
    plan = compile_file(write(good), context)
    assert plan.steps["out"].prepared == ("+38761200300", None)
    bad = "steps:\n  out:\n    forward: '06x1'\n    route: carrier\n"
    with pytest.raises(OperatorFileError) as raised:
        compile_file(write(bad), context)
    assert raised.value.errors == [
        "dialplans/38733100200.yaml:3: steps.out.forward: '06x1' is neither a number nor a "
        "sip: URI",
    ]
    unknown_route = "steps:\n  out:\n    forward: '+38761200300'\n    route: carrier\n"
    with pytest.raises(OperatorFileError) as raised:
        compile_file(write(unknown_route), context)
    assert raised.value.errors == [
        "dialplans/38733100200.yaml:4: steps.out.route: unknown route 'carrier' "
        "(config/trunks.yaml has pstn)",
    ]


def test_a_step_named_twice_is_an_error_not_a_silent_override() -> None:
    """YAML keys are unique: a second step of the same name is refused with both lines."""
    text = "steps:\n  welcome:\n    play: greeting\n  welcome:\n    hangup:\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml:4: not valid YAML: duplicate key 'welcome' (first at line 2)"
    ]


def test_next_on_a_step_that_never_uses_it_is_an_error() -> None:
    """A menu continues with its options: a next written on it would silently do nothing."""
    text = (
        "steps:\n  m:\n    menu: menu\n    options: {1: bye}\n    next: bye\n  bye:\n    hangup:\n"
    )
    assert errors(text) == [
        "dialplans/38733100200.yaml:5: steps.m.next: next is not used here: "
        "a menu continues with its options or its fallback"
    ]


def test_forward_caller_id_is_normalised_and_yml_files_load(tmp_path: Path) -> None:
    """A caller ID given nationally is sent in E.164; a .yml file is a dialplan too."""
    plan = compiled("steps:\n  out:\n    forward: '+38761200300'\n    caller_id: 033 100 200\n")
    assert plan.steps["out"].prepared == ("+38761200300", "+38733100200")
    Path("dialplans/38733100201.yml").write_text("steps:\n  a:\n    hangup:\n")
    assert "38733100201" in load_plans(Path("dialplans"), CONTEXT).plans.plans


def test_the_files_time_zone_and_a_surveys_keys_are_checked() -> None:
    """A misspelt top-level time zone is refused; a survey has no fallback key to write."""
    assert errors("timezone: Europe/Sarjevo\nsteps:\n  a:\n    hangup:\n") == [
        "dialplans/38733100200.yaml:1: timezone: unknown time zone 'Europe/Sarjevo' "
        "(an IANA name: Europe/Sarajevo)"
    ]
    survey = "steps:\n  s:\n    survey: x\n    prompt: menu\n    choices: [1]\n    fallback: a\n"
    assert errors(survey) == [
        "dialplans/38733100200.yaml:6: steps.s.fallback: "
        "unknown key (misspelt, or in the wrong place?)"
    ]


def test_steps_are_checked_even_when_a_top_level_key_is_wrong() -> None:
    """A bad time zone and a missing prompt in one file are both reported in one run."""
    text = "timezone: Europe/Sarjevo\nsteps:\n  a:\n    play: greetng\n"
    assert errors(text) == [
        "dialplans/38733100200.yaml:1: timezone: unknown time zone 'Europe/Sarjevo' "
        "(an IANA name: Europe/Sarajevo)",
        "dialplans/38733100200.yaml:4: steps.a.play: prompt 'greetng' is missing for language en",
    ]
