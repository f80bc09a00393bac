"""Each registered verb run alone on a FakeCall: its branches, prompts, notes and answers."""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from callserver.calls.b2bua import ForwardOutcome
from callserver.calls.session import QueueOutcome
from callserver.config.centrex import load_centrex
from callserver.dialplan.schema import parse_step
from callserver.dialplan.verbs import REGISTRY
from callserver.dialplan.verbs.base import CompileContext, Step, StepError
from callserver.dialplan.verbs.queue import centrex_agents
from callserver.media.prompts import Play, SayDigits, SayNumber, Silence
from callserver.policy.caller import CallerId
from tests.dialplan.fakes import FakeCall, Hangup, Played, Recording

SOURCE = "dialplans/38733100200.yaml"
ROOT = Path(__file__).resolve().parents[2]


async def run(call: FakeCall, raw: dict[str, Any]) -> str | None:
    """Run the step ``raw`` (compiled as the compiler does, followed by ``after``) on ``call``."""
    verb, params = parse_step(raw, REGISTRY)
    context = CompileContext(timezone="Europe/Sarajevo", source=SOURCE)
    prepared = None if verb.prepare is None else verb.prepare(params, context)
    following = params.next if "next" in params.model_fields_set else "after"
    step = Step(name="here", verb=verb.name, params=params, next=following, prepared=prepared)
    return await verb.run(call, step)


def plays(*names: str, barge_in: bool = True, language: str = "en") -> Played:
    return Played([Play(name) for name in names], barge_in, language)


def test_every_registered_verb_is_tested_here() -> None:
    """Each verb of the registry has tests named ``test_<verb>_...`` in this module."""
    tests = [name for name in globals() if name.startswith("test_")]
    untested = {verb for verb in REGISTRY if not any(t.startswith(f"test_{verb}_") for t in tests)}
    assert not untested


@pytest.mark.parametrize("value", [None, True, "now"])
async def test_answer_sends_200_ok_once(value: object) -> None:
    """``answer``, ``answer: true`` and ``answer: now`` answer, and a second answer is a no-op."""
    call = FakeCall()
    assert await run(call, {"answer": value}) == "after"
    assert await run(call, {"answer": value, "next": "menu"}) == "menu"
    assert call.answers == ["now"] and call.answered


async def test_answer_early_sends_183_then_the_answer_still_follows() -> None:
    """``answer: early`` starts early media once; a later ``answer`` sends the 200 OK."""
    call = FakeCall()
    for _ in range(2):
        await run(call, {"answer": "early"})
    assert call.answers == ["early"] and call.early_media and not call.answered
    await run(call, {"answer": "now"})
    assert call.answers == ["early", "now"] and call.answered and not call.early_media


async def test_answer_with_ring_sends_180_waits_then_answers() -> None:
    """``ring: 5s`` rings (180), pauses 5 s, then answers; an answered call does none of it."""
    call = FakeCall()
    assert await run(call, {"answer": None, "ring": "5s"}) == "after"
    assert call.actions == ["ring", "pause 5", "answer now"]
    await run(call, {"answer": None, "ring": "5s"})
    assert call.actions == ["ring", "pause 5", "answer now"]


async def test_play_without_barge_in_leaves_typed_keys_queued() -> None:
    """A plain play plays its items in order and leaves the caller's key for a later menu."""
    call = FakeCall(["5"])
    raw = {"play": ["greeting", {"silence": "500ms"}, "menu"]}
    assert await run(call, raw) == "after"
    assert call.played == [Played([Play("greeting"), Silence(500), Play("menu")], False, "en")]
    assert call.keys == deque(["5"])


async def test_play_with_barge_in_lets_the_key_through_to_the_next_menu() -> None:
    """With barge-in the prompt is played interruptibly and the key is what the menu gets."""
    call = FakeCall(["2"])
    assert await run(call, {"play": "greeting", "barge_in": True, "next": "ask"}) == "ask"
    assert await run(call, {"menu": "menu", "options": {1: "a", 2: "b"}}) == "b"
    assert call.played == [plays("greeting"), plays("menu")]


