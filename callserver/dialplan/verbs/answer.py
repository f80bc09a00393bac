"""``answer``: answer the call (200 OK), or ``answer: early`` for early media (183 with SDP).

Early media lets an announcement ("we are closed") play before any answer, so the call is not
charged (RFC 3960). Playing on an unanswered call answers it first, so ``answer`` is needed only
for early media, to answer before a silent step, or to ring first: with ``ring`` the caller
gets 180 Ringing (RFC 3261 §21.1.2) and the answer follows that long after.

    open_line:
      answer: early
    pick_up:
      answer:
      ring: 5s
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from callserver.dialplan.values import Duration
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """``answer:`` (or ``answer: now``) answers; ``answer: early`` sends 183 with SDP;
    ``ring``: 180 Ringing this long before a 200 OK (default: none)."""

    answer: Literal["now", "early"] = "now"
    ring: Duration = Field(0.0, ge=0, le=300)

    @field_validator("answer", mode="before")
    @classmethod
    def _default(cls, value: object) -> object:
        return "now" if value is None or value is True else value

    @model_validator(mode="after")
    def _ring_before_an_answer(self) -> Params:
        if self.ring > 0 and self.answer == "early":
            raise ValueError("ring goes with an answer (200 OK): early media starts at once")
        return self


async def run(call: CallControl, step: Step) -> str | None:
    """Ring for ``ring`` seconds when asked, then answer (or start early media) unless done."""
    assert isinstance(step.params, Params)
    early = step.params.answer == "early"
    if call.answered or (early and call.early_media):
        return step.next
    if step.params.ring > 0 and not early:
        await call.ring()
        await call.pause(step.params.ring)
    await call.answer(early=early)
    return step.next


VERB = Verb(name="answer", params=Params, requires=Precondition.NONE, run=run)
