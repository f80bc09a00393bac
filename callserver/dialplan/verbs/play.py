"""``play``: one prompt or a list, in the call's language; ``barge_in`` lets a digit stop it.

    greeting:
      play: [greeting, {silence: 500ms}, menu]
      barge_in: true

A digit that stops a prompt is kept for the next step that collects digits (a menu).
"""

from __future__ import annotations

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import PromptItem, PromptList
from callserver.dialplan.verbs.base import CallControl, Precondition, Step, StepParams, Verb

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """The prompts, and whether a digit stops them (default: no)."""

    play: PromptList
    barge_in: bool = False

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The playlist."""
        return {("play",): self.play}


async def run(call: CallControl, step: Step) -> str | None:
    """Play the prompts to the end (or until a digit, with barge-in)."""
    assert isinstance(step.params, Params)
    await call.play(expand(step.params.play, call.variables), barge_in=step.params.barge_in)
    return step.next


VERB = Verb(name="play", params=Params, requires=Precondition.MEDIA, run=run)