async def test_play_with_loop_asks_for_a_repeated_interruptible_playlist() -> None:
    """``loop: true`` plays the list repeated; the barge-in key goes on to the next step."""
    call = FakeCall(["1"])
    assert await run(call, {"play": "greeting", "barge_in": True, "loop": True}) == "after"
    assert call.played == [Played([Play("greeting")], True, "en", loop=True)]
    assert call.keys == deque(["1"])


async def test_play_fills_variables_into_say_items_and_drops_unsayable_ones() -> None:
    """``${caller}`` is read as digits without ``+``; an unset variable's item is left out."""
    call = FakeCall()
    call.variables["account"] = "4711"
    items = [{"say_digits": "${caller}"}, {"say_number": "${account}"}, {"say_number": "${nope}"}]
    await run(call, {"play": items})
    assert call.played[0].items == [SayDigits("38761123456"), SayNumber(4711)]


MENU = {"menu": "menu", "options": {1: "one", 12: "twelve", 3: "three"}, "fallback": "operator"}


@pytest.mark.parametrize(
    ("keys", "chosen", "left"),
    [
        (["3", "9"], "three", ["9"]),  # no longer option starts with 3: taken at once
        (["1", "2", "7"], "twelve", ["7"]),
        (["1", None], "one", []),  # 1 then silence: the shorter option
        (["1", "#", "2"], "one", ["2"]),  # the terminator ends the entry
    ],
)
async def test_menu_takes_multi_digit_options_with_early_completion(
    keys: list[str | None], chosen: str, left: list[str]
) -> None:
    """Options of one and two digits: each entry picks its option and leaves later keys."""
    call = FakeCall(keys)
    assert await run(call, MENU) == chosen
    assert list(call.keys) == left
    assert call.played == [plays("menu")]


async def test_menu_wrong_entries_retry_then_take_the_fallback() -> None:
    """Three wrong entries: the invalid prompt before each repeat, then the fallback step."""
    call = FakeCall(["9", "4", "5", None, "2", "2"])
    assert await run(call, MENU) == "operator"
    again = plays("invalid_choice", "menu")
    assert call.played == [plays("menu"), again, again]
    assert call.noted("digits") == ["94", "5", "22"]
    assert call.noted("menu_fallback") == ["here"]


async def test_menu_silence_retries_then_hangs_up_without_a_fallback() -> None:
    """Silence twice with ``no_input_retries: 2`` and no fallback: None, the call ends."""
    call = FakeCall([None, None, "1"])
    raw = {"menu": "menu", "options": {1: "one"}, "no_input_retries": 2}
    assert await run(call, raw) is None
    assert call.played == [plays("menu"), plays("no_input", "menu")]
    assert list(call.keys) == ["1"]


async def test_menu_plays_its_own_retry_prompts_before_asking_again() -> None:
    """A wrong key, then silence, then a good key: each retry prompt precedes the menu."""
    call = FakeCall(["7", "7", None, "3"])
    raw = {**MENU, "invalid": "closed", "no_input": ["goodbye", {"silence": "1s"}]}
    assert await run(call, raw) == "three"
    assert call.played == [
        plays("menu"),
        plays("closed", "menu"),
        Played([Play("goodbye"), Silence(1000), Play("menu")], True, "en"),
    ]


async def test_menu_stores_the_choice_and_honours_its_terminator() -> None:
    """The choice goes to ``${digits}``, ``store_as`` and the CDR; ``*`` ends the entry here."""
    call = FakeCall(["1", "*"])
    assert await run(call, {**MENU, "store_as": "department", "terminator": "*"}) == "one"
    assert call.variables["digits"] == call.variables["department"] == "1"
    assert call.noted("digits") == ["1"] and call.collected[0].reason == "terminator"


@given(st.sets(st.text("0123456789*", min_size=1, max_size=4), min_size=1, max_size=6), st.data())
def test_menu_reaches_every_option_when_the_caller_types_it(
    keys: set[str], data: st.DataObject
) -> None:
    """Whatever the option keys, typing one key and falling silent picks exactly that option."""
    key = data.draw(st.sampled_from(sorted(keys)))
    options = {option: f"to_{n}" for n, option in enumerate(sorted(keys))}
    assert (
        asyncio.run(run(FakeCall([*key, None]), {"menu": "menu", "options": options}))
        == (options[key])
    )


SURVEY = {"survey": "satisfaction", "prompt": "greeting", "choices": [1, 2, 3, 4, 5]}


