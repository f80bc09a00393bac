"""Tests for the box's menus on a scripted call: messages with their date in the call's
language, save and delete, the greeting recorded and kept, the PIN changed, PIN login and the
deposit of a message."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from callserver.media.prompts import Audio, Play, PlaylistItem
from callserver.voicemail.box import Mailbox, Summary, hash_pin
from callserver.voicemail.menu import BoxCall, box_menu, deposit
from tests.dialplan.fakes import FakeCall
from tests.voicemail.messages import write_message

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # a Monday; 10:00 in Sarajevo
SILENT = (None, None, None)  # three silences end a menu


def box_call(tmp_path: Path, default_pin: str | None = None) -> BoxCall:
    """Box +38733100201 in ``tmp_path``, dates said in Sarajevo time."""
    return BoxCall(
        box=Mailbox(tmp_path / "38733100201"),
        zone=ZoneInfo("Europe/Sarajevo"),
        default_pin=None if default_pin is None else hash_pin(default_pin),
    )


def names(call: FakeCall) -> list[str]:
    """Every prompt name played, in order."""
    return [item.name for p in call.played for item in p.items if isinstance(item, Play)]


def audio_played(call: FakeCall) -> list[PlaylistItem]:
    """Every decoded recording played (messages, greetings)."""
    return [item for p in call.played for item in p.items if isinstance(item, Audio)]


async def test_messages_are_dated_in_the_call_language_saved_and_deleted(tmp_path: Path) -> None:
    """1 plays the first new message after its date in Croatian; 9 saves it; 7 deletes the
    next; then "no more messages" and the main menu again."""
    box = box_call(tmp_path)
    write_message(box.box.folder, T0, call_id="first")
    write_message(box.box.folder, T0 + timedelta(days=1, minutes=5), call_id="second")
    changes: list[str] = []
    box = replace(box, changed=lambda: changes.append("changed"))
    call = FakeCall(["1", "9", "7", *SILENT], language="hr")
    await box_menu(call, box)
    assert changes == ["changed", "changed"]  # MWI told of the save and of the delete
    played = names(call)
    monday = ["vm_message", "weekday1", "day7", "month12", "clock_at", "n10", "clock_hours"]
    tuesday = ["vm_message", "weekday2", "day8", "month12", "clock_at", "n10", "clock_and", "n5"]
    start = played.index("vm_message")
    assert played[start : start + 7] == monday
    assert tuesday == played[played.index("vm_saved") + 1 :][: len(tuesday)]
    assert "vm_deleted" in played and "vm_no_more" in played
    assert len(audio_played(call)) == 2
    assert box.box.summary() == Summary(new=0, saved=1)
    assert [m.call_id for m in box.box.messages()] == ["first"]
    assert call.noted("digits")[:3] == ["1", "9", "7"]


async def test_a_recorded_greeting_is_heard_then_kept(tmp_path: Path) -> None:
    """0, 1: a greeting is recorded into the box's drafts; 2 plays it back; 1 keeps it as
    the box's greeting, which the next deposit plays instead of the default prompt."""
    box = box_call(tmp_path)
    draft = write_message(box.box.folder / ".drafts", T0)
    call = FakeCall(["0", "1", "2", "1", *SILENT], recording_path=str(draft))
    await box_menu(call, box)
    assert call.recordings[0].mailbox == "38733100201/.drafts"
    assert call.recordings[0].stop_keys == "#"  # the greeting ends on #
    assert "vm_greeting_kept" in names(call)
    assert box.box.greeting() == box.box.folder / "greeting.wav"
    assert len(audio_played(call)) == 1
    caller = FakeCall([], recording_path=None)
    await deposit(caller, box)
    assert "voicemail_greeting" not in names(caller)
    assert len(audio_played(caller)) == 1  # the subscriber's own greeting


async def test_the_pin_is_changed_and_a_bad_one_refused(tmp_path: Path) -> None:
    """0, 2 and 4 to 10 digits then # set the PIN; too few digits leave it unchanged."""
    box = box_call(tmp_path)
    await box_menu(FakeCall(["0", "2", "1", "2", "#", *SILENT]), box)
    assert not box.box.has_pin()
    call = FakeCall(["0", "2", *"13579", "#", *SILENT])
    await box_menu(call, box)
    assert "vm_pin_changed" in names(call)
    assert box.box.check_pin("13579", None)
    assert all("13579" not in str(value) for value in call.noted("digits"))


async def test_star_in_the_greeting_asks_the_pin_and_three_wrong_ones_end(
    tmp_path: Path,
) -> None:
    """* during the greeting asks for the PIN; three wrong PINs and nothing is recorded."""
    box = box_call(tmp_path, default_pin="2468")
    call = FakeCall(["*", *"1111#", *"2222#", *"3333#"])
    assert await deposit(call, box) is None
    assert names(call).count("vm_wrong_pin") == 3
    assert call.recordings == []


async def test_the_default_pin_opens_the_box(tmp_path: Path) -> None:
    """* then the operator's default PIN opens the box: its counts are said."""
    box = box_call(tmp_path, default_pin="2468")
    write_message(box.box.folder, T0)
    call = FakeCall(["*", *"2468#", *SILENT])
    assert await deposit(call, box) is None
    assert "vm_new_count" in names(call) and call.recordings == []


async def test_a_deposit_plays_the_greeting_and_beep_then_records(tmp_path: Path) -> None:
    """Without a key: the default greeting, the beep, then the message into the box, which
    # ends."""
    box = box_call(tmp_path)
    call = FakeCall([], recording_path=str(tmp_path / "m.wav"))
    assert await deposit(call, box) == str(tmp_path / "m.wav")
    assert names(call) == ["voicemail_greeting", "beep"]
    assert call.recordings[0].mailbox == "38733100201"
    assert call.recordings[0].stop_keys == "#"
    assert call.noted("voicemail") == [str(tmp_path / "m.wav")]


async def test_a_message_gone_meanwhile_is_skipped(tmp_path: Path) -> None:
    """A message whose WAV vanished after the list was read (a purge) is skipped, not fatal."""
    box = box_call(tmp_path)
    gone = write_message(box.box.folder, T0, call_id="gone")
    write_message(box.box.folder, T0 + timedelta(hours=1), call_id="kept")
    messages = box.box.messages()
    gone.unlink()
    box.box.messages = lambda: messages  # type: ignore[method-assign]
    call = FakeCall(["1", "6", *SILENT])
    await box_menu(call, box)
    assert len(audio_played(call)) == 1 and "vm_no_more" in names(call)


async def test_4_goes_to_the_previous_message_and_5_plays_it_again(tmp_path: Path) -> None:
    """Along the keypad's row: 6 next, 4 previous (on the first message: that one again), 5
    the same again; after a delete, 4 goes to the message before the deleted one."""
    box = box_call(tmp_path)
    for day in range(3):  # the 7th, 8th and 9th of December
        write_message(box.box.folder, T0 + timedelta(days=day), call_id=f"m{day}")
    keys = ["1", "6", "4", "4", "5", "6", "7", "4", "*", *SILENT]
    call = FakeCall(keys, language="en")
    await box_menu(call, box)
    played = names(call)
    days = [played[i + 2] for i, name in enumerate(played) if name == "vm_message"]
    assert days == ["day7", "day8", "day7", "day7", "day7", "day8", "day9", "day7"]
    assert [m.call_id for m in box.box.messages()] == ["m0", "m2"]
    assert "vm_no_more" not in played  # * went back to the main menu first
