"""``/api/queues``: the call centre's queues now and today, for wallboards; scoped by customer.

A queue is named by ``(customer, name)``; a customer token sees its own customer's queues only
(another's is 404, as one that does not exist). Each queue gives its waiting callers and
longest wait (live calls; callback requests keeping a place are counted apart), its agents
by state, and today's figures: answered, abandoned, offered and the service level (the share
of the waits that ended today that an agent answered within ``stats.service_level``
seconds), "today" being the date in ``stats.timezone`` on the injected wall clock.

Today's figures come from the centre driver's ``DayTally`` (``queues.day_tally``), fed with
each queue log line as it is written and seeded once from the log on disk: a poll reads
counters kept up to date, never the day's file (which at a busy centre holds tens of
thousands of lines, to be parsed at every poll of every wallboard). A poll is a pass over
the queues, their agents and their waiting callers on the loop, nothing more.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from callserver.admin.auth import request_token, sees_customer
from callserver.admin.centre_view import (
    CentreView,
    PlanQueues,
    agent_json,
    memberships,
)
from callserver.admin.params import check_known, query_text
from callserver.config.centrex_groups import Centrex
from callserver.config.stats import StatsSettings
from callserver.queues.board import QueueNow, agent_key, callers_now, queue_now
from callserver.queues.day_tally import DayFigures
from callserver.queues.queue import QueueConfig

__all__ = ["QueuesApi", "today_since"]

_NONE = DayFigures(offered=0, answered=0, abandoned=0, service_level=None)


def today_since(now: datetime, zone: ZoneInfo) -> datetime:
    """Today's midnight in ``zone`` on the date ``now`` (aware) has there."""
    return datetime.combine(now.astimezone(zone).date(), time(), zone)


def _utc_now() -> datetime:
    return datetime.now(UTC)


class QueuesApi:
    """The handlers of ``/api/queues`` and ``/api/queues/{name}``.

    Args:
        driver: the server's call centre.
        queues: the queues in force (the centre's and the plans').
        centrex: the Centrex in force (the agents' names).
        stats: the ``stats`` settings in force (time zone, service level).
        wall: UTC now (tests pin it).
    """

    def __init__(
        self,
        driver: CentreView,
        queues: PlanQueues,
        centrex: Callable[[], Centrex],
        stats: Callable[[], StatsSettings],
        wall: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._driver, self._queues = driver, queues
        self._centrex, self._stats, self._wall = centrex, stats, wall

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the list; GET one queue by name."""
        router.add_get("/api/queues", self.list_queues)
        router.add_get("/api/queues/{name}", self.get_queue)

    async def list_queues(self, request: web.Request) -> web.Response:
        """Every queue the token may see, by customer then name."""
        check_known(request, ())
        token = request_token()
        today = await self._today()
        centre, (now, _) = self._driver.centre, self._driver.moment()
        views = [
            _queue_json(queue_now(centre.queues.get(key), config, centre.agents, now), today)
            for key, config in self._queues.configs(centre).items()
            if sees_customer(token, config.customer)
        ]
        return web.json_response({"queues": views})

    async def get_queue(self, request: web.Request) -> web.Response:
        """One queue with its callers in order and its agents."""
        check_known(request, ("customer",))
        centre, config = self._driver.centre, self._find(request)
        today = await self._today()
        now, _ = self._driver.moment()
        queue = centre.queues.get(config.key)
        view = _queue_json(queue_now(queue, config, centre.agents, now), today)
        view["callers"] = [
            {
                "position": c.position,
                "caller": c.number,
                "waiting": c.waiting,
                "call_id": c.call_id,
                "callback": c.callback,
            }
            for c in callers_now(queue, now)
        ]
        configs = self._queues.configs(centre)
        member = memberships(configs.values())
        mine = [a for m in config.agents if (a := centre.agents.find(agent_key(m.number)))]
        centrex = self._centrex()
        view["agents_list"] = [
            agent_json(agent, centrex, member.get(agent.number, [])) for agent in mine
        ]
        return web.json_response(view)

    def _find(self, request: web.Request) -> QueueConfig:
        token, name = request_token(), request.match_info["name"]
        wanted = query_text(request, "customer")
        found = [
            config
            for config in self._queues.configs(self._driver.centre).values()
            if config.name == name
            and sees_customer(token, config.customer)
            and wanted in (None, config.customer)
        ]
        if not found:
            raise web.HTTPNotFound(text=f"no queue {name!r} (GET /api/queues lists them)")
        if len(found) > 1:
            customers = ", ".join(config.customer for config in found)
            raise web.HTTPBadRequest(
                text=f"customer: queue {name!r} is a queue of {customers}: "
                f"name one with ?customer=NAME"
            )
        return found[0]

    async def _today(self) -> dict[tuple[str, str], DayFigures]:
        settings = self._stats()
        since = today_since(self._wall(), ZoneInfo(settings.timezone))
        tally = await self._driver.today()
        return tally.figures(since, settings.service_level)


def _queue_json(now: QueueNow, today: dict[tuple[str, str], DayFigures]) -> dict[str, Any]:
    figures = today.get(now.config.key, _NONE)
    return {
        "name": now.config.name,
        "customer": now.config.customer,
        "waiting": now.waiting,
        "longest_wait": now.longest_wait,
        "callbacks": now.callbacks,
        "agents": dict(now.agents),
        "answered_today": figures.answered,
        "abandoned_today": figures.abandoned,
        "offered_today": figures.offered,
        "service_level_today": figures.service_level,
        "strategy": now.config.strategy.value,
    }
