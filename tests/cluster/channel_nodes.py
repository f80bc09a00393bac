"""Nodes of a cluster's shared limits inside one test process: each a real ``Admission`` whose
limits ``open_shared_limits`` shares through its own ``RedisLink`` to a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aioredis

from callserver.calls.admission import Admission
from callserver.cluster.lease import Holder
from callserver.cluster.limits import SharedLimits, open_shared_limits
from callserver.cluster.link import RedisLink
from callserver.config.cluster import ClusterSettings
from callserver.config.trunks import TrunksFile
from callserver.policy.cps import RateRefusal
from callserver.policy.limits import Grant, Refusal
from tests.cluster.peers import Redis

__all__ = [
    "ACME",
    "Node",
    "answering",
    "answers",
    "entries",
    "open_node",
    "running_redis",
    "wait_until",
]

# A customer with 3 channels and its trunk.
ACME: dict[str, Any] = {
    "customers": {"acme": {"channels": 3}},
    "trunks": {"acme-pbx": {"match": ["192.0.2.1"], "customer": "acme"}},
}
PROFILES = ["trunk:acme-pbx", "customer:acme", "number:38733123"]


@dataclass
class Node:
    """One node: its admission (the local view), its link and its shared limits."""

    admission: Admission
    link: RedisLink
    shared: SharedLimits

    async def call(self, trunk: str | None = None) -> Grant | Refusal | RateRefusal:
        """A new call of the acme trunk (or ``trunk``) admitted here, then across the nodes:
        its grant, or what refused it (the local grant given back then)."""
        grant = self.admission.channels.acquire(PROFILES, checked=True)
        if not isinstance(grant, Grant):
            return grant
        refusal = await self.shared.channels.admit(grant, trunk or "acme-pbx")
        if refusal is None:
            return grant
        self.admission.release(grant)
        return refusal

    async def close(self) -> None:
        """Close the shared limits and the link."""
        await self.shared.close()
        await self.link.close()


async def open_node(
    url: str, name: str, *, lease: float = 15.0, trunks: dict[str, Any] | None = None
) -> Node:
    """A node named ``name`` on the Redis at ``url`` (link timeout 0.5 s, retry 0.1 s)."""
    admission = Admission(TrunksFile.model_validate(trunks or ACME))
    link = RedisLink(url, timeout=0.5, retry=0.1)
    settings = ClusterSettings(node=name, redis=url, lease=lease)
    shared = await open_shared_limits(settings, link, admission, Holder.new(name))
    return Node(admission=admission, link=link, shared=shared)


async def entries(url: str, profile: str) -> dict[str, int]:
    """The hash of ``profile`` in Redis: holder -> channels."""
    client = aioredis.Redis.from_url(url)
    try:
        raw = await client.hgetall(f"cs:ch:{profile}")
    finally:
        await client.aclose()
    return {key.decode(): int(value) for key, value in raw.items()}


async def answering(url: str, within: float = 10.0) -> None:
    """Wait until the Redis at ``url`` answers PING (``answers``, off the loop)."""
    assert await asyncio.to_thread(answers, url, within), f"{url} does not answer"


async def wait_until(predicate: Callable[[], Any], within: float, step: float = 0.05) -> float:
    """Poll the (async) ``predicate`` until it is true; the seconds it took.

    Raises:
        AssertionError: not true within ``within`` seconds.
    """
    started = time.monotonic()
    while time.monotonic() - started < within:
        if await predicate():
            return time.monotonic() - started
        await asyncio.sleep(step)
    raise AssertionError(f"not true within {within} s")


def answers(url: str, within: float = 10.0) -> bool:
    """Whether the Redis at ``url`` answers PING within ``within`` seconds (a restarted one
    may not listen yet when its port already looks taken: connections of the previous one
    linger in TIME_WAIT, or another process holds the port for a moment)."""
    deadline = time.monotonic() + within
    client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return True
            except (redis.ConnectionError, redis.TimeoutError):
                time.sleep(0.05)
        return False
    finally:
        client.close()


@contextmanager
def running_redis(workdir: Path) -> Iterator[Redis]:
    """A redis-server that answers (on another free port if the first one was taken)."""
    for attempt in range(3):
        server = Redis(workdir / f"redis-{attempt}")
        server.start()
        if answers(server.url, within=5):
            break
        server.stop()
    else:
        raise AssertionError("redis-server did not answer on three ports")
    try:
        yield server
    finally:
        server.stop()