async def test_survey_answer_is_stored_and_noted() -> None:
    """A valid key is the survey result, in the variables and in the CDR notes."""
    call = FakeCall(["4"])
    assert await run(call, {**SURVEY, "next": "thanks"}) == "thanks"
    assert call.variables["satisfaction"] == "4"
    assert call.noted("survey") == [{"satisfaction": "4"}]


async def test_survey_without_an_answer_goes_on_with_an_empty_result() -> None:
    """Wrong keys and silence use up the retries; the call goes on, nothing is noted."""
    call = FakeCall(["9", None, "0"])
    assert await run(call, {**SURVEY, "invalid_retries": 2}) == "after"
    assert "satisfaction" not in call.variables and call.noted("survey") == []
    assert len(call.played) == 3


def caller(country: str | None, number: str = "+38761123456") -> CallerId:
    if country is None:
        return CallerId(raw="anonymous", withheld=True)
    return CallerId(raw=number, e164=number, country=country)


@pytest.mark.parametrize(
    ("raw", "who", "expected"),
    [
        ({"language": "caller_country"}, caller("HR"), "hr"),
        ({"language": "caller_country"}, caller("AT"), "de"),
        ({"language": "caller_country"}, caller("ME"), "bs"),
        ({"language": "caller_country"}, caller("US"), "en"),  # unknown: the language stays
        ({"language": "caller_country", "default": "de"}, caller("FR"), "de"),
        ({"language": "caller_country", "default": "bs"}, caller(None), "bs"),  # withheld
        ({"language": "caller_country", "map": {"HR": "de"}}, caller("HR"), "de"),
        ({"language": "caller_country", "map": {"HR": "de"}, "default": "bs"}, caller("AT"), "bs"),
        ({"language": "hr"}, caller("DE"), "hr"),
    ],
)
async def test_language_by_caller_country_or_fixed(
    raw: dict[str, Any], who: CallerId, expected: str
) -> None:
    """The default or custom country map, the default for unknown and withheld callers."""
    call = FakeCall(caller=who)
    assert await run(call, raw) == "after"
    assert call.language == expected
    assert call.noted("language") == ([] if expected == "en" else [expected])


@pytest.mark.parametrize(
    ("called", "expected"),
    [
        ("38733100200", "hr"),
        ("033 100 200", "hr"),  # any written form of the number: national here
        ("+38761123456", "bs"),
        ("004930123456", "de"),
        ("1234", "en"),
    ],
)
async def test_language_by_called_number_takes_the_longest_prefix(
    called: str, expected: str
) -> None:
    """The longest map key the called number starts with decides; none: the default."""
    call = FakeCall(called=called, language="bs")
    table = {387: "bs", 38733: "hr", "+49": "de"}
    await run(call, {"language": "called_number", "map": table, "default": "en"})
    assert call.language == expected


@pytest.mark.parametrize(("keys", "expected"), [(["2"], "en"), (["7"], "bs"), ([None], "bs")])
async def test_language_choice_plays_the_prompt_and_maps_the_key(
    keys: list[str | None], expected: str
) -> None:
    """The key pressed picks the language; a wrong key or silence keeps the default."""
    call = FakeCall(keys, language="hr")
    raw = {"language": "choice", "prompt": "menu", "map": {1: "hr", 2: "en"}, "default": "bs"}
    await run(call, raw)
    assert call.language == expected
    assert call.played == [plays("menu", language="hr")]


WEEK = {"hours": {"mon-fri": "08:00-16:00", "sat": "09:00-12:00"}, "holidays": "BA"}
BRANCHES = {"open": "welcome", "closed": "after_hours", "holiday": "holiday_message"}
HOURS = {**WEEK, **BRANCHES, "closed_dates": [date(2026, 3, 4)]}


