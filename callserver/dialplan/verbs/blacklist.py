"""``blacklist``: refuse listed callers; route VIP callers to their own step.

    screen:
      blacklist: ["+38761999999", "0038590*", "anonymous # withheld numbers"]
      action: reject                   # reject (default) or announce
      code: 603                        # the SIP answer to a refused caller (default shown)
      prompt: blocked                  # for announce: played as early media, then the code
      vip: ["+38761111111"]            # key customers ...
      vip_step: key_accounts           # ... go here

Entries are those of config/blacklist.txt (``policy.blacklist``): numbers in any form,
prefixes ending in ``*``, ``anonymous``; text after ``#`` is the reason written to the CDR.
The global config/blacklist.txt is applied to every call before any dialplan runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import PromptItem, PromptList, StepName
from callserver.dialplan.verbs.base import (
    CallControl,
    CompileContext,
    Precondition,
    Step,
    StepError,
    StepParams,
    Verb,
)
from callserver.policy.blacklist import NumberList, NumberListError

__all__ = ["VERB", "Lists", "Params"]


class Params(StepParams):
    """The refused callers, the action, and the VIP callers with their step."""

    # Items stay as written: policy.blacklist says "quote numbers in YAML" for an unquoted one.
    blacklist: list[Any] = Field(default_factory=list)
    action: Literal["reject", "announce"] = "reject"
    code: int = Field(603, ge=400, le=699)
    prompt: PromptList | None = None
    vip: list[Any] = Field(default_factory=list)
    vip_step: StepName | None = None

    @field_validator("blacklist", "vip", mode="before")
    @classmethod
    def _entries(cls, value: object) -> object:
        if value is None:
            return []
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Params:
        if self.action == "announce" and self.prompt is None:
            raise ValueError("action: announce needs a prompt")
        if self.vip and self.vip_step is None:
            raise ValueError("vip needs vip_step: the step VIP callers go to")
        return self

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The VIP step."""
        return {("vip_step",): self.vip_step} if self.vip_step else {}

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The announcement."""
        return {("prompt",): self.prompt} if self.prompt else {}


@dataclass(frozen=True, slots=True)
class Lists:
    """The compiled blacklist and VIP list of a step."""

    blocked: NumberList
    vip: NumberList


def prepare(params: Params, context: CompileContext) -> Lists:
    """Compile both lists; every bad entry is reported."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    lists = []
    for name, entries in (("blacklist", params.blacklist), ("vip", params.vip)):
        try:
            lists.append(NumberList.from_entries(entries, context.source, path=(name,)))
        except NumberListError as exc:
            problems.extend((problem.path, problem.message) for problem in exc.problems)
    if problems:
        raise StepError.many(problems)
    return Lists(blocked=lists[0], vip=lists[1])


async def run(call: CallControl, step: Step) -> str | None:
    """Refuse a listed caller, route a VIP, let everyone else through to ``next``."""
    params = step.params
    assert isinstance(params, Params) and isinstance(step.prepared, Lists)
    hit = step.prepared.blocked.match(call.caller)
    if hit is not None:
        call.note("blacklist", hit.summary)
        if params.action == "announce" and params.prompt is not None:
            await call.answer(early=True)
            await call.play(expand(params.prompt, call.variables), barge_in=False)
        await call.hangup(code=params.code, cause=21, reason="blacklist")
        return None
    if step.prepared.vip.match(call.caller) is not None:
        call.note("vip", True)
        return params.vip_step
    return step.next


VERB = Verb(name="blacklist", params=Params, requires=Precondition.NONE, run=run, prepare=prepare)
