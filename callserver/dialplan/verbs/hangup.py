"""``hangup``: end the call; before the answer with a SIP code (and a Q.850 cause).

bye:
  hangup:            # BYE when answered, 480 otherwise
busy:
  hangup: 486
closed_for_good:
  hangup: {code: 404, cause: 1}
time_is_up:
  hangup:
  after: 30s         # BYE once the call has been answered 30 s (at once if it has)

With ``after`` the step waits until the call has lasted that long since its answer (an
unanswered call: that long from the step), the caller hearing whatever was left playing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callserver.dialplan.values import Duration
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Hangup(BaseModel):
    """The final response of an unanswered call and its Q.850 cause (ITU-T Q.850 Table 1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    code: int = Field(480, ge=400, le=699)
    cause: int | None = Field(None, ge=1, le=127)


class Params(StepParams):
    """``hangup:``, ``hangup: 486`` or ``hangup: {code: 486, cause: 17}``; ``after``: how
    long after the answer (default: at once)."""

    next_unused = "a hangup step ends the call"

    hangup: Hangup = Field(default_factory=Hangup)
    after: Duration | None = Field(None, gt=0, le=86400)

    @field_validator("hangup", mode="before")
    @classmethod
    def _short(cls, value: object) -> object:
        if value is None:
            return {}
        return {"code": value} if isinstance(value, int) and not isinstance(value, bool) else value


async def run(call: CallControl, step: Step) -> str | None:
    """End the call (once ``after`` has passed since the answer, when written)."""
    assert isinstance(step.params, Params)
    params = step.params
    if params.after is not None:
        wait = params.after - (call.since_answer() or 0.0)
        if wait > 0:
            await call.pause(wait)
    detail = params.hangup
    await call.hangup(code=detail.code, cause=detail.cause, reason="normal")
    return None


VERB = Verb(name="hangup", params=Params, requires=Precondition.NONE, run=run)
