"""Routing of new calls: the global blacklist and the dialplans, loaded and reloaded together.

See docs/architecture.md, "The path of a call": a caller on config/blacklist.txt is refused in
admission, before it takes a channel (603, CDR end reason ``blacklist``; ``calls.screening``
checks the list loaded here); otherwise the called number's dialplan (its own file, else
``dialplans/default.yaml``) runs the call. A number with no plan at all is refused with 404
(``calls.manager``); loading a plan set without a default plan warns of it. Both files reload
on SIGHUP; the dialplans also on any change of a file in their directory. A bad file keeps the
previous version in force.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path

import structlog

from callserver.calls.session import CallSession
from callserver.config.tariffs import Tariffs
from callserver.dialplan.compiler import PlanContext
from callserver.dialplan.loader import dialplan_files
from callserver.dialplan.reload import Dialplans, plan_context
from callserver.dialplan.runner import run_plan
from callserver.dialplan.verbs import REGISTRY
from callserver.dialplan.verbs.base import AgentLookup
from callserver.media.prompts import PromptStore
from callserver.policy.blacklist import NumberList, NumberListError, parse_number_list
from callserver.process.pacing import BACKGROUND_SHARE

__all__ = ["Routing", "load_blacklist", "plan_numbers"]

log = structlog.get_logger("callserver.routing")


def load_blacklist(path: Path) -> NumberList:
    """Read config/blacklist.txt (a missing file is an empty list).

    Raises:
        NumberListError: every bad line, as ``file:line: message``.
        OSError, UnicodeDecodeError: the file cannot be read as text.
    """
    if not path.exists():
        return NumberList()
    return parse_number_list(path.read_text(encoding="utf-8"), str(path))


def plan_numbers(directory: Path) -> list[str]:
    """The numbers that have a dialplan file in ``directory`` (E.164 digits, no ``+``); a
    number of config/centrex.yaml may not be one of them (``config.centrex``)."""
    return [path.stem for path in dialplan_files(directory) if path.stem.isdigit()]


class Routing:
    """The blacklist and plan set in force; ``route`` starts a call's plan."""

    def __init__(
        self,
        *,
        dialplans: Path,
        blacklist: Path,
        prompts: PromptStore,
        tariffs: Tariffs,
        default_language: str,
        routes: Callable[[], Collection[str]] | None = None,
        agents: AgentLookup | None = None,
        share: Callable[[], float] = lambda: BACKGROUND_SHARE,
        phones: Callable[[CallSession], Awaitable[None] | None] | None = None,
        outbound: Callable[[CallSession], Awaitable[None] | None] | None = None,
        codes: Sequence[Callable[[CallSession], Awaitable[None] | None]] = (),
    ) -> None:
        self.blacklist_path = blacklist
        self._routes = routes  # the outbound routes forward steps may name
        self._agents = agents  # the Centrex subscribers queue steps may name
        self._phones = phones  # a call to a Centrex subscriber's number rings its phones
        self._outbound = outbound  # a call from a customer to a number not ours goes out
        self._codes = tuple(codes)  # a customer's phone dialling a code: services, pickup, ...
        self.blacklist = NumberList()
        self.prompts, self.tariffs, self.default_language = prompts, tariffs, default_language
        self.dialplans = Dialplans(dialplans, self._context, share)  # share: of the loop

    def _context(self) -> PlanContext:
        routes = None if self._routes is None else self._routes()
        return plan_context(self.prompts, self.tariffs, self.default_language, routes, self._agents)

    def load(self) -> None:
        """Load the blacklist and every dialplan (start-up); errors are logged."""
        self.load_blacklist()
        self.dialplans.reload()

    def load_blacklist(self) -> None:
        """(Re)load config/blacklist.txt; a bad file is logged and the previous list kept."""
        try:
            self.blacklist = load_blacklist(self.blacklist_path)
        except NumberListError as exc:
            log.error("blacklist.invalid", errors=exc.errors)
        except (OSError, UnicodeDecodeError) as exc:
            log.error("blacklist.unreadable", path=str(self.blacklist_path), error=str(exc))

    def route(self, session: CallSession) -> Awaitable[None] | None:
        """The run of the called number's plan on ``session`` (a subscriber's number: ringing
        its phones, ``calls.phones``; a call from a customer to a number not the operator's:
        out through the routes, ``calls.originating``; a code a customer's phone dialled: what
        the first of ``codes`` that takes it does, e.g. ``calls.service_codes``,
        ``calls.pickup``), or None (no plan). A trunk's call is offered to no code."""
        if session.originating:
            for code in self._codes:
                if (answering := code(session)) is not None:
                    return answering
        if self._phones is not None and (ringing := self._phones(session)) is not None:
            return ringing
        plans = self.dialplans.plans
        outbound = self._outbound
        if outbound is not None and session.originating and not plans.own_plan(session.called):
            going_out = outbound(session)
            if going_out is not None:
                return going_out
        plan = plans.plan_for(session.called)
        if plan is None:
            return None
        session.dialplan, session.dialplan_version = plan.source, plan.version
        session.max_duration = plan.max_duration
        if plan.language is not None:
            session.language = plan.language
        return run_plan(plan, session, REGISTRY)

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload the dialplans when their files change, until ``stop`` is set."""
        try:
            await self.dialplans.watch(stop)
        except OSError as exc:
            log.error("dialplan.watch_failed", error=str(exc))
