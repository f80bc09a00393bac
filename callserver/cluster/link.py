"""The node's one connection to Redis, and whether Redis is reachable now.

Theory of operation
-------------------
Everything the nodes share goes through one :class:`RedisLink`: the channel and call-rate
counters (``cluster.channels``), the registrations and the subscribers' settings. Each use is
``await link.run(operation, fallback)``: ``operation`` gets the ``redis.asyncio`` client and
its answer is returned; when Redis cannot be reached (refused, reset, no answer within
``timeout``) the link goes *down* and ``fallback`` is returned instead, so the caller decides
what its local view allows. While down, ``run`` does not try Redis at all (a call must not wait
for a timeout per request): it returns ``fallback`` at once.

Going down logs ``cluster.redis_down`` (error level, once) and sets the ``up`` flag the metrics
read; a task then probes Redis with PING every ``retry`` seconds. When PING answers, the link
runs each of its ``reconnected`` callbacks in order (each puts back what this node holds:
its channel counts, its bindings), then goes up and logs ``cluster.redis_up`` with how long it
was down. A callback that fails (Redis lost again meanwhile) leaves the link down and the probe
goes on. A Redis that restarted empty while the link stayed up is found by whoever notices
(the channels' lease renewal finds its lease key gone) and calls :meth:`RedisLink.resync`,
which runs the same callbacks.

Only connection-level failures count as down; any other Redis error (a script error, a wrong
type) is a bug and is raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import redis.asyncio as aioredis
import redis.exceptions
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["LinkStatistics", "RedisLink"]

log = structlog.get_logger("callserver.cluster")

T = TypeVar("T")
Operation = Callable[[aioredis.Redis], Awaitable[T]]
Reconnected = Callable[[aioredis.Redis], Awaitable[None]]

# What says Redis cannot be reached (as opposed to a Redis error answer).
_UNREACHABLE = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
    OSError,
)


@dataclass(frozen=True, slots=True)
class LinkStatistics:
    """Whether Redis is reachable now, how often it was lost, and operations answered by
    the local view because it was."""

    up: bool
    downs: int
    fallbacks: int


class RedisLink:
    """One Redis client with an up/down state; see the module docstring.

    Args:
        url: ``redis://host:port/db`` (the ``cluster.redis`` setting).
        timeout: seconds an operation may take before Redis counts as unreachable.
        retry: seconds between PINGs while down.
        clock: a monotonic clock in seconds (the log's down time).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 0.5,
        retry: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        # No retries inside the client: one failure is down at once, and the probe retries.
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.url = url
        self.retry = retry
        self.reconnected: list[Reconnected] = []  # run in order before the link is up again
        self._clock = clock
        self._up = True
        self._down_since = 0.0
        self._downs = 0
        self._fallbacks = 0
        self._probe: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        """True while Redis answers."""
        return self._up

    async def run(self, operation: Operation[T], fallback: T) -> T:
        """``operation``'s answer, or ``fallback`` when Redis cannot be reached (now or
        already)."""
        if not self._up:
            self._fallbacks += 1
            return fallback
        try:
            return await operation(self.client)
        except _UNREACHABLE as exc:
            self._lost(exc)
            self._fallbacks += 1
            return fallback

    def resync(self) -> None:
        """Redis is reachable but lost what this node put there (it restarted empty): go down
        and put it back as after an outage."""
        if self._up:
            self._lost(None)

    def statistics(self) -> LinkStatistics:
        """Up now, times lost, operations answered by ``fallback``."""
        return LinkStatistics(up=self._up, downs=self._downs, fallbacks=self._fallbacks)

    async def close(self) -> None:
        """Stop probing and close the connections."""
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self.client.aclose()

    def _lost(self, exc: BaseException | None) -> None:
        if not self._up:
            return
        self._up = False
        self._downs += 1
        self._down_since = self._clock()
        reason = "its data is gone (restarted)" if exc is None else f"{type(exc).__name__}: {exc}"
        log.error("cluster.redis_down", url=self.url, error=reason)
        self._probe = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        while True:
            await asyncio.sleep(self.retry)
            try:
                await self.client.ping()
                for callback in self.reconnected:
                    await callback(self.client)
            except _UNREACHABLE:
                continue
            self._up = True
            down = round(self._clock() - self._down_since, 3)
            log.info("cluster.redis_up", url=self.url, down_seconds=down)
            return
