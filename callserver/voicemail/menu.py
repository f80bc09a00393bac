"""What a caller hears in a voicemail box: the deposit, the PIN, the menu (keys below).

Theory of operation
-------------------
Coroutines over the call as verbs drive it (``dialplan.verbs.base.CallControl``): prompts,
digits and recording, with the menus asked through ``dialplan.verbs.menu.ask`` (retries,
then giving up as a dialplan menu does). The box's files are read and written off the event
loop (``asyncio.to_thread``); a message's WAV is decoded there too and played as audio.

``deposit``: the box's greeting (its own recording, else the ``voicemail_greeting`` prompt);
``*`` during it asks for the PIN and opens the box; any other key skips to the beep; then
the message is recorded into the box. ``box_menu``: the box, its owner already known. A
message or a greeting being recorded ends on ``#`` (the key's tone is not kept), on silence
or at the maximum length.

=========  ==============================================================================
Menu       Keys
=========  ==============================================================================
main       ``1`` the messages (new first, then saved), ``0`` options; hang up to end
message    ``4`` previous, ``5`` again, ``6`` next, ``9`` save, ``7`` delete, ``*`` back to the
           main menu (``4``, ``5``, ``6``: back, here, forward along the keypad's row)
options    ``1`` record the greeting, ``2`` change the PIN, ``*`` back
greeting   ``1`` keep it, ``2`` listen to it, ``3`` record it again
=========  ==============================================================================

Each message is introduced by its date and time in the box's time zone, read out in the
call's language (``media.say.say_datetime``). A PIN is 4 to 10 digits ended by ``#``;
three wrong PINs end the call. PIN digits never go to the CDR (menu choices do).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

import structlog

from callserver.dialplan.values import PromptItem, SayNumberItem, SilenceItem
from callserver.dialplan.verbs.base import CallControl
from callserver.dialplan.verbs.menu import Asking, ask
from callserver.media.prompts import (
    Audio,
    Play,
    PlaylistItem,
    PromptError,
    Silence,
    decode_file,
)
from callserver.media.say import NUMBER_LANGUAGES, say_datetime
from callserver.voicemail.box import Mailbox, Message, valid_pin

__all__ = ["ASKING", "BoxCall", "box_menu", "deposit", "login"]

log = structlog.get_logger("callserver.voicemail")

ASKING = Asking()
"""Each menu's retries and timeouts: those of a dialplan menu."""

Step = Literal["back", "previous", "next", "gone"]
_STEPS: dict[str, Step] = {"4": "previous", "6": "next", "9": "next"}
END_KEY = "#"  # ends a message or a greeting being recorded (its tone left out)
PIN_TRIES = 3
DRAFTS = ".drafts"  # a greeting being recorded, below the box's folder


@dataclass(frozen=True, slots=True, kw_only=True)
class BoxCall:
    """What the menus need besides the call: the box, its time zone and limits."""

    box: Mailbox
    zone: ZoneInfo
    default_pin: str | None = None  # the operator's default PIN's hash (None: no default)
    max_message: float = 120.0
    silence_end: float = 5.0
    min_message: float = 2.0
    changed: Callable[[], None] = lambda: None  # a message saved or deleted (MWI)


async def deposit(call: CallControl, box: BoxCall) -> str | None:
    """The greeting (``*``: the PIN, then the box), the beep, then a message recorded into
    the box; the message's WAV path (None: none kept, or the owner opened the box)."""
    greeting = await asyncio.to_thread(box.box.greeting)
    intro: list[PlaylistItem] = (
        [Audio(await asyncio.to_thread(decode_file, greeting))]
        if greeting is not None
        else [Play("voicemail_greeting")]
    )
    if await call.play(intro, barge_in=True) is not None:
        entry = await call.collect(
            max_digits=1, first_timeout=0.1, digit_timeout=0.1, terminator=None
        )
        if entry.digits == "*":
            if await login(call, box):
                await box_menu(call, box)
            return None
    await call.play([Play("beep")], barge_in=False)
    recorded = await call.record(
        mailbox=box.box.number,
        max_length=box.max_message,
        silence_end=box.silence_end,
        min_length=box.min_message,
        stop_keys=END_KEY,
    )
    if recorded.path is not None:
        call.note("voicemail", recorded.path)
    return recorded.path


async def login(call: CallControl, box: BoxCall) -> bool:
    """Ask for the box's PIN (``PIN_TRIES`` times); True once it is right."""
    for _ in range(PIN_TRIES):
        await call.play([Play("vm_enter_pin")], barge_in=True)
        entry = await call.collect(
            max_digits=10, first_timeout=10.0, digit_timeout=5.0, terminator="#"
        )
        pin, hashed = entry.digits, box.default_pin
        if valid_pin(pin) and await asyncio.to_thread(box.box.check_pin, pin, hashed):
            return True
        log.warning("voicemail.pin_wrong", box=box.box.number, caller=call.variables["caller"])
        await call.play([Play("vm_wrong_pin")], barge_in=False)
    return False


