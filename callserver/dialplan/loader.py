"""The dialplans directory as one ``PlanSet``; a bad file keeps its last good version.

``load_plans`` compiles every ``*.yaml`` in the directory. A file with errors does not stop the
others: its errors are returned and, when a previous plan set had a good version of the same
number, that version stays in force (DESIGN.md: a bad file never takes down a running server).
The caller swaps the returned set in with one assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callserver.dialplan.compiler import DialplanError, PlanContext, compile_file
from callserver.dialplan.plan import Plan, PlanSet

__all__ = ["LoadResult", "load_plans"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadResult:
    """The new plan set, every error and warning, and the numbers kept at their old version."""

    plans: PlanSet
    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


def load_plans(
    directory: Path, context: PlanContext, previous: PlanSet | None = None
) -> LoadResult:
    """Compile every dialplan file (``*.yaml``, ``*.yml``) in ``directory`` (a missing
    directory holds none)."""
    plans: dict[str, Plan] = {}
    errors: list[str] = []
    warnings: list[str] = []
    kept: list[str] = []
    paths = sorted(
        path
        for pattern in ("*.yaml", "*.yml")
        for path in (directory.glob(pattern) if directory.is_dir() else ())
    )
    for path in paths:
        try:
            plan = compile_file(path, context)
        except DialplanError as exc:
            errors.extend(exc.errors)
            old = None if previous is None else previous.plans.get(path.stem)
            if old is not None:
                plans[path.stem] = old
                kept.append(path.stem)
            continue
        plans[plan.number] = plan
        warnings.extend(plan.warnings)
    return LoadResult(
        plans=PlanSet(plans),
        errors=tuple(errors),
        warnings=tuple(warnings),
        kept=tuple(kept),
    )
