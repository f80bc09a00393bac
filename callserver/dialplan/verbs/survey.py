"""``survey``: a question answered with one key; the answer is stored as a named CDR result.

    rate_us:
      survey: satisfaction             # the result's name in the CDR
      prompt: survey_question
      choices: [1, 2, 3, 4, 5]
      next: thanks

The asking options of ``menu`` apply (invalid, no_input, retries, timeouts). A caller who gives
no valid answer leaves the result empty and the call goes on to ``next``.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from callserver.dialplan.values import DigitKey, PromptItem, PromptList, VariableName
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, Verb, present
from callserver.dialplan.verbs.menu import Asking, ask

__all__ = ["VERB", "Params"]


class Params(Asking):
    """The result's name, the question and the valid answers."""

    survey: VariableName
    prompt: PromptList
    choices: list[DigitKey] = Field(min_length=1)

    @model_validator(mode="after")
    def _terminator_free(self) -> Params:
        self._check_terminator(self.choices)
        return self

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The question and the retry prompts."""
        return present(prompt=self.prompt, invalid=self.invalid, no_input=self.no_input)


async def run(call: CallControl, step: Step) -> str | None:
    """Ask, store the answer under the survey's name (CDR ``survey``) and go on."""
    params = step.params
    assert isinstance(params, Params)
    answer = await ask(call, params, params.prompt, frozenset(params.choices))
    if answer is not None:
        call.variables[params.survey] = answer
        call.note("survey", {params.survey: answer})
    return step.next


VERB = Verb(name="survey", params=Params, requires=Precondition.MEDIA, run=run)
