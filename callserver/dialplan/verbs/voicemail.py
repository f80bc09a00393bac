"""``voicemail``: a greeting, a beep, then the caller's message recorded into a mailbox.

    leave_message:
      voicemail: office                # mailbox: data-dir/voicemail/office/
      greeting: voicemail_greeting     # per language, like every prompt (default shown)
      beep: true
      max_length: 2m                   # defaults shown
      silence_end: 5s                  # this much silence ends the message
      min_length: 2s                   # shorter messages are discarded

The caller ends the message by hanging up, by pressing ``#`` (its tone is not kept), or with
``silence_end`` of silence.

Each message is a WAV (8 kHz, 16-bit) with a JSON file beside it (caller, called, time,
duration, language); the CDR references it. The call ends after the message unless ``next``
names a step.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import Duration, PromptItem, PromptList
from callserver.dialplan.verbs.base import (
    CallControl,
    Precondition,
    Step,
    StepParams,
    Verb,
    present,
)

__all__ = ["VERB", "Params", "leave_message"]


class Params(StepParams):
    """The mailbox, its greeting and the recording limits."""

    voicemail: str
    greeting: PromptList | None = ["voicemail_greeting"]
    beep: bool = True
    max_length: Duration = Field(120.0, gt=0, le=3600)
    silence_end: Duration = Field(5.0, ge=0, le=60)
    min_length: Duration = Field(2.0, ge=0, le=60)

    @field_validator("voicemail")
    @classmethod
    def _mailbox(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(
                f"mailbox {value!r}: letters, digits, _ . and - only (it names a folder)"
            )
        return value

    @model_validator(mode="after")
    def _lengths(self) -> Params:
        if self.min_length >= self.max_length:
            raise ValueError("min_length must be shorter than max_length")
        return self

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The greeting and the beep."""
        beep: list[PromptItem] = ["beep"]
        return present(greeting=self.greeting, beep=beep if self.beep else None)


async def run(call: CallControl, step: Step) -> str | None:
    """Play the greeting and the beep, record, and note the message for the CDR."""
    params = step.params
    assert isinstance(params, Params)
    intro = [*(params.greeting or []), *(["beep"] if params.beep else [])]
    if intro:
        await call.play(expand(intro, call.variables), barge_in=False)
    recorded = await call.record(
        mailbox=params.voicemail,
        max_length=params.max_length,
        silence_end=params.silence_end,
        min_length=params.min_length,
        stop_keys="#",
    )
    if recorded.path is not None:
        call.note("voicemail", recorded.path)
    return params.next  # only an explicit ``next``: by default the call ends here


async def leave_message(call: CallControl, mailbox: str) -> None:
    """The step's greeting, beep and recording into ``mailbox``, with the defaults above."""
    params = Params(voicemail=mailbox)
    await run(call, Step(name="voicemail", verb="voicemail", params=params, next=None))


VERB = Verb(name="voicemail", params=Params, requires=Precondition.ANSWERED, run=run)
