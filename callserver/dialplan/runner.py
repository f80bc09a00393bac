"""EXECUTE: run a plan's steps on one call, from the start step until a step ends the call.

Phases as in FreeSWITCH's ``CS_*`` states: the calls layer does ROUTING (admission,
picking the plan) and then awaits ``run_plan`` in the call's task; when it returns the call is
hung up (HANGUP), its CDR written (REPORTING) and its resources dropped (DESTROY).

Before each step the runner establishes the verb's precondition: a verb that needs audio on an
unanswered call gets the answer (200 OK) first, unless early media is already up. Each step
visited is noted for the CDR. A verb that raises is a bug in it or in its prepared data: the
error is logged and the call hung up with 500 / Q.850 41 (hypercorn's per-request isolation);
cancellation (the caller hung up) passes through. Load-time checks reject loops that never wait
for the caller; ``max_steps`` still bounds a call as a last resort.
"""

from __future__ import annotations

import asyncio

import structlog

from callserver.dialplan.plan import Plan
from callserver.dialplan.verbs.base import CallControl, Precondition, Registry

__all__ = ["MAX_STEPS", "run_plan"]

MAX_STEPS = 10_000
log = structlog.get_logger("callserver.dialplan")


async def run_plan(
    plan: Plan, call: CallControl, registry: Registry, *, max_steps: int = MAX_STEPS
) -> None:
    """Run ``plan`` on ``call`` until a step returns None, then hang up (if nothing did)."""
    name: str | None = plan.start
    visited = 0
    try:
        while name is not None:
            visited += 1
            if visited > max_steps:
                log.error("dialplan.too_many_steps", plan=plan.number, step=name)
                await call.hangup(code=500, cause=41, reason="error")
                return
            step = plan.steps[name]
            verb = registry[step.verb]
            if verb.requires is not Precondition.NONE and not call.answered:
                await _establish(call, verb.requires)
            call.note("step", name)
            name = await verb.run(call, step)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("dialplan.step_failed", plan=plan.number, step=name)
        await call.hangup(code=500, cause=41, reason="error")
        return
    await call.hangup(code=None, cause=None, reason="normal")


async def _establish(call: CallControl, requires: Precondition) -> None:
    audio = call.answered or (requires is Precondition.MEDIA and call.early_media)
    if requires in (Precondition.ANSWERED, Precondition.MEDIA) and not audio:
        await call.answer()
