"""The dialplans in force: loaded at start-up, reloaded on change, swapped atomically.

``Dialplans`` owns the current ``PlanSet``. ``reload`` compiles the whole directory again
(``loader.load_plans``): a file with errors keeps its previous version and its errors are
logged as ``dialplan.invalid`` (one line each, ``file:line: field: message``); then the new set
replaces the old with one assignment. A call holds the ``Plan`` it started with, so an edit
never disturbs a call in progress and applies to the next one.

Reload happens on SIGHUP and ``callserver reload`` (through ``Server.reload``) and, with
``watch``, whenever a ``*.yaml`` file in the directory changes (watchfiles, debounced). In a
running server the compiling runs in a worker thread and only the swap on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from pathlib import Path

import structlog

from callserver.dialplan.compiler import PlanContext
from callserver.dialplan.loader import LoadResult, load_plans
from callserver.dialplan.plan import DEFAULT_PLAN, Plan, PlanSet
from callserver.dialplan.verbs import REGISTRY
from callserver.media.prompts import PromptStore
from callserver.tariffs import Tariffs

__all__ = ["Dialplans", "plan_context"]

log = structlog.get_logger("callserver.dialplan")


def plan_context(
    prompts: PromptStore,
    tariffs: Tariffs | None,
    default_language: str,
    routes: Collection[str] | None = None,
) -> PlanContext:
    """The compile context of the server's prompts and tariffs (``callserver check`` too)."""

    def cap_of(number: str, max_duration: float) -> object:
        if tariffs is None:
            return max_duration
        if number == DEFAULT_PLAN:
            if max_duration > tariffs.default_max_duration:
                raise ValueError(
                    f"max_duration {max_duration:g} s exceeds the operator's default cap "
                    f"({tariffs.default_max_duration:g} s); a dialplan may only shorten it"
                )
            return max_duration
        try:
            number_class = tariffs.classify(number)
        except ValueError:
            return max_duration
        return tariffs.duration_cap(number_class, max_duration)

    return PlanContext(
        registry=REGISTRY,
        default_language=default_language,
        prompt_exists=prompts.exists,
        cap_of=cap_of,
        routes=None if routes is None else frozenset(routes),
    )


class Dialplans:
    """The current plan set of ``directory``; see the module docstring."""

    def __init__(self, directory: Path, context: Callable[[], PlanContext]) -> None:
        self.directory = directory
        self._context = context
        self.plans = PlanSet()
        self._reloading = asyncio.Lock()

    def plan_for(self, called: str) -> Plan | None:
        """The plan a new call to ``called`` runs (its own, else the default), or None."""
        return self.plans.plan_for(called)

    def reload(self) -> LoadResult:
        """Compile the directory again on this thread (start-up) and swap the new set in."""
        return self._swap(load_plans(self.directory, self._context(), self.plans))

    async def reload_in_worker(self) -> LoadResult:
        """The same in a worker thread, for a running server: a few ms a file (bench/RESULTS.md)
        would stall the media clock; only the swap runs on the loop, one reload at a time."""
        async with self._reloading:
            context, previous = self._context(), self.plans
            result = await asyncio.to_thread(load_plans, self.directory, context, previous)
            return self._swap(result)

    def _swap(self, result: LoadResult) -> LoadResult:
        for error in result.errors:
            log.error("dialplan.invalid", error=error)
        for warning in result.warnings:
            log.warning("dialplan.warning", warning=warning)
        self.plans = result.plans
        log.info(
            "dialplan.loaded",
            directory=str(self.directory),
            plans=len(result.plans),
            errors=len(result.errors),
            kept_previous=list(result.kept),
            versions={number: plan.version for number, plan in result.plans.plans.items()},
        )
        return result

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload whenever a dialplan file changes, until ``stop`` is set."""
        from watchfiles import awatch

        self.directory.mkdir(parents=True, exist_ok=True)
        async for changes in awatch(self.directory, stop_event=stop, recursive=False):
            if any(Path(path).suffix in (".yaml", ".yml") for _, path in changes):
                await self.reload_in_worker()
