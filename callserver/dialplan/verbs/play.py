"""``play``: one prompt or a list, in the call's language; ``barge_in`` lets a digit stop it.

    greeting:
      play: [greeting, {silence: 500ms}, menu]
      barge_in: true

A digit that stops a prompt is kept for the next step that collects digits (a menu). With
``loop: true`` the playlist starts again at its end until a digit stops it (``barge_in``) or
the call ends; a looped prompt without barge-in plays until the call ends.
"""

from __future__ import annotations

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import PromptItem, PromptList, SayDigitsItem, SayNumberItem
from callserver.dialplan.verbs.base import (
    CallControl,
    CompileContext,
    Precondition,
    Step,
    StepParams,
    Verb,
)
from callserver.media.prompts import PlaylistItem

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """The prompts, whether a digit stops them and whether they repeat (default: no, no)."""

    play: PromptList
    barge_in: bool = False
    loop: bool = False

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The playlist."""
        return {("play",): self.play}


def prepare(params: Params, context: CompileContext) -> tuple[PlaylistItem, ...] | None:
    """The media playlist of a list without variables (prompts, silences), made once at load;
    None when a say item needs the call's variables."""
    if any(isinstance(item, SayDigitsItem | SayNumberItem) for item in params.play):
        return None
    return tuple(expand(params.play, {}))


async def run(call: CallControl, step: Step) -> str | None:
    """Play the prompts to the end (or until a digit, with barge-in), repeated with ``loop``."""
    assert isinstance(step.params, Params)
    params = step.params
    items = step.prepared
    if not isinstance(items, tuple):
        items = expand(params.play, call.variables)
    await call.play(items, barge_in=params.barge_in, loop=params.loop)
    return step.next


VERB = Verb(name="play", params=Params, requires=Precondition.MEDIA, run=run, prepare=prepare)
