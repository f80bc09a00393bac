"""``conference``: a meet-me room; the caller talks with everyone else in it until it hangs up.

    meet:
      conference: "100"                # the room: a number or a name (letters, digits, _ . -)
      pin: "4321"                      # optional: asked for before joining (then #)
      pin_tries: 3                     # wrong PINs before the call ends (default shown)
      pin_prompt: conference_pin       # defaults shown
      wrong_pin: conference_pin_wrong
      max_participants: 10             # a call beyond this is not let in
      full: room_full                  # ... but goes to this step (default: full_prompt, hang up)
      full_prompt: conference_full
      announcement: conference_welcome # optional: played before joining
      tones: true                      # join and leave tones (default shown)
      time_limit: 1h                   # optional: then the caller leaves and the plan goes on

The room is created by its first caller and removed with its last; each participant hears the
others mixed, never itself. A call stays in the room until it hangs up (or ``time_limit``). The
CDR of each participant's call names the room (``conference``); the operator's log has each
join and leave with the Call-ID. A call can be transferred into a conference number.
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import Duration, PromptItem, PromptList, StepName
from callserver.dialplan.verbs.base import (
    CallControl,
    Precondition,
    Step,
    StepParams,
    Verb,
    present,
)

__all__ = ["VERB", "Params"]

_ROOM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


class Params(StepParams):
    """The room, its PIN and limit, where a caller who cannot join goes, and the prompts."""

    conference: str
    pin: str | None = Field(None, pattern=r"^[0-9]{1,12}$")
    pin_tries: int = Field(3, ge=1, le=10)
    pin_prompt: PromptList = ["conference_pin"]
    wrong_pin: PromptList = ["conference_pin_wrong"]
    max_participants: int = Field(10, ge=2, le=500)
    full: StepName | None = None
    full_prompt: PromptList = ["conference_full"]
    announcement: PromptList | None = None
    tones: bool = True
    time_limit: Duration | None = Field(None, gt=0, le=86400)

    @field_validator("conference", "pin", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'quote {value} ("{value}"): YAML reads a number with a 0 as octal')
        return value

    @field_validator("conference")
    @classmethod
    def _room(cls, value: str) -> str:
        if not _ROOM.fullmatch(value):
            raise ValueError(f"room {value!r}: letters, digits, _ . and - only (64 at most)")
        return value

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The step a caller goes to when the room is full."""
        return {} if self.full is None else {("full",): self.full}

    def waits_for_caller(self) -> bool:
        """A conference waits for the caller (its PIN, its hang-up)."""
        return True

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The PIN prompts (with a PIN), the full prompt (without a full step), the
        announcement."""
        return present(
            pin_prompt=self.pin_prompt if self.pin else None,
            wrong_pin=self.wrong_pin if self.pin else None,
            full_prompt=self.full_prompt if self.full is None else None,
            announcement=self.announcement,
        )


async def _pin_accepted(call: CallControl, params: Params) -> bool:
    """Ask for the PIN (digits, then #) up to ``pin_tries`` times."""
    prompt = params.pin_prompt
    for _ in range(params.pin_tries):
        await call.play(expand(prompt, call.variables), barge_in=True)
        entry = await call.collect(
            max_digits=len(params.pin) + 8 if params.pin else 12,
            first_timeout=10.0,
            digit_timeout=5.0,
            terminator="#",
        )
        if entry.digits == params.pin:
            return True
        prompt = [*params.wrong_pin, *params.pin_prompt]
    await call.play(expand(params.wrong_pin, call.variables), barge_in=False)
    return False


async def run(call: CallControl, step: Step) -> str | None:
    """PIN, announcement, then the room until the call ends; the full branch when full."""
    params = step.params
    assert isinstance(params, Params)
    if params.pin is not None and not await _pin_accepted(call, params):
        call.note("end_detail", f"conference {params.conference}: PIN not given")
        await call.hangup(code=None, cause=None, reason="normal")
        return None
    if params.announcement:
        await call.play(expand(params.announcement, call.variables), barge_in=False)
    call.note("conference", params.conference)
    joined = await call.conference(
        room=params.conference,
        limit=params.max_participants,
        tones=params.tones,
        time_limit=params.time_limit,
    )
    if joined:
        return step.next
    call.note("end_detail", f"conference {params.conference}: full")
    if params.full is not None:
        return params.full
    await call.play(expand(params.full_prompt, call.variables), barge_in=False)
    await call.hangup(code=486, cause=17, reason="normal")  # Q.850 17: user busy
    return None


VERB = Verb(name="conference", params=Params, requires=Precondition.ANSWERED, run=run)
