"""``record_call``: from this step on the whole call is recorded, the caller and the other party.

    recorded:
      record_call: true                 # false: stop a recording an earlier step started
      mode: stereo                      # mixed (one channel, default) or stereo (caller left)
      announcement: recording_notice    # optional: played to the caller first

The recording goes on through the steps after it (a ``forward`` records the caller and the
forwarded party) until the call ends; its file is
``<data_dir>/recordings/<customer>/YYYY/MM/DD/<uuid>.wav`` and the call's CDR (``uuid``) names
it (``recording_path``, ``recording_seconds``). A call already recorded (by an earlier step or
by its customer's ``recording: {calls: all}``) keeps its one recording.
"""

from __future__ import annotations

from typing import Literal

from callserver.dialplan.playlist import expand
from callserver.dialplan.values import PromptItem, PromptList
from callserver.dialplan.verbs.base import (
    CallControl,
    Precondition,
    Step,
    StepParams,
    Verb,
    present,
)

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """Whether to record (or stop), one channel or two, and what the caller hears first."""

    record_call: bool
    mode: Literal["mixed", "stereo"] = "mixed"
    announcement: PromptList | None = None

    def prompts(self) -> dict[tuple[str | int, ...], list[PromptItem]]:
        """The announcement, for the load-time prompt check."""
        return present(announcement=self.announcement)


async def run(call: CallControl, step: Step) -> str | None:
    """Play the announcement, then start the call's recording (or stop it)."""
    params = step.params
    assert isinstance(params, Params)
    if not params.record_call:
        call.stop_call_recording()
        return step.next
    announcement = expand(params.announcement or [], call.variables)
    await call.record_call(mode=params.mode, announcement=announcement)
    return step.next


VERB = Verb(name="record_call", params=Params, requires=Precondition.ANSWERED, run=run)
