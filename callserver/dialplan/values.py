"""The value types a dialplan file is written in: durations, step names, prompts, digits.

Operators write ``"5s"``, ``"2m"``, ``"1m30s"`` or ``"500ms"`` (a bare number is seconds), step
names such as ``main_menu``, prompts as a name (``greeting``), a list of names, or playlist items
(``{say_digits: "${caller}"}``, ``{say_number: 42}``, ``{silence: 1s}``). Each type checks its
value when the file is loaded, so an error names the file, line and field.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from callserver.policy.numbering import normalise

__all__ = [
    "LANGUAGE_PATTERN",
    "VARIABLE",
    "DigitKey",
    "Duration",
    "LanguageCode",
    "PromptItem",
    "PromptList",
    "SayDigitsItem",
    "SayNumberItem",
    "SilenceItem",
    "StepName",
    "VariableName",
    "number_key",
    "parse_duration",
    "prompt_names",
]

LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${name}`` in a say item or a ``set`` value."""


def parse_duration(value: object) -> float:
    """Seconds from ``"5s"``, ``"2m"``, ``"1h"``, ``"1m30s"``, ``"500ms"`` or a number of seconds.

    Raises:
        ValueError: not a duration, or negative.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration (write e.g. 5s, 2m, 1m30s)")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value} is negative: a duration is 0 or more")
        return float(value)
    text = str(value).strip().replace(" ", "")
    parts = _DURATION.findall(text)
    if not text or "".join(number + unit for number, unit in parts) != text:
        raise ValueError(f"{value!r} is not a duration (write e.g. 5s, 2m, 1m30s, 500ms)")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def number_key(number: str) -> str:
    """A number as plans name it: E.164 digits without ``+`` (``033 100 200`` ->
    ``38733100200``), a short code as it is, and anything else with ``+`` stripped."""
    try:
        return normalise(number).lstrip("+")
    except ValueError:
        return number.lstrip("+")


def _text_key(value: object) -> object:
    # YAML reads an unquoted 1 as the integer 1: a digit key or a prompt name is text to us.
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
StepName = Annotated[
    str,
    BeforeValidator(_text_key),
    Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,63}$"),
]
VariableName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
LanguageCode = Annotated[str, Field(pattern=LANGUAGE_PATTERN)]
DigitKey = Annotated[str, BeforeValidator(_text_key), Field(pattern=r"^[0-9*#]{1,16}$")]
PromptName = Annotated[
    str, BeforeValidator(_text_key), Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
]


class SayDigitsItem(BaseModel):
    """``{say_digits: "123"}``: read digit by digit; ``${variable}`` is replaced at play time."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    say_digits: Annotated[str, BeforeValidator(_text_key)]


class SayNumberItem(BaseModel):
    """``{say_number: 42}``: said as a number (0 to 999 999), or ``"${variable}"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    say_number: Annotated[str, BeforeValidator(_text_key)]


class SilenceItem(BaseModel):
    """``{silence: 1s}``: a pause."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    silence: Duration


PromptItem = PromptName | SayDigitsItem | SayNumberItem | SilenceItem


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str | int | dict) else value


def _check_literals(items: list[PromptItem]) -> list[PromptItem]:
    for item in items:
        if isinstance(item, SayDigitsItem) and not _sayable(item.say_digits, r"\+?[0-9 -]+"):
            raise ValueError(f"say_digits {item.say_digits!r}: digits only (spaces, - allowed)")
        if isinstance(item, SayNumberItem) and not _sayable(item.say_number, r"[0-9]{1,6}"):
            raise ValueError(f"say_number {item.say_number!r}: a number from 0 to 999999")
    return items


def _sayable(text: str, pattern: str) -> bool:
    return bool(VARIABLE.fullmatch(text) or re.fullmatch(pattern, text))


PromptList = Annotated[
    list[PromptItem],
    BeforeValidator(_as_list),
    AfterValidator(_check_literals),
    Field(min_length=1),
]
"""One prompt or a list of them: ``greeting`` or ``[greeting, {silence: 1s}, menu]``."""


def prompt_names(items: list[PromptItem]) -> list[str]:
    """The recorded prompt names a playlist uses (number words of say items excluded)."""
    return [item for item in items if isinstance(item, str)]