async def box_menu(call: CallControl, box: BoxCall) -> None:
    """The main menu, until the caller hangs up or makes no choice."""
    while True:
        summary = await asyncio.to_thread(box.box.summary)
        question: list[PromptItem] = [
            "vm_new_count",
            SayNumberItem(say_number=str(summary.new)),
            SilenceItem(silence=0.3),
            "vm_saved_count",
            SayNumberItem(say_number=str(summary.saved)),
            SilenceItem(silence=0.5),
            "vm_main_menu",
        ]
        choice = await ask(call, ASKING, question, frozenset({"1", "0"}))
        if choice is None:
            return
        if choice == "1":
            await _messages(call, box)
        else:
            await _options(call, box)


async def _messages(call: CallControl, box: BoxCall) -> None:
    """The messages in turn, back and forth; "no more messages" after the last one. On the
    first message, "previous" plays it again."""
    messages = await asyncio.to_thread(box.box.messages)
    index = 0
    while index < len(messages):
        step = await _message(call, box, messages[index])
        if step == "back":
            return
        if step == "gone":
            del messages[index]
        else:
            index = max(index - 1, 0) if step == "previous" else index + 1
    await call.play([Play("vm_no_more")], barge_in=True)


async def _message(call: CallControl, box: BoxCall, message: Message) -> Step:
    """Play one message and act on the caller's choice: to the main menu, the previous or
    the next message, or "gone" (deleted). A message whose WAV went meanwhile (the purge,
    another call of the box) is skipped."""
    try:
        audio = Audio(await asyncio.to_thread(decode_file, message.wav))
    except PromptError as exc:
        log.warning("voicemail.message_unreadable", box=box.box.number, error=exc.message)
        return "gone"
    language = call.language if call.language in NUMBER_LANGUAGES else "en"
    when = say_datetime(message.time.astimezone(box.zone), language)
    intro: list[PlaylistItem] = [Play("vm_message"), *map(Play, when), Silence(400)]
    while True:
        await call.play([*intro, audio], barge_in=True)
        choice = await ask(call, ASKING, ["vm_message_menu"], frozenset("45679*"))
        if choice == "5":
            continue
        if choice == "9":
            await asyncio.to_thread(box.box.save, message)
            box.changed()
            await call.play([Play("vm_saved")], barge_in=True)
        elif choice == "7":
            await asyncio.to_thread(box.box.delete, message)
            box.changed()
            await call.play([Play("vm_deleted")], barge_in=True)
            return "gone"
        return _STEPS.get(choice or "*", "back")


async def _options(call: CallControl, box: BoxCall) -> None:
    choice = await ask(call, ASKING, ["vm_options"], frozenset("12*"))
    if choice == "1":
        await _greeting(call, box)
    elif choice == "2":
        await _change_pin(call, box)


async def _greeting(call: CallControl, box: BoxCall) -> None:
    """Record a greeting, let the caller hear it, keep it on ``1``."""
    choice: str | None = "3"
    draft: Path | None = None
    while choice == "3":
        await call.play([Play("vm_record_greeting"), Play("beep")], barge_in=False)
        recorded = await call.record(
            mailbox=f"{box.box.number}/{DRAFTS}",
            max_length=box.max_message,
            silence_end=3.0,
            min_length=1.0,
            stop_keys=END_KEY,
        )
        draft = None if recorded.path is None else Path(recorded.path)
        choice = await ask(call, ASKING, ["vm_greeting_menu"], frozenset("123"))
        while choice == "2" and draft is not None:
            await call.play([Audio(await asyncio.to_thread(decode_file, draft))], barge_in=True)
            choice = await ask(call, ASKING, ["vm_greeting_menu"], frozenset("123"))
    if choice == "1" and draft is not None:
        await asyncio.to_thread(box.box.keep_greeting, draft)
        await call.play([Play("vm_greeting_kept")], barge_in=True)


async def _change_pin(call: CallControl, box: BoxCall) -> None:
    await call.play([Play("vm_new_pin")], barge_in=True)
    entry = await call.collect(max_digits=10, first_timeout=10.0, digit_timeout=5.0, terminator="#")
    if not valid_pin(entry.digits):
        await call.play([Play("vm_pin_invalid")], barge_in=True)
        return
    await asyncio.to_thread(box.box.set_pin, entry.digits)
    log.info("voicemail.pin_changed", box=box.box.number)
    await call.play([Play("vm_pin_changed")], barge_in=True)
