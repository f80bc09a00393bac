"""``menu``: a prompt, then digits chosen from ``options``; retries, then a fallback step.

    main_menu:
      menu: main_menu                  # the prompt (one or a list)
      options: {1: info, 2: support, 0: operator}
      invalid: invalid_choice          # prompt after a wrong entry (default shown)
      no_input: no_input               # prompt after silence (default shown)
      invalid_retries: 3               # wrong entries before the fallback
      no_input_retries: 3              # silences before the fallback
      fallback: operator               # default: hang up
      first_digit_timeout: 10s         # defaults shown
      digit_timeout: 3s
      terminator: "#"                  # ends a multi-digit entry early

The prompt can be interrupted by the first digit. Option keys may be several digits ("12");
an entry that is a whole option and the start of no longer one is taken at once. The digits
are stored in ``${digits}`` (and in ``store_as`` when named) and go into the CDR.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import (
    DigitKey,
    Duration,
    PromptItem,
    PromptList,
    StepName,
    VariableName,
)
from callserver.dialplan.verbs.base import (
    CallControl,
    Precondition,
    Step,
    StepParams,
    Verb,
    present,
)

__all__ = ["VERB", "Asking", "Params", "ask"]


class Asking(StepParams):
    """How a step asks for digits (defaults: 10 s first digit, 3 s between, 3 wrong, 3 silent)."""

    invalid: PromptList | None = ["invalid_choice"]
    no_input: PromptList | None = ["no_input"]
    invalid_retries: int = Field(3, ge=1, le=20)
    no_input_retries: int = Field(3, ge=1, le=20)
    first_digit_timeout: Duration = Field(10.0, gt=0, le=120)
    digit_timeout: Duration = Field(3.0, gt=0, le=60)
    terminator: str | None = Field("#", pattern=r"^[*#]$")

    def waits_for_caller(self) -> bool:
        """Asking waits for digits."""
        return True

    def _check_terminator(self, keys: list[str]) -> None:
        if self.terminator is not None and any(self.terminator in key for key in keys):
            raise ValueError(f"the terminator {self.terminator!r} is also used in a choice")


class Params(Asking):
    """A DTMF menu: its prompt, options, fallback and where to store the digits."""

    next_unused = "a menu continues with its options or its fallback"

    menu: PromptList
    options: dict[DigitKey, StepName] = Field(min_length=1)
    fallback: StepName | None = None
    store_as: VariableName | None = None

    @model_validator(mode="after")
    def _terminator_free(self) -> Params:
        self._check_terminator(list(self.options))
        return self

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """Every option's step and the fallback."""
        out: dict[tuple[str | int, ...], str] = {
            ("options", key): name for key, name in self.options.items()
        }
        if self.fallback is not None:
            out[("fallback",)] = self.fallback
        return out

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The menu, invalid and no-input prompts."""
        return present(menu=self.menu, invalid=self.invalid, no_input=self.no_input)


async def ask(
    call: CallControl, params: Asking, question: list[PromptItem], choices: frozenset[str]
) -> str | None:
    """Play ``question`` and collect an entry in ``choices``, with retries; None: gave up."""
    invalid = silent = 0
    longest = max(len(choice) for choice in choices)
    prompt = question
    while True:
        await call.play(expand(prompt, call.variables), barge_in=True)
        entry = await call.collect(
            max_digits=longest,
            first_timeout=params.first_digit_timeout,
            digit_timeout=params.digit_timeout,
            terminator=params.terminator,
            complete=lambda digits: _complete(digits, choices),
        )
        call.note("digits", entry.digits)
        if entry.digits in choices:
            return entry.digits
        if entry.digits:
            invalid += 1
            if invalid >= params.invalid_retries:
                return None
            prompt = [*(params.invalid or []), *question]
        else:
            silent += 1
            if silent >= params.no_input_retries:
                return None
            prompt = [*(params.no_input or []), *question]


def _complete(digits: str, choices: frozenset[str]) -> bool:
    """An entry is complete when it is a choice that no longer choice begins with."""
    return digits in choices and not any(
        len(choice) > len(digits) and choice.startswith(digits) for choice in choices
    )


async def run(call: CallControl, step: Step) -> str | None:
    """Run the menu; the chosen option's step, or the fallback (None: hang up)."""
    params = step.params
    assert isinstance(params, Params)
    choice = await ask(call, params, params.menu, frozenset(params.options))
    if choice is None:
        call.note("menu_fallback", step.name)
        return params.fallback
    call.variables["digits"] = choice
    if params.store_as is not None:
        call.variables[params.store_as] = choice
    return params.options[choice]


VERB = Verb(name="menu", params=Params, requires=Precondition.MEDIA, run=run)