@pytest.mark.parametrize(
    ("instant", "branch", "state"),
    [
        (datetime(2026, 3, 2, 9, 0, tzinfo=UTC), "welcome", "open"),  # Monday 10:00 CET
        (datetime(2026, 3, 2, 15, 30, tzinfo=UTC), "after_hours", "closed"),  # 16:30 CET
        (datetime(2026, 3, 7, 7, 30, tzinfo=UTC), "after_hours", "closed"),  # Saturday 08:30
        (datetime(2026, 3, 4, 9, 0, tzinfo=UTC), "after_hours", "closed"),  # a closed date
        (datetime(2026, 1, 1, 9, 0, tzinfo=UTC), "holiday_message", "holiday"),  # New Year
        (datetime(2026, 7, 4, 8, 30, tzinfo=UTC), "welcome", "open"),  # Saturday 10:30 CEST
    ],
)
async def test_hours_take_the_branch_of_the_instant(
    instant: datetime, branch: str, state: str
) -> None:
    """Open, closed, a closed date and a public holiday at fixed instants of the fake clock."""
    call = FakeCall(now=instant)
    assert await run(call, HOURS) == branch
    assert call.noted("hours") == [state]


async def test_hours_without_branches_fall_back_to_closed_then_next() -> None:
    """A holiday without ``holiday`` takes ``closed``; without either, the next step."""
    new_year = FakeCall(now=datetime(2026, 1, 1, 9, 0, tzinfo=UTC))
    assert await run(new_year, {**HOURS, "holiday": None}) == "after_hours"
    assert await run(new_year, WEEK) == "after"


async def test_hours_use_the_step_time_zone() -> None:
    """12:30 UTC is 13:30 in Sarajevo (open) but 07:30 in New York, before opening."""
    call = FakeCall(now=datetime(2026, 3, 2, 12, 30, tzinfo=UTC))
    assert await run(call, HOURS) == "welcome"
    assert await run(call, {**HOURS, "timezone": "America/New_York"}) == "after_hours"


SCREEN = {
    "blacklist": ["+38761999999 # nuisance, ticket 4711", "0038590*", "anonymous"],
    "vip": ["+38761111111"],
    "vip_step": "key_accounts",
}


@pytest.mark.parametrize(
    "who", [caller("BA", "+38761999999"), caller("HR", "+385901234567"), caller(None)]
)
async def test_blacklist_rejects_listed_callers_with_the_code(who: CallerId) -> None:
    """A number, a prefix or a withheld caller: no answer, the code, cause 21, the entry noted."""
    call = FakeCall(caller=who)
    assert await run(call, {**SCREEN, "code": 486}) is None
    assert call.hangups == [Hangup(486, 21, "blacklist")]
    assert call.answers == [] and call.played == []
    assert len(call.noted("blacklist")) == 1


async def test_blacklist_reason_and_default_code_reach_the_cdr() -> None:
    """Without ``code`` the refusal is 603; the entry's ``#`` reason is in the note."""
    call = FakeCall(caller=caller("BA", "+38761999999"))
    await run(call, SCREEN)
    assert call.hangups == [Hangup(603, 21, "blacklist")]
    reason = f"'+38761999999' ({SOURCE}: blacklist.0): nuisance, ticket 4711"
    assert call.noted("blacklist") == [reason]


async def test_blacklist_announce_plays_early_media_then_refuses() -> None:
    """``action: announce``: 183 early media, the prompt without barge-in, then the code."""
    call = FakeCall(caller=caller(None))
    raw = {**SCREEN, "action": "announce", "prompt": "closed", "code": 403}
    assert await run(call, raw) is None
    assert call.answers == ["early"]
    assert call.played == [plays("closed", barge_in=False)]
    assert call.hangups == [Hangup(403, 21, "blacklist")]


async def test_blacklist_routes_vip_callers_and_lets_others_pass() -> None:
    """A VIP goes to ``vip_step``; anyone else continues with the next step untouched."""
    vip = FakeCall(caller=caller("BA", "+38761111111"))
    assert await run(vip, SCREEN) == "key_accounts"
    assert vip.noted("vip") == [True]
    other = FakeCall(caller=caller("BA", "+38762000000"))
    assert await run(other, SCREEN) == "after"
    assert other.hangups == [] and other.notes == []


async def test_set_substitutes_values_from_before_the_step() -> None:
    """Each value is filled from the variables as they were before this step."""
    call = FakeCall()
    raw = {"set": {"department": "sales", "callback": "${caller}", "label": "${department}-x"}}
    assert await run(call, raw) == "after"
    assert call.variables["department"] == "sales"
    assert call.variables["callback"] == "+38761123456"
    assert call.variables["label"] == "-x"
    assert call.noted("variable")[0] == {"department": "sales"}


