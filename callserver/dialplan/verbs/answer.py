"""``answer``: answer the call (200 OK), or ``answer: early`` for early media (183 with SDP).

Early media lets an announcement ("we are closed") play before any answer, so the call is not
charged (RFC 3960). Playing on an unanswered call answers it first, so ``answer`` is needed only
for early media or to answer before a silent step.

    open_line:
      answer: early
"""

from __future__ import annotations

from typing import Literal

from pydantic import field_validator

from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """``answer:`` (or ``answer: now``) answers; ``answer: early`` sends 183 with SDP."""

    answer: Literal["now", "early"] = "now"

    @field_validator("answer", mode="before")
    @classmethod
    def _default(cls, value: object) -> object:
        return "now" if value is None or value is True else value


async def run(call: CallControl, step: Step) -> str | None:
    """Answer (or start early media) unless already done."""
    assert isinstance(step.params, Params)
    early = step.params.answer == "early"
    if not call.answered and not (early and call.early_media):
        await call.answer(early=early)
    return step.next


VERB = Verb(name="answer", params=Params, requires=Precondition.NONE, run=run)
