"""The dialplan corpus: every good file compiles cleanly, every bad one fails with its message.

Bad files are named for their mistake, not for a number, so each is compiled as a copy named
``dialplans/38733100200.yaml`` (in tmp_path); the messages below name that copy. Prompts are
looked up in the shipped prompts/ directory along the default language chain, as the server
does.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import holidays
import pytest

from callserver.config.centrex import load_centrex
from callserver.config.errors import OperatorFileError
from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.runner import run_plan
from callserver.dialplan.verbs import REGISTRY
from callserver.dialplan.verbs.queue import centrex_agents
from callserver.media.prompts import PromptStore
from callserver.media.settings import MediaSettings
from callserver.policy.caller import CallerId
from tests.dialplan.fakes import FakeCall, Hangup

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "dialplans"
PROMPTS = PromptStore(ROOT / "prompts", MediaSettings().language_chain)


def premium_cap(number: str, max_duration: float) -> None:
    """Per-call premium numbers (090...) are capped at 180 s; a dialplan may only shorten it."""
    if number.startswith("38790") and max_duration > 180:
        raise ValueError(f"max_duration {max_duration:g} s exceeds the class cap of 180 s")


CENTREX = load_centrex(ROOT / "config" / "centrex.yaml")  # queue steps' agents: its subscribers
CONTEXT = PlanContext(
    registry=REGISTRY,
    default_language="en",
    prompt_exists=PROMPTS.exists,
    cap_of=premium_cap,
    agents=centrex_agents(lambda: CENTREX),
)
VERBS = ", ".join(sorted(REGISTRY))
COUNTRIES = ", ".join(sorted(holidays.list_supported_countries(include_aliases=False)))
ONE_VERB = f"a step needs exactly one verb (one of {VERBS})"
DURATION = "is not a duration (write e.g. 5s, 2m, 1m30s, 500ms)"

BAD: dict[str, list[str]] = {
    "announce-without-prompt": [":4: steps.screen: action: announce needs a prompt"],
    "bad-blacklist-entry": [
        ":7: steps.screen.blacklist.1: '387*' is a prefix without +, 00 or 0: write an "
        "international prefix with + or 00 (+387*) or a national one with 0 (061*)"
    ],
    "bad-duration": [f":7: steps.main_menu.first_digit_timeout: '10 sec' {DURATION}"],
    "bad-hangup-code": [
        ":5: steps.refuse.hangup.code: Input should be greater than or equal to 400"
    ],
    "bad-language-code": [
        ":2: language: String should match pattern '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$'"
    ],
    "bad-time": [
        ":7: steps.office_hours.hours.sat: '24:30' is not a time of day (HH:MM, 00:00-24:00)"
    ],
    "bad-timezone": [
        ":7: steps.office_hours.timezone: unknown time zone 'Europe/Sarjevo'; "
        "did you mean 'Europe/Sarajevo'?"
    ],
    "blacklist-number-unquoted": [
        ":5: steps.screen.blacklist.1: 38761888888 is not text: quote numbers in YAML ('061123456')"
    ],
    "choice-without-map": [
        ":4: steps.choose: language: choice needs a prompt and a map of digits to languages"
    ],
    "conference-pin-unquoted": [
        ':6: steps.meet.pin: quote 4321 ("4321"): YAML reads a number with a 0 as octal'
    ],
    "day-named-twice": [
        ":7: steps.office_hours.hours.fri: fri is named twice, in 'mon-fri' and 'fri'; "
        "name each day once"
    ],
    "impossible-date": [": not valid YAML: day is out of range for month"],
    "loop-without-input": [
        ":4: steps.welcome: the steps welcome → mark → retry → welcome loop without waiting for "
        "the caller"
    ],
    "max-duration-zero": [":3: max_duration: Input should be greater than 0"],
    "missing-prompt": [
        ":5: steps.welcome.play: prompt 'welcome_message' is missing for language bs"
    ],
    "no-steps": [":2: steps: Field required"],
    "no-verb": [f":6: steps.closed: {ONE_VERB}"],
    "queue-agent-twice": [":5: steps.support.agents.+38733100201: +38733100201 is listed twice"],
    "queue-agent-unquoted": [':5: steps.support.agents: quote 201 ("201"): an agent is text'],
    "queue-bad-caller-skill": [
        ":6: steps.support.skills: skill '${language}-speaker': a word (en, billing) or one "
        "${variable}"
    ],
    "queue-bad-name": [
        ":4: steps.support.queue: queue 'support line': letters, digits, _ . and - only "
        "(64 at most)"
    ],
    "queue-bad-strategy": [
        ":6: steps.support.strategy: Input should be 'ring_all', 'longest_idle', 'round_robin', "
        "'fewest_calls' or 'skills'"
    ],
    "queue-without-agents": [":3: steps.support: agents: a queue needs at least one agent"],
    "queue-agent-not-subscriber": [
        ":5: steps.support.agents.299: '299' is no subscriber of group callcentre-demo-office"
    ],
    "queue-bad-record-mode": [":6: steps.support.record.mode: Input should be 'mixed' or 'stereo'"],
    "queue-leave-key-without-left": [
        ":3: steps.support: leave_key needs left: the step a caller who leaves goes to"
    ],
    "queue-callback-key-is-leave-key": [
        ":3: steps.support: callback_key and leave_key are both '9'"
    ],
    "queue-callback-retry-too-short": [
        ":7: steps.support.callback_retry: Input should be greater than or equal to 10"
    ],
    "queue-skill-level": [
        ":6: steps.support.agents.201.skills: skill en: level 150 is not from 1 to 100"
    ],
    "terminator-in-option": [":4: steps.main_menu: the terminator '#' is also used in a choice"],
    "two-verbs": [f":6: steps.goodbye: {ONE_VERB}; this one has hangup, play"],
    "unknown-holiday-country": [
        ":6: steps.office_hours.holidays: unknown holiday country 'XY'; write an ISO 3166 "
        "country code, or a country and subdivision such as BA-SRP or DE-BY; the countries "
        f"are {COUNTRIES}"
    ],
    "unknown-holiday-region": [
        ":6: steps.office_hours.holidays.1: unknown subdivision 'HNK' of BA; BA has BIH "
        "(Federacija Bosne i Hercegovine, FBiH), BRC (Brčko distrikt, BD), SRP (Republika "
        "Srpska, RS)"
    ],
    "unknown-key": [":7: steps.main_menu.timeout: unknown key (misspelt, or in the wrong place?)"],
    "unknown-start": [":3: start: unknown step 'welcome'"],
    "unknown-step": [":13: steps.main_menu.options.3: unknown step 'sales'"],
    "unknown-verb": [f":4: steps.welcome: unknown verb 'paly' (the verbs are {VERBS})"],
    "vip-without-step": [":4: steps.screen: vip needs vip_step: the step VIP callers go to"],
    "voicemail-min-over-max": [
        ":4: steps.leave_message: min_length must be shorter than max_length"
    ],
    "yaml-syntax": [
        ":6: not valid YAML: did not find expected ',' or ']' "
        "(while parsing a flow sequence at line 5)"
    ],
}


def test_the_corpus_is_complete() -> None:
    """At least six good files, and every bad file is pinned here (and nothing else is)."""
    assert len(list((CORPUS / "good").glob("*.yaml"))) >= 6
    assert sorted(path.stem for path in (CORPUS / "bad").glob("*.yaml")) == sorted(BAD)


@pytest.mark.parametrize("path", sorted((CORPUS / "good").glob("*.yaml")), ids=lambda p: p.stem)
def test_good_files_compile_without_errors_or_warnings(path: Path) -> None:
    """Each good file compiles under its own name, every step reachable."""
    plan = compile_file(path, CONTEXT)
    assert plan.number == path.stem and plan.warnings == ()


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_files_fail_with_their_pinned_messages(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad file's copy raises OperatorFileError with exactly its pinned lines."""
    monkeypatch.chdir(tmp_path)
    copy = Path("dialplans") / "38733100200.yaml"
    copy.parent.mkdir()
    shutil.copyfile(CORPUS / "bad" / f"{name}.yaml", copy)
    with pytest.raises(OperatorFileError) as caught:
        compile_file(copy, CONTEXT)
    assert caught.value.errors == [f"{copy}{line}" for line in BAD[name]]


