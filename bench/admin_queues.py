"""bench/admin_queues: what the wallboard's poll of GET /api/queues costs with a busy centre.

A real ``CentreDriver`` (no disk) with 50 agents (``--agents``) of one customer in
``--queues`` queues (each agent in every queue), 500 callers waiting (``--waiting``, spread
over the queues), a fifth of the agents paused, and a day of queue log records
(``--records``, half of them today) fed to its ``DayTally``; the admin server's queues
resource on a loopback port. It times ``--polls`` polls of GET /api/queues and of
GET /api/queues/<first> (its callers listed): the handler alone on the loop (a mocked
request: the server's work without HTTP), and the round trip through aiohttp's client on the
same loop (HTTP both ways, client included). Prints p50, p99 and max in ms, and the size of
the answers.

    .venv/bin/python bench/admin_queues.py
    .venv/bin/python bench/admin_queues.py --queues 10 --waiting 2000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import aiohttp
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from callserver.admin.auth import holder
from callserver.admin.centre_view import PlanQueues
from callserver.admin.queues_api import QueuesApi
from callserver.admin.server import AdminServer
from callserver.calls.centre_driver import CentreDriver
from callserver.config.admin import AdminToken, token_digest
from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.centrex_groups import Centrex
from callserver.config.stats import StatsSettings
from callserver.dialplan.plan import PlanSet
from callserver.queues.queue import QueueAgent, QueueConfig
from callserver.queues.records import QueueEventKind, QueueLogRecord

TOKEN = "bench-operator"
OPERATOR = AdminToken(name="bench", role="operator", sha256=token_digest(TOKEN))
NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


def _centrex(agents: int) -> Centrex:
    subscribers = {
        f"+38733100{n:03d}": {"ha1_md5": "0" * 32, "username": f"agent{n}"}
        for n in range(1, agents + 1)
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 000-999"],
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    compiled, errors = compile_centrex(CentrexFile.model_validate({"groups": {"acme": group}}))
    assert not errors, errors
    return compiled


def _records(count: int, queues: list[str]) -> list[QueueLogRecord]:
    """``count`` join/answer/abandon records over the last 24 hours, in time order."""
    kinds = (QueueEventKind.JOIN, QueueEventKind.ANSWER, QueueEventKind.ABANDON)
    out = []
    for n in range(count):
        kind = kinds[n % 3]
        out.append(
            QueueLogRecord(
                at=NOW - timedelta(hours=24) + timedelta(seconds=86_400 * n / count),
                kind=kind,
                customer="acme",
                uuid=f"u{n}",
                queue=queues[n % len(queues)],
                call_id=f"c{n}",
                agent="+38733100001" if kind is QueueEventKind.ANSWER else None,
                wait=None if kind is QueueEventKind.JOIN else float(n % 40),
            )
        )
    return out


def _centre(args: argparse.Namespace, loop: asyncio.AbstractEventLoop) -> CentreDriver:
    phones = _centrex(args.agents)
    driver = CentreDriver(
        centrex=lambda: phones,
        licences=lambda customer: args.agents,
        phone_busy=lambda number: False,
        loop=loop,
        wall=lambda: NOW,
    )
    numbers = sorted(phones.by_number)
    names = [f"queue{q}" for q in range(args.queues)]
    members = tuple(QueueAgent(number=n) for n in numbers)
    for name in names:
        driver.centre.define(QueueConfig(customer="acme", name=name, agents=members))
    now, at = driver.moment()
    for i, number in enumerate(numbers):
        driver.centre.login(number, now, at)
        if i % 5 == 0:
            driver.centre.pause(number, "break", now, at)
    for c in range(args.waiting):
        queue = ("acme", names[c % len(names)])
        driver.centre.join(queue, f"call{c}", now - c * 0.1, at, number=f"+3876100{c:04d}")
    driver.changed()  # no ringer: nobody is offered, the callers stay
    for record in _records(args.records, names):
        driver.tally.add(record)
    return driver


async def _time(polls: int, once: Callable[[], Awaitable[int]]) -> tuple[list[float], int]:
    size = await once()  # the first: the tally's first count, the plans read
    spent = []
    for _ in range(polls):
        begin = time.perf_counter()
        await once()
        spent.append((time.perf_counter() - begin) * 1000)
    spent.sort()
    return spent, size


def _line(what: str, spent: list[float], size: int) -> str:
    p50, p99 = spent[len(spent) // 2], spent[min(len(spent) - 1, int(len(spent) * 0.99))]
    return f"{what:44} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  max {spent[-1]:7.3f} ms  {size} B"


async def main(args: argparse.Namespace) -> None:
    driver = _centre(args, asyncio.get_running_loop())
    api = QueuesApi(
        driver,
        PlanQueues(lambda: PlanSet()),
        lambda: _centrex(0),
        lambda: StatsSettings(),
        lambda: NOW,
    )

    async def ready() -> list[str]:
        return []

    server = AdminServer(tokens=lambda: (OPERATOR,), ready=ready, resources=[api])
    assert await server.start("127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.port}/api/queues"
    first = "queue0"

    holder.set(OPERATOR)
    requests = {
        path: make_mocked_request("GET", path, match_info={"name": first})  # built once
        for path in ("/api/queues", f"/api/queues/{first}")
    }

    async def handler(path: str, call: Callable[[web.Request], Awaitable[web.Response]]) -> int:
        response = await call(requests[path])
        assert response.body is not None and response.status == 200
        return len(response.body)  # type: ignore[arg-type]

    print(
        f"{args.agents} agents, {args.waiting} waiting in {args.queues} queue(s), "
        f"{args.records} log records fed, {args.polls} polls each"
    )
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as session:

        async def http(path: str) -> int:
            async with session.get(path) as response:
                assert response.status == 200
                return len(await response.read())

        for what, once in (
            ("GET /api/queues, handler", lambda: handler("/api/queues", api.list_queues)),
            ("GET /api/queues, HTTP round trip", lambda: http(url)),
            (
                f"GET /api/queues/{first}, handler",
                lambda: handler(f"/api/queues/{first}", api.get_queue),
            ),
            (f"GET /api/queues/{first}, HTTP round trip", lambda: http(f"{url}/{first}")),
        ):
            print(_line(what, *await _time(args.polls, once)))
    await server.close()
    await driver.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--waiting", type=int, default=500)
    parser.add_argument("--queues", type=int, default=1)
    parser.add_argument("--records", type=int, default=30_000)
    parser.add_argument("--polls", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
