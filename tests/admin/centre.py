"""A call centre behind an admin server for the queues and agents tests: acme's 5 phones
with 2 agent licences and beta's 5, on a real ``CentreDriver`` (pinned wall clock) with its
agents.sqlite and queue event log in a tmp dir, the real ``AgentDesk``, on a free port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from callserver.admin.agents_api import AgentsApi
from callserver.admin.centre_view import PlanQueues
from callserver.admin.queues_api import QueuesApi
from callserver.calls.agent_desk import AgentDesk
from callserver.calls.centre_driver import CentreDriver
from callserver.config.stats import StatsSettings
from callserver.dialplan.plan import Plan, PlanSet
from callserver.dialplan.verbs.base import Step
from callserver.dialplan.verbs.queue import Params, Prepared
from callserver.policy.blacklist import NumberList
from callserver.queues.eventlog import QueueEventLog
from callserver.queues.queue import QueueAgent, QueueConfig
from tests.admin.serving import Client, serving
from tests.admin.tokens import OPERATOR
from tests.queues.support import START, agent, centrex, queue

PHONES = centrex(5)
STATS = StatsSettings(timezone="Europe/Sarajevo", service_level=20.0)
NOON = START + timedelta(hours=3)  # 2026-12-07 12:00 UTC, 13:00 in Sarajevo


def plan_queue(customer: str, name: str, *members: str) -> PlanSet:
    """A plan set whose one plan has a queue step of ``customer``'s ``name``."""
    config = QueueConfig(
        customer=customer, name=name, agents=tuple(QueueAgent(number=m) for m in members)
    )
    params = Params.model_validate({"queue": name, "agents": list(members)})
    prepared = Prepared(config=config, vip=NumberList())
    step = Step(name="q", verb="queue", params=params, next=None, prepared=prepared)
    plan = Plan(number="38733101250", source="x.yaml", version="1", start="q", steps={"q": step})
    return PlanSet({plan.number: plan})


@dataclass
class Centre:
    """The driver and desk behind the admin server, and a client of it."""

    client: Client
    driver: CentreDriver
    desk: AgentDesk
    events: QueueEventLog

    async def request(
        self, method: str, path: str, token: str = OPERATOR, body: object = None
    ) -> tuple[int, Any]:
        """The status and JSON answer (``Client.json``)."""
        return await self.client.json(method, path, token, body)

    def logged(self) -> list[tuple[str, str | None, str | None]]:
        """The queue event log's (kind, agent, reason), once written."""
        assert self.events.flush().result(timeout=10)
        lines = [
            json.loads(line)
            for path in sorted(self.events.directory.glob("*.jsonl"))
            for line in path.read_text().splitlines()
        ]
        return [(line["kind"], line["agent"], line["reason"]) for line in lines]


async def centre_admin(tmp_path: Path) -> AsyncIterator[Centre]:
    """acme's queue sales (agents 1-3, defined in the centre) and beta's info (agent 1 of
    beta, only in a plan), behind an admin server on a free port."""
    clock = [START]
    driver = CentreDriver(
        centrex=lambda: PHONES,
        licences=lambda customer: 2,
        phone_busy=lambda number: False,
        loop=asyncio.get_running_loop(),
        wall=lambda: clock[0],
    )
    events = QueueEventLog(tmp_path / "queue-events")
    driver.open(tmp_path, events)
    driver.centre.define(queue(3))
    desk = AgentDesk(driver, lambda: PHONES)
    queues = PlanQueues(lambda: plan_queue("beta", "info", agent(1, "beta")))
    resources = [
        QueuesApi(driver, queues, lambda: PHONES, lambda: STATS, lambda: NOON),
        AgentsApi(driver, desk, queues, lambda: PHONES),
    ]
    try:
        async with serving(*resources) as client:
            yield Centre(client, driver, desk, events)
    finally:
        await driver.close()
        await asyncio.to_thread(events.close)
