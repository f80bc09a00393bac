"""``set``: call variables, for the prompts that follow (``${name}`` in say items).

remember:
  set: {department: sales, callback: "${caller}"}
"""

from __future__ import annotations

from callserver.dialplan.playlist import substitute
from callserver.dialplan.values import VariableName
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """Variables to set; values may use ``${other}``."""

    set: dict[VariableName, str]


async def run(call: CallControl, step: Step) -> str | None:
    """Set the variables, each from the values before this step."""
    assert isinstance(step.params, Params)
    before = dict(call.variables)
    for name, value in step.params.set.items():
        call.variables[name] = substitute(value, before)
        call.note("variable", {name: call.variables[name]})
    return step.next


VERB = Verb(name="set", params=Params, requires=Precondition.NONE, run=run)
