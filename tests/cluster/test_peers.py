"""The peers of the cluster tests start, answer and stop on their own loopback ports."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

from tests.cluster.peers import Postgres, Redis, port_bound


def test_redis_starts_answers_and_restarts_empty(tmp_path: Path) -> None:
    async def set_and_get(url: str, value: str | None) -> bytes | None:
        client = aioredis.Redis.from_url(url)
        try:
            if value is not None:
                await client.set("k", value)
            return await client.get("k")
        finally:
            await client.aclose()

    with Redis(tmp_path / "redis") as redis:
        assert asyncio.run(set_and_get(redis.url, "v")) == b"v"
        redis.stop()
        assert not port_bound(redis.port, udp=False)
        redis.start()
        assert asyncio.run(set_and_get(redis.url, None)) is None  # nothing saved


def test_postgres_starts_takes_a_table_and_keeps_it_over_a_restart() -> None:
    async def write(dsn: str) -> None:
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute("CREATE TABLE t (n integer)")
            await connection.execute("INSERT INTO t VALUES (7)")
        finally:
            await connection.close()

    with Postgres() as postgres:
        asyncio.run(write(postgres.dsn))
        postgres.stop()
        postgres.start()
        assert postgres.query("SELECT n FROM t") == [["7"]]
