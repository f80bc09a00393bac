"""The Redis link against a real redis-server: answers, falls back while Redis is gone,
puts its state back and goes up when Redis returns."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis

from callserver.cluster.link import RedisLink
from tests.cluster.peers import Redis


async def _incr(client: aioredis.Redis) -> int:
    return int(await client.incr("n"))


async def test_a_lost_redis_gives_the_fallback_then_the_callbacks_run_before_it_is_up(
    tmp_path: Path,
) -> None:
    with Redis(tmp_path / "redis") as redis:
        link = RedisLink(redis.url, timeout=0.5, retry=0.1)
        restored: list[int] = []

        async def restore(client: aioredis.Redis) -> None:
            await client.set("n", 10)
            restored.append(1)

        link.reconnected.append(restore)
        try:
            assert await link.run(_incr, -1) == 1
            redis.stop()
            assert await link.run(_incr, -1) == -1
            assert not link.up
            assert await link.run(_incr, -1) == -1  # not tried while down
            redis.start()
            for _ in range(100):
                if link.up:
                    break
                await asyncio.sleep(0.05)
            assert link.up and restored == [1]
            assert await link.run(_incr, -1) == 11
            stats = link.statistics()
            assert (stats.up, stats.downs, stats.fallbacks) == (True, 1, 2)
        finally:
            await link.close()


async def test_resync_puts_the_state_back_into_a_redis_that_restarted_empty(
    tmp_path: Path,
) -> None:
    with Redis(tmp_path / "redis") as redis:
        link = RedisLink(redis.url, retry=0.05)
        calls: list[str] = []

        async def restore(client: aioredis.Redis) -> None:
            calls.append("restore")

        link.reconnected.append(restore)
        try:
            link.resync()
            for _ in range(100):
                if link.up:
                    break
                await asyncio.sleep(0.02)
            assert link.up and calls == ["restore"] and link.statistics().downs == 1
        finally:
            await link.close()