async def test_goto_continues_with_its_step_whatever_next_says() -> None:
    """``goto`` names the step to continue with."""
    assert await run(FakeCall(), {"goto": "main_menu"}) == "main_menu"


@pytest.mark.parametrize(
    ("value", "code", "cause"),
    [(None, 480, None), (486, 486, None), ({"code": 404, "cause": 1}, 404, 1)],
)
async def test_hangup_forms(value: object, code: int, cause: int | None) -> None:
    """``hangup:``, ``hangup: 486`` and ``hangup: {code, cause}`` end the call so."""
    call = FakeCall()
    assert await run(call, {"hangup": value}) is None
    assert call.hangups == [Hangup(code, cause, "normal")]


@pytest.mark.parametrize(("answered_for", "pause"), [(0.0, [30.0]), (12.5, [17.5]), (31.0, [])])
async def test_hangup_after_waits_until_the_call_has_been_answered_that_long(
    answered_for: float, pause: list[float]
) -> None:
    """``after: 30s`` pauses for what is left of 30 s since the answer, then sends BYE."""
    call = FakeCall()
    await call.answer()
    call.answered_for = answered_for
    assert await run(call, {"hangup": None, "after": "30s"}) is None
    assert call.pauses == pause and call.hangups == [Hangup(480, None, "normal")]


async def test_hangup_after_on_an_unanswered_call_counts_from_the_step() -> None:
    """Before any answer ``after`` is a wait of its own length, then the final response."""
    call = FakeCall()
    assert await run(call, {"hangup": 486, "after": "2s"}) is None
    assert call.pauses == [2.0] and call.hangups == [Hangup(486, None, "normal")]


async def test_voicemail_plays_greeting_and_beep_records_and_notes_the_message() -> None:
    """The greeting and beep without barge-in, the mailbox's limits, the path in the CDR."""
    call = FakeCall()
    assert await run(call, {"voicemail": "office", "max_length": "1m"}) is None
    assert call.played == [plays("voicemail_greeting", "beep", barge_in=False)]
    assert call.recordings == [Recording("office", 60.0, 5.0, 2.0, "#")]
    assert call.noted("voicemail") == ["/var/voicemail/office/message.wav"]


async def test_voicemail_without_beep_and_a_discarded_message_notes_nothing() -> None:
    """``beep: false`` plays only the greeting; a too short message is not noted."""
    call = FakeCall(recording_path=None)
    raw = {"voicemail": "sales", "greeting": "closed", "beep": False, "next": "bye"}
    assert await run(call, raw) == "bye"
    assert call.played == [plays("closed", barge_in=False)]
    assert call.noted("voicemail") == []


@pytest.mark.parametrize(
    ("outcome", "branches", "expected"),
    [
        (ForwardOutcome(result="answered", sip_code=200), {"busy": "vm"}, None),
        (ForwardOutcome(result="busy", sip_code=486), {"busy": "vm", "failed": "sorry"}, "vm"),
        (ForwardOutcome(result="busy", sip_code=600), {"failed": "sorry"}, "sorry"),
        (ForwardOutcome(result="no_answer"), {"no_answer": "vm", "failed": "sorry"}, "vm"),
        (ForwardOutcome(result="failed", sip_code=503), {"busy": "vm"}, None),
        (ForwardOutcome(result="barred"), {"failed": "sorry"}, "sorry"),
    ],
)
async def test_forward_takes_the_branch_of_the_outcome(
    outcome: ForwardOutcome, branches: dict[str, str], expected: str | None
) -> None:
    """A bridged call ends the dialplan; busy, no answer and failure take their branches."""
    call = FakeCall(forward_outcome=outcome)
    raw = {"forward": "+38761200300", "ring_timeout": "20s", **branches}
    assert await run(call, raw) == expected
    assert call.forwards == [("+38761200300", None, 20.0, None)]
    assert call.noted("forward") == [{"target": "+38761200300", "result": outcome.result}]


async def test_forward_barred_without_a_failure_branch_refuses_with_403() -> None:
    """Outbound barring and nowhere to go: 403 with Q.850 cause 21; the caller ID is passed on."""
    call = FakeCall(forward_outcome=ForwardOutcome(result="barred"))
    raw = {"forward": "sip:ops@example.com", "route": "mobile", "caller_id": "+38733100200"}
    assert await run(call, raw) is None
    assert call.forwards == [("sip:ops@example.com", "mobile", 30.0, "+38733100200")]
    assert call.hangups == [Hangup(403, 21, "barred")]


