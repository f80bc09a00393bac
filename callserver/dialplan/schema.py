"""The shape of a dialplan file (``dialplans/<number>.yaml``), validated with pydantic v2.

    language: bs                       # the prompt language until a language step changes it
    timezone: Europe/Sarajevo          # for hours steps (default shown)
    max_duration: 30m                  # may shorten the number class's cap, never lengthen it
    start: welcome                     # the first step (default: the first one listed)
    steps:
      welcome:
        play: greeting
      main_menu:
        menu: menu
        options: {1: info, 2: support}

A step is a mapping with exactly one verb key (``play``, ``menu``, ...: the registry in
``verbs/__init__.py``) whose value is the verb's main argument; the other keys are the verb's
options and branches, and ``next``. Without ``next`` a step continues with the one listed after
it; after the last one the call ends. docs/dialplans.md documents every key.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callserver.dialplan.values import Duration, LanguageCode, StepName
from callserver.dialplan.verbs.base import Registry, StepParams, Verb

__all__ = ["DialplanFile", "StepProblem", "parse_step"]


class DialplanFile(BaseModel):
    """The top level of a dialplan file; steps are checked one by one by ``parse_step``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    description: str | None = None
    language: LanguageCode | None = None
    languages: list[LanguageCode] | None = Field(
        None, description="every language callers may hear (default: found from the steps)"
    )
    timezone: str = "Europe/Sarajevo"
    max_duration: Duration | None = Field(None, gt=0)
    start: StepName | None = None
    steps: dict[StepName, dict[str, Any]] = Field(min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (an IANA name: Europe/Sarajevo)"
            ) from None
        return value


class StepProblem(ValueError):
    """A step names no verb or several; ``message`` says which keys would do."""


def parse_step(raw: dict[str, Any], registry: Registry) -> tuple[Verb, StepParams]:
    """The verb a step names and its validated params.

    Raises:
        StepProblem: no verb key, or more than one.
        pydantic.ValidationError: the verb's params are invalid (locations inside the step).
    """
    verbs = [registry[key] for key in raw if key in registry]
    if not verbs:
        options = {name for verb in registry.values() for name in verb.params.model_fields}
        unknown = [key for key in raw if key not in options]
        if unknown:
            known = ", ".join(sorted(registry))
            raise StepProblem(f"unknown verb {unknown[0]!r} (the verbs are {known})")
    if len(verbs) != 1:
        named = ", ".join(sorted(verb.name for verb in verbs))
        known = ", ".join(sorted(registry))
        raise StepProblem(
            f"a step needs exactly one verb (one of {known})"
            + (f"; this one has {named}" if verbs else "")
        )
    verb = verbs[0]
    return verb, verb.params.model_validate(raw)
