"""The dialplans in force: loaded at start-up, reloaded on change, swapped atomically.

``Dialplans`` owns the current ``PlanSet``. ``reload`` compiles the whole directory again
(``loader.load_plans``): a file with errors keeps its previous version and its errors are
logged as ``dialplan.invalid`` (one line each, ``file:line: field: message``); then the new set
replaces the old with one assignment. A call holds the ``Plan`` it started with, so an edit
never disturbs a call in progress and applies to the next one.

Reload happens on SIGHUP and ``callserver reload`` (through ``Server.reload``) and, with
``watch``, whenever a ``*.yaml`` file in the directory changes (watchfiles, debounced).
``reload_file`` compiles one file again (a dialplan uploaded through the admin API) and swaps
in the set with that number's plan replaced, so the upload is in force when it returns.

In a running server the compiling must not stall the media clock: 300 files take about a
second of CPU (a few ms each), and a worker thread would hold the interpreter lock the event
loop needs for most of that second. So ``reload_in_slices`` compiles on the event loop, one
file at a time, paced (``callserver.process.pacing``: within the time the loop has spare, so 300
files take about 2 s on an idle server and longer on a busy one): between two files the
clock ticks, SIP messages are handled and calls go on, and no turn holds the loop longer
than one file takes. The set built file by file is
swapped in only at the end, so a reload is still all or nothing, and calls that start
meanwhile get the previous set.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
from collections.abc import Callable, Collection
from pathlib import Path

import structlog

from callserver.config.tariffs import Tariffs
from callserver.dialplan.compiler import PlanContext
from callserver.dialplan.loader import LoadResult, PlanLoading, dialplan_files, load_plans
from callserver.dialplan.plan import DEFAULT_PLAN, Plan, PlanSet
from callserver.dialplan.verbs import REGISTRY
from callserver.dialplan.verbs.base import AgentLookup
from callserver.media.prompts import PromptStore
from callserver.process.pacing import BACKGROUND_SHARE, paced

__all__ = ["Dialplans", "plan_context"]

log = structlog.get_logger("callserver.dialplan")


def plan_context(
    prompts: PromptStore,
    tariffs: Tariffs | None,
    default_language: str,
    routes: Collection[str] | None = None,
    agents: AgentLookup | None = None,
) -> PlanContext:
    """The compile context of the server's prompts and tariffs (``callserver check`` too);
    ``agents`` finds a queue step's agents among the Centrex subscribers."""

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
        agents=agents,
    )


class Dialplans:
    """The current plan set of ``directory``; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        context: Callable[[], PlanContext],
        share: Callable[[], float] = lambda: BACKGROUND_SHARE,
    ) -> None:
        self.directory = directory
        self._context = context
        self._share = share  # of the event loop's time, for a reload (callserver.process.pacing)
        self.plans = PlanSet()
        self.reloads = 0  # swaps since start, the first load included
        self._reloading = asyncio.Lock()

    def plan_for(self, called: str) -> Plan | None:
        """The plan a new call to ``called`` runs (its own, else the default), or None."""
        return self.plans.plan_for(called)

    def context(self) -> PlanContext:
        """The compile context in force (prompts, tariffs, routes, agents), as a reload uses."""
        return self._context()

    def reload(self) -> LoadResult:
        """Compile the directory again on this thread (start-up) and swap the new set in.

        It also imports the holiday calendars: the first ``holidays`` compiled imports every
        country's (about 100 ms), which start-up can pay and a running loop cannot.
        """
        importlib.import_module("holidays.countries")
        return self._swap(load_plans(self.directory, self._context(), self.plans))

    async def reload_in_slices(self) -> LoadResult:
        """The same for a running server: one file at a time, paced, then the swap; one reload
        at a time."""
        async with self._reloading:
            loading = PlanLoading(self._context(), self.plans, self.directory)
            async for path in paced(dialplan_files(self.directory), self._share):
                loading.add(path)  # the clock, SIP and calls have the loop between two files
            return self._swap(loading.result())

    async def reload_file(self, path: Path) -> LoadResult:
        """Compile the one file ``path`` again, in a worker thread (it reads the file; a few
        ms), and swap in the set with its number's plan replaced, the other plans as they are.
        A bad file keeps its number's previous version in force, as a whole reload does. It
        waits for a reload in progress (one at a time), so no reload that read the file before
        it changed can swap in after it."""
        async with self._reloading:
            loading = PlanLoading(self._context(), self.plans)
            await asyncio.to_thread(loading.add, path)
            one = loading.result()
            plans = PlanSet({**self.plans.plans, **one.plans.plans})
            return self._swap(dataclasses.replace(one, plans=plans))

    def _swap(self, result: LoadResult) -> LoadResult:
        for error in result.errors:
            log.error("dialplan.invalid", error=error)
        for warning in result.warnings:
            log.warning("dialplan.warning", warning=warning)
        self.plans = result.plans
        self.reloads += 1
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
                await self.reload_in_slices()
