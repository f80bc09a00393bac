"""``goto``: continue with another step (``goto: main_menu``)."""

from __future__ import annotations

from callserver.dialplan.values import StepName
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """The step to continue with."""

    next_unused = "a goto step continues with its goto step"

    goto: StepName

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The step named by ``goto``."""
        return {("goto",): self.goto}


async def run(call: CallControl, step: Step) -> str | None:
    """Go to the named step."""
    assert isinstance(step.params, Params)
    return step.params.goto


VERB = Verb(name="goto", params=Params, requires=Precondition.NONE, run=run)
