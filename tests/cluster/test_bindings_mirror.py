"""The shared mirror against a real redis-server: two nodes' mirrors in one test process see
each other's changes, a starting node reads everything, changes made while Redis was
unreachable are written when it answers, a Redis restarted empty gets them back, and the later
change wins."""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import redis.asyncio as aioredis

from callserver.cluster.records import Change
from tests.cluster.mirror_nodes import WALL, MirrorNode, Wall, until
from tests.cluster.peers import Redis


@asynccontextmanager
async def _nodes(redis: Redis, *walls: Wall) -> AsyncIterator[list[MirrorNode]]:
    nodes = [MirrorNode(redis.url, name, wall) for name, wall in zip("abc", walls, strict=False)]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.close()


async def _records(url: str, key: str) -> dict[str, dict[str, object]]:
    client = aioredis.Redis.from_url(url)
    try:
        fields = await client.hgetall(f"cs:things:{key}")
    finally:
        await client.aclose()
    return {field.decode(): json.loads(value) for field, value in fields.items()}


async def test_a_change_one_node_writes_is_applied_by_the_other_and_not_by_itself(
    tmp_path: Path,
) -> None:
    """A's change reaches B's sink, stamped and named a's, in order; A's own sink gets none."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, Wall(), Wall()) as (a, b):
            a.mirror.write([Change(key="+1", field="c1", value={"n": 1}, expires=WALL + 60)])
            await until(lambda: len(b.seen) == 1, "the first change at b")
            a.wall.at += 1
            a.mirror.write([Change(key="+1", field="c1", value={"n": 2}, expires=WALL + 61)])
            await until(lambda: len(b.seen) == 2, "the second change at b")
            assert [(e.value, e.node, e.stamp) for e in b.seen] == [
                ({"n": 1}, "a", WALL),
                ({"n": 2}, "a", WALL + 1),
            ]
            assert a.seen == []
            records = await _records(redis.url, "+1")
            assert records == {"c1": {"t": WALL + 1, "n": "a", "x": WALL + 61, "v": {"n": 2}}}
            stats = b.mirror.statistics()
            assert (stats.up, stats.received, stats.unsent) == (True, 2, 0)
            assert a.mirror.statistics().written == 2


async def test_a_starting_node_reads_every_unexpired_entry_and_takes_back_its_own(
    tmp_path: Path,
) -> None:
    """A node starting reads what the others wrote (expired and deleted entries left out);
    what an earlier run of it wrote is its own again: written back after Redis lost it."""
    with Redis(tmp_path / "redis") as redis:
        wall = Wall()
        async with _nodes(redis, wall) as (a,):
            a.mirror.write(
                [
                    Change(key="+1", field="kept", value="k", expires=WALL + 60),
                    Change(key="+1", field="short", value="s", expires=WALL + 5),
                    Change(key="+2", field="setting", value=None),  # no expiry
                    Change(key="+3", field="gone", gone=True, expires=WALL + 60),
                ]
            )
            await until(lambda: a.mirror.statistics().unsent == 0, "a's changes written")
        wall.at = WALL + 10  # "short" has expired
        again = MirrorNode(redis.url, "a", wall, incarnation=2)
        other = MirrorNode(redis.url, "b", wall)
        try:
            snapshot = await other.start()
            assert sorted((e.key, e.field, e.value, e.node) for e in snapshot) == [
                ("+1", "kept", "k", "a"),
                ("+2", "setting", None, "a"),
            ]
            assert len(await again.start()) == 2
            redis.stop()
            redis.start()  # empty: the restarted a writes back what its earlier run wrote
            await until(lambda: again.mirror.statistics().resyncs >= 1, "a's re-read", 10)
            assert set(await _records(redis.url, "+1")) == {"kept"}
            assert (await _records(redis.url, "+2"))["setting"]["v"] is None
        finally:
            await again.close()
            await other.close()


async def test_changes_made_while_redis_is_unreachable_are_written_when_it_answers(
    tmp_path: Path,
) -> None:
    """Redis stops answering (SIGSTOP): each node's changes wait; when it answers (SIGCONT)
    they are written and reach the other node, and where both changed one entry the later
    wall-clock change (b's deletion) wins on both."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, Wall(), Wall(WALL + 5)) as (a, b):
            assert redis.proc is not None
            redis.proc.send_signal(signal.SIGSTOP)
            try:
                a.mirror.write([Change(key="+1", field="a-only", value=1, expires=WALL + 60)])
                a.mirror.write([Change(key="+1", field="both", value="a", expires=WALL + 60)])
                b.mirror.write([Change(key="+1", field="both", gone=True, expires=WALL + 60)])
                await until(lambda: not a.link.up and not b.link.up, "both links down")
                assert a.mirror.statistics().unsent == 2 and not a.mirror.statistics().up
            finally:
                redis.proc.send_signal(signal.SIGCONT)
            await until(lambda: a.mirror.statistics().up and b.mirror.statistics().up, "up")
            await until(lambda: any(e.field == "a-only" for e in b.seen), "a's change at b")
            await until(lambda: any(e.field == "both" for e in a.seen), "b's deletion at a")
            assert [e.gone for e in a.seen if e.field == "both"][-1]
            assert all(e.field != "both" or e.gone for e in b.seen)
            records = await _records(redis.url, "+1")
            assert records["both"] == {"t": WALL + 5, "n": "b", "x": WALL + 60}
            assert records["a-only"]["v"] == 1
            assert a.mirror.statistics().unsent == b.mirror.statistics().unsent == 0


async def test_a_redis_restarted_empty_gets_each_nodes_own_entries_back(tmp_path: Path) -> None:
    """Redis restarts empty: each node notices its lost subscription, re-reads and writes
    back its own entries; what it knew of the other's stays in its memory."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, Wall(), Wall()) as (a, b):
            a.mirror.write([Change(key="+1", field="of-a", value="a", expires=WALL + 60)])
            b.mirror.write([Change(key="+2", field="of-b", value="b")])
            await until(lambda: len(a.seen) == len(b.seen) == 1, "each other's change")
            redis.stop()
            redis.start()
            await until(
                lambda: all(n.mirror.statistics().resyncs >= 1 for n in (a, b)), "re-reads", 10
            )
            assert (await _records(redis.url, "+1"))["of-a"]["n"] == "a"
            assert (await _records(redis.url, "+2"))["of-b"]["v"] == "b"
            assert a.mirror.statistics().up and b.mirror.statistics().up


async def test_the_later_change_wins_whichever_node_writes_last(tmp_path: Path) -> None:
    """B writes an entry after A did but with an earlier wall-clock time: Redis keeps A's,
    and B's sink is given A's change in place of its own."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, Wall(WALL + 100), Wall(WALL)) as (a, b):
            a.mirror.write([Change(key="+1", field="c", value="a", expires=WALL + 600)])
            await until(lambda: len(b.seen) == 1, "a's change at b")
            b.mirror.write([Change(key="+1", field="c", value="b", expires=WALL + 600)])
            await until(lambda: b.mirror.statistics().unsent == 0, "b's write answered")
            assert (await _records(redis.url, "+1"))["c"]["v"] == "a"
            assert [e.value for e in b.seen] == ["a", "a"] and a.seen == []


async def test_an_entry_past_its_expiry_is_dropped_from_its_hash_when_another_is_written(
    tmp_path: Path,
) -> None:
    """Redis 7.0 has no expiry per field: writing a field drops the hash's expired ones and
    sets the key's expiry to the latest left."""
    with Redis(tmp_path / "redis") as redis:
        wall = Wall()
        async with _nodes(redis, wall) as (a,):
            a.mirror.write([Change(key="+1", field="old", value=1, expires=WALL + 5)])
            await until(lambda: a.mirror.statistics().written == 1, "the first written")
            assert set(await _records(redis.url, "+1")) == {"old"}
            wall.at = WALL + 10
            a.mirror.write([Change(key="+1", field="new", value=2, expires=WALL + 70)])
            await until(lambda: a.mirror.statistics().written == 2, "both written")
            assert set(await _records(redis.url, "+1")) == {"new"}
            client = aioredis.Redis.from_url(redis.url)
            try:
                assert await client.pexpiretime("cs:things:+1") == int((WALL + 70) * 1000)
            finally:
                await client.aclose()