async def test_conference_without_pin_joins_the_room_and_notes_it() -> None:
    """No PIN: the room at once with its limit and tones; the CDR notes the room."""
    call = FakeCall()
    raw = {"conference": "100", "max_participants": 5, "time_limit": "1h"}
    assert await run(call, raw) == "after"
    assert call.conferences == [("100", 5, True, 3600.0)] and call.played == []
    assert call.noted("conference") == ["100"]


async def test_conference_pin_wrong_then_right_joins() -> None:
    """A wrong PIN hears the wrong-PIN prompt and the question again; the right one joins."""
    call = FakeCall(["1", "1", "#", "4", "3", "2", "1", "#"])
    await run(call, {"conference": "sales", "pin": "4321", "tones": False})
    assert [p.items for p in call.played] == [
        [Play("conference_pin")],
        [Play("conference_pin_wrong"), Play("conference_pin")],
    ]
    assert call.conferences == [("sales", 10, False, None)] and call.hangups == []


async def test_conference_pin_never_right_hangs_up_without_joining() -> None:
    """Tries used up: the wrong-PIN prompt, the hang-up, no room, the reason in the CDR."""
    call = FakeCall(["9", "#", None])
    await run(call, {"conference": "100", "pin": "4321", "pin_tries": 2})
    assert call.conferences == [] and call.hangups == [Hangup(None, None, "normal")]
    assert call.played[-1] == plays("conference_pin_wrong", barge_in=False)
    assert call.noted("end_detail") == ["conference 100: PIN not given"]


async def test_conference_full_plays_its_prompt_and_hangs_up() -> None:
    """A full room without a full step: the full prompt, then the hang-up as busy."""
    call = FakeCall(room_full=True)
    assert await run(call, {"conference": "100"}) is None
    assert call.played == [plays("conference_full", barge_in=False)]
    assert call.hangups == [Hangup(486, 17, "normal")]
    assert call.noted("end_detail") == ["conference 100: full"]


async def test_conference_full_goes_to_its_step() -> None:
    """A full room with a full step: that step, nothing played."""
    call = FakeCall(room_full=True)
    assert await run(call, {"conference": "100", "full": "sorry"}) == "sorry"
    assert call.played == [] and call.hangups == []


async def test_conference_announcement_plays_before_the_room() -> None:
    """The announcement, then the room."""
    call = FakeCall()
    await run(call, {"conference": "100", "announcement": "conference_welcome"})
    assert call.actions == ["play", "conference"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"conference": 100}, 'quote 100 ("100")'),
        ({"conference": "a b"}, "letters, digits, _ . and - only"),
        ({"conference": "1", "pin": "12ab"}, "String should match pattern"),
        ({"conference": "1", "max_participants": 1}, "greater than or equal to 2"),
    ],
)
def test_conference_params_are_checked_at_load(raw: dict[str, Any], message: str) -> None:
    """An unquoted number, a bad room name, a PIN with letters, a room for one: refused."""
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_step(raw, REGISTRY)


def test_record_call_plays_the_announcement_then_records() -> None:
    """The announcement is played to the caller before the stereo recording starts."""
    call = FakeCall()
    call._answered = True
    raw = {"record_call": True, "mode": "stereo", "announcement": "recording_notice"}
    assert asyncio.run(run(call, raw)) == "after"
    assert call.played == [plays("recording_notice", barge_in=False)]
    assert call.actions[-2:] == ["play", "record_call stereo"]


def test_record_call_false_stops_the_recording() -> None:
    """``record_call: false`` stops a recording an earlier step started; mixed is the default."""
    call = FakeCall()
    call._answered = True
    asyncio.run(run(call, {"record_call": True}))
    asyncio.run(run(call, {"record_call": False}))
    assert call.actions == ["record_call mixed", "stop_call_recording"]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"record_call": True, "mode": "quad"}, "mode"),
        ({"record_call": "sometimes"}, "record_call"),
        ({"record_call": True, "format": "mp3"}, "format"),
    ],
)
def test_record_call_params_are_checked_at_load(raw: dict[str, Any], message: str) -> None:
    """A wrong mode, a non-boolean switch or an unknown key is refused when the plan loads."""
    with pytest.raises(ValueError, match=message):
        parse_step(raw, REGISTRY)


