"""The dialplans directory as one ``PlanSet``; a bad file keeps its last good version.

``load_plans`` compiles every ``*.yaml`` in the directory. A file with errors does not stop the
others: its errors are returned and, when a previous plan set had a good version of the same
number, that version stays in force: a bad file never takes down a running server.
The caller swaps the returned set in with one assignment. ``PlanLoading`` is the same load a
file at a time, for a caller that must do other work between files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callserver.config.errors import OperatorFileError
from callserver.dialplan.compiler import PlanContext, compile_file
from callserver.dialplan.plan import DEFAULT_PLAN, Plan, PlanSet

__all__ = ["LoadResult", "PlanLoading", "dialplan_files", "load_plans", "no_default_plan"]


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
    loading = PlanLoading(context, previous, directory)
    for path in dialplan_files(directory):
        loading.add(path)
    return loading.result()


def no_default_plan(directory: Path) -> str:
    """The warning of a plan set without ``default.yaml``: what its other numbers get."""
    return (
        f"{directory / 'default.yaml'}: no default plan: a called number without a dialplan "
        "of its own is refused with 404 (CDR end_reason no_route)"
    )


def dialplan_files(directory: Path) -> list[Path]:
    """The dialplan files of ``directory`` in name order (none when it is missing)."""
    return sorted(
        path
        for pattern in ("*.yaml", "*.yml")
        for path in (directory.glob(pattern) if directory.is_dir() else ())
    )


class PlanLoading:
    """One load of a plan set, a file at a time: ``add`` each file, then take ``result``.

    The steps of ``load_plans``, apart so that a running server can compile one file per turn
    of its event loop.
    """

    def __init__(
        self, context: PlanContext, previous: PlanSet | None = None, directory: Path | None = None
    ) -> None:
        self._context, self._previous, self._directory = context, previous, directory
        self._plans: dict[str, Plan] = {}
        self._errors: list[str] = []
        self._warnings: list[str] = []
        self._kept: list[str] = []

    def add(self, path: Path) -> None:
        """Compile ``path``: its plan, or its errors and the previous version of its number."""
        try:
            plan = compile_file(path, self._context)
        except OperatorFileError as exc:
            self._errors.extend(exc.errors)
            old = None if self._previous is None else self._previous.plans.get(path.stem)
            if old is not None:
                self._plans[path.stem] = old
                self._kept.append(path.stem)
            return
        self._plans[plan.number] = plan
        self._warnings.extend(plan.warnings)

    def result(self) -> LoadResult:
        """The plan set of the files added so far, with their errors and warnings (one when
        the set of ``directory`` has no default plan)."""
        warnings = list(self._warnings)
        if self._directory is not None and DEFAULT_PLAN not in self._plans:
            warnings.append(no_default_plan(self._directory))
        return LoadResult(
            plans=PlanSet(dict(self._plans)),
            errors=tuple(self._errors),
            warnings=tuple(warnings),
            kept=tuple(self._kept),
        )
