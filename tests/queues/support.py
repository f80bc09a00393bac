"""What the queue tests share: a Centrex of two customers, a pinned wall clock, a centre."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from callserver.config.centrex import compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.config.centrex_groups import Centrex
from callserver.queues.agents import Agents
from callserver.queues.centre import CallCentre
from callserver.queues.queue import QueueAgent, QueueConfig, Strategy

START = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)  # the wall clock at monotonic 0
QUEUE = ("acme", "sales")


def at(now: float) -> datetime:
    """The pinned wall time of monotonic ``now``."""
    return START + timedelta(seconds=now)


def agent(n: int, customer: str = "acme") -> str:
    """The number of acme's (or beta's) agent ``n`` (1-60)."""
    return f"+387331{'00' if customer == 'acme' else '01'}2{n:02d}"


def _group(customer: str, block: str, count: int) -> dict[str, object]:
    subscribers = {
        agent(n, customer): {"ha1_md5": "0" * 32, "username": f"{customer}{n}"}
        for n in range(1, count + 1)
    }
    return {
        "customer": customer,
        "numbers": [block],
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }


def centrex(count: int = 60) -> Centrex:
    """acme's ``count`` subscribers (+387 33 100 201 ...) and beta's (+387 33 101 201 ...)."""
    groups = {
        "acme-office": _group("acme", "+387 33 100 200-299", count),
        "beta-office": _group("beta", "+387 33 101 200-299", count),
    }
    compiled, errors = compile_centrex(CentrexFile.model_validate({"groups": groups}))
    assert errors == []
    return compiled


def queue(
    agents: int | list[QueueAgent] = 3,
    strategy: Strategy = Strategy.LONGEST_IDLE,
    **settings: float | int | None,
) -> QueueConfig:
    """acme's queue ``sales`` with agents 1..``agents`` (or those given)."""
    members = (
        [QueueAgent(number=agent(n)) for n in range(1, agents + 1)]
        if isinstance(agents, int)
        else agents
    )
    return QueueConfig(
        customer="acme",
        name="sales",
        agents=tuple(members),
        strategy=strategy,
        **settings,  # type: ignore[arg-type]
    )


def make_centre(
    config: QueueConfig | None = None,
    licences: Mapping[str, int] = MappingProxyType({"acme": 60, "beta": 2}),
    phone_busy: Callable[[str], bool] | None = None,
    count: int = 60,
) -> CallCentre:
    """A centre with acme's and beta's subscribers, ``licences`` and ``config`` defined."""
    phones = centrex(count)
    agents = Agents(lambda: phones, lambda customer: licences.get(customer, 0))
    centre = CallCentre(agents) if phone_busy is None else CallCentre(agents, phone_busy)
    if config is not None:
        centre.define(config)
    return centre


def logged_in(centre: CallCentre, *numbers: str, now: float = 0.0) -> None:
    """Log ``numbers`` in at ``now``, in that order."""
    for number in numbers:
        centre.login(number, now, at(now))
    centre.drain_events()