def _agent(plan: str, written: str) -> tuple[str, str]:
    """Agents 201-209 of customer acme, for any plan; others are no subscribers."""
    if written.startswith("20") and len(written) == 3:
        return "acme", f"+387331002{written[1:]}"
    raise ValueError(f"{written!r} is no subscriber of group acme-office")


async def run_queue(call: FakeCall, raw: dict[str, Any]) -> str | None:
    """Run a queue step compiled with the agent lookup above."""
    verb, params = parse_step(raw, REGISTRY)
    context = CompileContext(
        timezone="Europe/Sarajevo", source=SOURCE, number="38733100200", agents=_agent
    )
    assert verb.prepare is not None
    step = Step(
        name="here",
        verb=verb.name,
        params=params,
        next="after",
        prepared=verb.prepare(params, context),
    )
    return await verb.run(call, step)


QUEUE = {
    "queue": "support",
    "agents": {"201": {"skills": {"en": 80}}, "202": {"ring_timeout": "20s"}},
    "strategy": "skills",
    "skills": ["${language}", "billing", "${unset}"],
    "vip": ["+38761*"],
    "max_wait": "5m",
    "announce_every": "20s",
    "leave_key": "9",
    "display": "Support: ",
    "alert_info": "<urn:alert:service:normal>",
    "call_info": "<https://crm.example/?n=${caller}>;purpose=info",
    "answered": "survey",
    "timeout": "message",
    "left": "message",
}


async def test_queue_asks_for_the_wait_the_step_describes() -> None:
    """Agents resolved at load, skills from variables, a VIP's priority, the display headers."""
    call = FakeCall()
    call.variables["language"] = "bs"
    assert await run_queue(call, QUEUE) == "survey"
    (request,) = call.queues
    config = request.config
    assert (config.customer, config.name, config.strategy.value) == ("acme", "support", "skills")
    assert [(a.number, dict(a.skills), a.ring_timeout) for a in config.agents] == [
        ("+38733100201", {"en": 80}, None),
        ("+38733100202", {}, 20.0),
    ]
    assert config.max_wait == 300.0 and request.announce_every == 20.0
    assert request.skills == {"bs", "billing"} and request.priority == 10
    assert request.leave_key == "9" and request.display.prefix == "Support: "
    assert request.display.headers() == (
        ("Alert-Info", "<urn:alert:service:normal>"),
        ("Call-Info", "<https://crm.example/?n=+38761123456>;purpose=info"),
    )
    assert call.noted("vip") == [True]


async def test_queue_callback_key_asks_for_its_prompts_settings_and_branch() -> None:
    """callback_key: the request carries the key, the prompts, the display; the queue's
    settings its attempts and retry; the callback outcome takes the callback branch."""
    call = FakeCall(queue_outcome=QueueOutcome(result="callback", wait=30.0))
    raw = {
        **QUEUE,
        "callback_key": "1",
        "callback_display": "Zovi: ",
        "callback_attempts": 5,
        "callback_retry": "10m",
        "callback": "message",
    }
    assert await run_queue(call, raw) == "message"
    (request,) = call.queues
    assert (request.callback_key, request.callback_display) == ("1", "Zovi: ")
    assert list(request.callback_confirm) == [Play(name="queue_callback")]
    assert list(request.callback_refused) == [Play(name="queue_callback_anonymous")]
    assert (request.config.callback_attempts, request.config.callback_retry) == (5, 600.0)
    assert call.noted("end_detail") == ["queue support: callback"]


async def test_queue_without_a_callback_branch_hangs_up_after_the_request() -> None:
    """No callback branch: the plan ends (None) once the request is confirmed."""
    call = FakeCall(queue_outcome=QueueOutcome(result="callback", wait=30.0))
    assert await run_queue(call, {**QUEUE, "callback_key": "1"}) is None


async def test_queue_announcement_says_the_position_and_the_minutes() -> None:
    """Position 3 and 61 s of estimated wait: "you are number 3 ... about 2 minutes"."""
    call = FakeCall()
    await run_queue(call, QUEUE)
    announcement = call.queues[0].announcement
    assert announcement is not None
    assert announcement(3, 61.0) == [
        Play("queue_position"),
        SayNumber(3),
        Play("queue_wait"),
        SayNumber(2),
        Play("queue_minutes"),
    ]
    assert announcement(1, None) == [Play("queue_position"), SayNumber(1)]