SEED = CORPUS / "good" / "38733100200.yaml"
MONDAY_10 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUNDAY_10 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


async def test_the_seed_plan_on_a_monday_morning() -> None:
    """Open: the caller hears info (1), then leaves a message for support (2)."""
    call = FakeCall(["1", "2"], now=MONDAY_10, language="bs")
    await run_plan(compile_file(SEED, CONTEXT), call, REGISTRY)
    opening = ["screen", "office_hours", "welcome", "main_menu"]
    assert call.noted("step") == [*opening, "info", "main_menu", "support"]
    assert [recording.mailbox for recording in call.recordings] == ["support"]
    assert call.noted("digits") == ["1", "2"] and call.variables["department"] == "2"
    assert call.hangups == [Hangup(None, None, "normal")]


async def test_the_seed_plan_on_a_sunday() -> None:
    """Closed: the closed notice, the reception's mailbox, goodbye and the hangup step."""
    call = FakeCall(now=SUNDAY_10, language="bs")
    await run_plan(compile_file(SEED, CONTEXT), call, REGISTRY)
    closed = ["after_hours", "reception", "goodbye", "bye"]
    assert call.noted("step") == ["screen", "office_hours", *closed]
    assert [recording.mailbox for recording in call.recordings] == ["reception"]
    assert call.hangups == [Hangup(480, None, "normal")]


async def test_the_seed_plan_refuses_a_withheld_caller_unanswered() -> None:
    """The screen step's ``anonymous`` entry refuses with 603 before any answer."""
    call = FakeCall(caller=CallerId(raw="anonymous", withheld=True), now=MONDAY_10)
    await run_plan(compile_file(SEED, CONTEXT), call, REGISTRY)
    assert call.noted("step") == ["screen"] and call.answers == []
    assert call.hangups == [Hangup(603, 21, "blacklist")]
