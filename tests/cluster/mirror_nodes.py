"""Nodes of the mirror tests: each a Redis link of its own and a pinned wall clock, in one
test process against one real redis-server."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from callserver.cluster.link import RedisLink
from callserver.cluster.mirror import Mirror
from callserver.cluster.records import Entry

WALL = 4_000_000_000.0  # a pinned wall clock, far past today: Redis never expires a key early


class Wall:
    """A wall clock the test moves."""

    def __init__(self, at: float = WALL) -> None:
        self.at = at

    def __call__(self) -> float:
        return self.at


class MirrorNode:
    """One node's link and mirror of kind ``things``; ``seen`` what its sink got."""

    def __init__(self, url: str, name: str, wall: Wall, *, incarnation: int = 1) -> None:
        self.link = RedisLink(url, timeout=0.3, retry=0.05)
        self.wall = wall
        holder = f"{name}/{incarnation}"
        self.mirror = Mirror(self.link, "things", node=name, holder=holder, wall=wall)
        self.seen: list[Entry] = []

    async def start(self) -> list[Entry]:
        """Start, attach ``seen``; the snapshot read."""
        snapshot = await self.mirror.start()
        self.mirror.attach(self.seen.append)
        return snapshot

    async def close(self) -> None:
        """Stop the mirror and the link."""
        await self.mirror.close()
        await self.link.close()


async def until(predicate: Callable[[], bool], what: str, within: float = 5.0) -> float:
    """Wait until ``predicate`` holds (polled every 5 ms); the seconds it took."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not predicate():
        if loop.time() - start > within:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.005)
    return loop.time() - start