@pytest.mark.parametrize(
    ("result", "expected"),
    [("timeout", "message"), ("left", "message"), ("full", None), ("no_agents", None)],
)
async def test_queue_branches_by_how_the_wait_ended(result: str, expected: str | None) -> None:
    """Each outcome takes its branch (none written: the call ends) and notes it for the CDR."""
    call = FakeCall(queue_outcome=QueueOutcome(result=result, wait=3.0))  # type: ignore[arg-type]
    assert await run_queue(call, QUEUE) == expected
    assert call.noted("end_detail") == [f"queue support: {result}"]


async def test_queue_a_caller_who_hung_up_ends_the_plan() -> None:
    """Abandoned: nothing follows, and the caller not on the VIP list waits at priority 0."""
    caller = CallerId(raw="033123456", e164="+38733123456", country="BA")
    call = FakeCall(caller=caller, queue_outcome=QueueOutcome(result="abandoned", wait=7.0))
    assert await run_queue(call, QUEUE) is None
    assert call.queues[0].priority == 0 and call.noted("end_detail") == []


async def test_queue_record_asks_for_the_recording_and_its_notice() -> None:
    """``record`` passes its mode and its announcement (variables filled in) with the wait;
    a bare mode is short for ``{mode: ...}`` and no ``record`` records nothing."""
    call = FakeCall()
    call.variables["ticket"] = "42"
    notice = {"mode": "stereo", "announcement": ["recording_notice", {"say_digits": "${ticket}"}]}
    await run_queue(call, {**QUEUE, "record": notice})
    await run_queue(call, {**QUEUE, "record": "mixed"})
    await run_queue(call, QUEUE)
    recorded, short, plain = call.queues
    assert recorded.record == "stereo"
    assert recorded.record_announcement == [Play("recording_notice"), SayDigits("42")]
    assert (short.record, short.record_announcement) == ("mixed", [])
    assert (plain.record, plain.record_announcement) == (None, [])


def test_queue_record_announcement_is_a_checked_prompt() -> None:
    """The recording notice is among the step's prompts, for the load-time prompt check."""
    _, params = parse_step({**QUEUE, "record": {"announcement": "recording_notice"}}, REGISTRY)
    assert params.prompts()[("record", "announcement")] == ["recording_notice"]
    with pytest.raises(ValidationError, match="Input should be 'mixed' or 'stereo'"):
        parse_step({**QUEUE, "record": {"mode": "both"}}, REGISTRY)


def test_queue_agents_that_are_not_subscribers_are_load_errors() -> None:
    """Every unknown agent is reported with its path, and an unquoted one is refused."""
    verb, params = parse_step({"queue": "q", "agents": ["201", "301", "9"]}, REGISTRY)
    context = CompileContext(timezone="Europe/Sarajevo", source=SOURCE, agents=_agent)
    assert verb.prepare is not None
    with pytest.raises(StepError) as caught:
        verb.prepare(params, context)
    assert [path for path, _ in caught.value.problems] == [("agents", "301"), ("agents", "9")]
    with pytest.raises(ValidationError, match="quote 201"):
        parse_step({"queue": "q", "agents": {201: {}}}, REGISTRY)


def test_queue_agents_are_the_subscribers_of_the_plans_group() -> None:
    """The shipped centrex.yaml: extension 201 and number +387 33 100 203 (extension 30) are
    callcentre-demo's; a plan whose number is in no group has no agents."""
    centrex = load_centrex(ROOT / "config" / "centrex.yaml")
    lookup = centrex_agents(lambda: centrex)
    assert lookup("38733100200", "201") == ("callcentre-demo", "+38733100201")
    assert lookup("38733100200", "+387 33 100 203") == ("callcentre-demo", "+38733100203")
    assert lookup("38733100200", "30") == ("callcentre-demo", "+38733100203")
    with pytest.raises(ValueError, match="in no Centrex group"):
        lookup("38761000000", "201")
    with pytest.raises(ValueError, match="no subscriber of group callcentre-demo-office"):
        lookup("38733100200", "+38733100299")
