"""``forward``: a second leg to a number or SIP URI, bridged to the caller (B2BUA).

    support:
      forward: "+38761200300"          # a number (through an outbound route) or sip:user@host
      route: mobile                    # outbound route in config/trunks.yaml (default: the default)
      ring_timeout: 30s                # default shown
      caller_id: pass                  # pass the caller's number, or a number to present
      busy: voicemail                  # where to go when the leg is busy (486/600)
      no_answer: voicemail             # ... not answered in ring_timeout
      failed: voicemail                # ... failed otherwise or barred (default: hang up)

The forwarded leg holds a channel and writes its own CDR, linked to the inbound one. A call
that was answered and bridged ends when either side hangs up. Loops are cut by Max-Forwards.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from callserver.dialplan.values import Duration, StepName
from callserver.dialplan.verbs.base import (
    CallControl,
    CompileContext,
    Precondition,
    Step,
    StepError,
    StepParams,
    Verb,
)
from callserver.policy.numbering import normalise
from callserver.sip.uri import parse_uri

__all__ = ["VERB", "Params"]


class Params(StepParams):
    """The target, the route, the ring timeout, the caller ID and the failure branches."""

    next_unused = "a forward continues with busy, no_answer or failed (or hangs up)"

    forward: str = Field(min_length=1, max_length=256)
    route: str | None = None
    ring_timeout: Duration = Field(30.0, gt=0, le=600)
    caller_id: str = "pass"
    busy: StepName | None = None
    no_answer: StepName | None = None
    failed: StepName | None = None

    @field_validator("forward", mode="before")
    @classmethod
    def _target(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError('quote the number ("+38761200300"): YAML reads 061... as octal')
        if isinstance(value, str) and not value.startswith(("sip:", "sips:")):
            digits = value.replace(" ", "").replace("-", "")
            if not digits.lstrip("+").isdigit():
                raise ValueError(f"{value!r} is neither a number nor a sip: URI")
        return value

    def targets(self) -> dict[tuple[str | int, ...], str]:
        """The busy, no-answer and failure steps."""
        named = {"busy": self.busy, "no_answer": self.no_answer, "failed": self.failed}
        return {(field,): step for field, step in named.items() if step is not None}


def prepare(params: Params, context: CompileContext) -> tuple[str, str | None]:
    """The target normalised at load time (E.164 ``+387...``, or the SIP URI); the route must
    be one of config/trunks.yaml's."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    routes = context.routes
    if params.route is not None and routes is not None and params.route not in routes:
        known = ", ".join(sorted(routes)) or "none"
        problems.append(
            (("route",), f"unknown route {params.route!r} (config/trunks.yaml has {known})")
        )
    target = params.forward
    try:
        if target.startswith(("sip:", "sips:")):
            parse_uri(target)
        else:
            target = normalise(target)
    except ValueError as exc:
        problems.append((("forward",), str(exc)))
    caller_id = None
    if params.caller_id != "pass":
        try:
            caller_id = normalise(params.caller_id)
        except ValueError as exc:
            problems.append((("caller_id",), f"{exc} (or pass: the caller's own number)"))
    if problems:
        raise StepError.many(problems)
    return target, caller_id


async def run(call: CallControl, step: Step) -> str | None:
    """Forward; after a bridged call nothing follows, otherwise the matching branch."""
    params = step.params
    assert isinstance(params, Params) and isinstance(step.prepared, tuple)
    target, caller_id = step.prepared
    outcome = await call.forward(
        target=target,
        route=params.route,
        ring_timeout=params.ring_timeout,
        caller_id=caller_id,
    )
    call.note("forward", {"target": params.forward, "result": outcome.result})
    if outcome.result == "answered":
        return None
    if outcome.result == "barred" and params.failed is None:
        await call.hangup(code=403, cause=21, reason="barred")  # outbound barring
        return None
    if outcome.result == "busy":
        return params.busy or params.failed
    if outcome.result == "no_answer":
        return params.no_answer or params.failed
    return params.failed


VERB = Verb(name="forward", params=Params, requires=Precondition.NONE, run=run, prepare=prepare)
