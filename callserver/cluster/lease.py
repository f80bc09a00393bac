"""A node's identity among several, and the lease that says it is alive.

Theory of operation
-------------------
Each start of a node's process is a *holder* ``<node>/<incarnation>`` (:class:`Holder`; the
incarnation is random hex), so a node that restarts is a new holder: what its previous run
left in Redis is never counted with what it holds now. The holder's lease is the key
``cs:lease:<holder>`` (``SET ... PX lease*1000``); what a holder holds in Redis (its channels,
``cluster.channels``) counts only while that key exists, so a node that dies, or stalls
longer than its lease, stops counting within the lease.

:class:`Lease` sets the key at start and renews it every ``heartbeat`` seconds (a third of
the lease: two renewals may fail before it lapses) with ``SET ... XX PX``, which does nothing
when the key is gone. A renewal that finds the key gone (Redis restarted empty, or this
process stalled past its lease and the others pruned what it held) logs
``cluster.lease_lost`` and calls ``link.resync()``: the link's reconnected callbacks put
everything back, this lease first (:meth:`Lease.open` puts :meth:`Lease.restore` at the head
of them). After each renewal the ``beats`` callbacks run (the channels' census of the other
nodes). :meth:`Lease.close` deletes the key, so what this holder held stops counting at once.
While the link is down the renewal is not tried (the link answers its fallback).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import redis.asyncio as aioredis
import structlog

from callserver.cluster.link import RedisLink

__all__ = ["LEASE_PREFIX", "Beat", "Holder", "Lease"]

log = structlog.get_logger("callserver.cluster")

LEASE_PREFIX = "cs:lease:"
"""The lease key of holder ``h`` is ``cs:lease:h``."""

Beat = Callable[[aioredis.Redis], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Holder:
    """One run of one node: ``<node>/<incarnation>``."""

    node: str
    incarnation: str

    @classmethod
    def new(cls, node: str) -> Holder:
        """This run of ``node``, with an incarnation of its own (8 random hex digits)."""
        return cls(node, secrets.token_hex(4))

    def __str__(self) -> str:
        return f"{self.node}/{self.incarnation}"

    @property
    def lease_key(self) -> str:
        """``cs:lease:<node>/<incarnation>``."""
        return f"{LEASE_PREFIX}{self}"


class Lease:
    """The lease of ``holder`` on ``link``, renewed every ``seconds / 3``; see the module
    docstring."""

    def __init__(self, link: RedisLink, holder: Holder, seconds: float) -> None:
        self.link = link
        self.holder = holder
        self.seconds = seconds
        self.beats: list[Beat] = []  # run after each renewal, in order
        self.lost = 0  # renewals that found the key gone
        self._task: asyncio.Task[None] | None = None
        self._closing = asyncio.Event()

    @property
    def heartbeat(self) -> float:
        """Seconds between renewals: a third of the lease."""
        return self.seconds / 3

    async def open(self) -> None:
        """Set the key (or leave it to the link's reconnection when Redis is unreachable) and
        start renewing it."""
        self.link.reconnected.insert(0, self.restore)
        await self.link.run(self.restore, None)
        self._task = asyncio.get_running_loop().create_task(self._renewing())

    async def restore(self, client: aioredis.Redis) -> None:
        """Set the key afresh (at start, and before anything else when Redis is back)."""
        await client.set(self.holder.lease_key, self.holder.node, px=self._millis())

    async def beat(self) -> bool | None:
        """Renew once, then run the ``beats``; False when the key was gone (the link resyncs),
        None when Redis could not be reached."""
        renewed = await self.link.run(self._renew, None)
        if renewed is None:
            return None
        if not renewed:
            self.lost += 1
            log.warning("cluster.lease_lost", holder=str(self.holder), lease=self.seconds)
            self.link.resync()
            return False
        for beat in self.beats:
            await self.link.run(beat, None)
        return True

    async def close(self) -> None:
        """Stop renewing and delete the key: this holder's entries stop counting now."""
        self._closing.set()
        if self._task is not None:
            await self._task
        await self.link.run(self._delete, None)

    async def _renew(self, client: aioredis.Redis) -> bool:
        key, node = self.holder.lease_key, self.holder.node
        return bool(await client.set(key, node, xx=True, px=self._millis()))

    async def _delete(self, client: aioredis.Redis) -> None:
        await client.delete(self.holder.lease_key)

    async def _renewing(self) -> None:
        # Stopped by ``_closing``, not by cancellation, which a Redis command may swallow.
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), self.heartbeat)
                return
            try:
                await self.beat()
            except Exception:  # a bug (a script error): logged, and the next beat tries again
                log.exception("cluster.heartbeat_failed", holder=str(self.holder))

    def _millis(self) -> int:
        return max(1, round(self.seconds * 1000))
