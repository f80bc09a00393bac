"""``language``: the prompt language for the rest of the call.

    pick_language:
      language: caller_country         # or called_number, choice, or a fixed code (hr)
      map: {HR: hr, DE: de, AT: de, CH: de, BA: bs, RS: bs, ME: bs}
      default: en

- ``caller_country``: the country of the caller's E.164 number (libphonenumber's region) through
  ``map``; without a map, HR → hr, DE/AT/CH/LI → de, BA/RS/ME → bs. Unknown or withheld: default.
- ``called_number``: the longest ``map`` key (digits) the called number starts with.
- ``choice``: ``prompt`` is played and the digit pressed picks the language (``map: {1: bs,
  2: en}``); no or a wrong digit keeps ``default``.
- a code such as ``hr``: that language.
``default`` (when given) applies when nothing else decides; otherwise the language stays.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import (
    Duration,
    LanguageCode,
    PromptItem,
    PromptList,
    number_key,
)
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["COUNTRY_LANGUAGES", "VERB", "Params"]

COUNTRY_LANGUAGES = {
    "HR": "hr",
    "DE": "de",
    "AT": "de",
    "CH": "de",
    "LI": "de",
    "BA": "bs",
    "RS": "bs",
    "ME": "bs",
}
"""The map used by ``language: caller_country`` when the step gives none."""

_Mode = Literal["caller_country", "called_number", "choice"]


class Params(StepParams):
    """How the language is chosen, its map, the default and the choice prompt."""

    language: _Mode | LanguageCode
    map: dict[str, LanguageCode] = Field(default_factory=dict)
    default: LanguageCode | None = None
    prompt: PromptList | None = None
    timeout: Duration = Field(5.0, gt=0, le=60)

    @model_validator(mode="before")
    @classmethod
    def _text_keys(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("map"), dict):
            data = {**data, "map": {str(key): value for key, value in data["map"].items()}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.language == "choice" and (self.prompt is None or not self.map):
            raise ValueError("language: choice needs a prompt and a map of digits to languages")
        if self.language == "called_number" and not self.map:
            raise ValueError("language: called_number needs a map of number prefixes")
        return self

    def waits_for_caller(self) -> bool:
        """A choice waits for a digit."""
        return self.language == "choice"

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The choice prompt."""
        return {("prompt",): self.prompt} if self.prompt else {}

    def languages(self) -> set[str]:
        """Every language this step may choose."""
        fixed = {self.language} if self.language not in _Mode.__args__ else set()  # type: ignore[attr-defined]
        table = self.map or (COUNTRY_LANGUAGES if self.language == "caller_country" else {})
        return fixed | set(table.values()) | ({self.default} if self.default else set())


async def run(call: CallControl, step: Step) -> str | None:
    """Set ``call.language``."""
    params = step.params
    assert isinstance(params, Params)
    chosen = await _choose(call, params)
    if chosen is None:
        chosen = params.default
    if chosen is not None:
        call.language = chosen
        call.note("language", chosen)
    return step.next


async def _choose(call: CallControl, params: Params) -> str | None:
    if params.language == "caller_country":
        country = call.caller.country
        return None if country is None else (params.map or COUNTRY_LANGUAGES).get(country)
    if params.language == "called_number":
        digits = number_key(call.called)
        keys = [key for key in params.map if digits.startswith(number_key(key))]
        return params.map[max(keys, key=len)] if keys else None
    if params.language == "choice":
        assert params.prompt is not None
        await call.play(expand(params.prompt, call.variables), barge_in=True)
        entry = await call.collect(
            max_digits=1,
            first_timeout=params.timeout,
            digit_timeout=params.timeout,
            terminator=None,
        )
        return params.map.get(entry.digits)
    return params.language


VERB = Verb(name="language", params=Params, requires=Precondition.NONE, run=run)
