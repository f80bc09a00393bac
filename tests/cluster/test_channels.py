"""The shared channel counters against a real redis-server: all or nothing across nodes,
holders without a lease pruned, releases, other legs published and withdrawn, the lease's
expiry, and the local view while Redis is unreachable."""

from __future__ import annotations

import time
from pathlib import Path

import redis.asyncio as aioredis

from callserver.policy.cps import RateRefusal
from callserver.policy.limits import Grant, Refusal
from tests.cluster.channel_nodes import (
    PROFILES,
    Node,
    answering,
    entries,
    open_node,
    running_redis,
    wait_until,
)


async def test_the_fourth_call_is_refused_though_the_three_are_on_two_nodes(
    tmp_path: Path,
) -> None:
    """A 3-channel customer: two calls on A, one on B; the 4th (on B) is refused, nothing of
    it is counted in any pool, and the refusal names the pool and its use."""
    with running_redis(tmp_path) as redis:
        a, b = await open_node(redis.url, "a"), await open_node(redis.url, "b")
        try:
            calls = [await a.call(), await a.call(), await b.call()]
            assert all(isinstance(call, Grant) for call in calls)
            fourth = await b.call()
            assert fourth == Refusal(profile="customer:acme", limit=3, in_use=3)
            holders = {str(a.shared.holder): 2, str(b.shared.holder): 1}
            for profile in PROFILES:
                assert await entries(redis.url, profile) == holders
            assert b.admission.channels.statistics().refused == {"customer": 1}
            assert b.admission.channels.in_use("customer:acme") == 3  # 1 here, 2 seen on A
        finally:
            await a.close()
            await b.close()


async def test_a_holder_without_a_lease_is_pruned_and_never_counted(tmp_path: Path) -> None:
    """Channels of a holder whose lease is gone (a dead node, a restarted node's previous run)
    do not count: they are deleted by the next acquire."""
    with running_redis(tmp_path) as redis:
        client = aioredis.Redis.from_url(redis.url)
        await client.hset("cs:ch:customer:acme", mapping={"a/dead0001": 3})
        a = await open_node(redis.url, "a")
        try:
            calls = [await a.call() for _ in range(3)]
            assert all(isinstance(call, Grant) for call in calls)
            assert await entries(redis.url, "customer:acme") == {str(a.shared.holder): 3}
        finally:
            await a.close()
            await client.aclose()


async def test_a_release_at_zero_deletes_the_entry_and_other_legs_are_published(
    tmp_path: Path,
) -> None:
    """A released call's entry goes at 0; a leg taken without a check (a forwarded leg) is
    published, counts against the other nodes, and is withdrawn when released."""
    with running_redis(tmp_path) as redis:
        a, b = await open_node(redis.url, "a"), await open_node(redis.url, "b")
        try:
            call = await a.call()
            assert isinstance(call, Grant)
            a.admission.release(call)
            await a.shared.channels.flush()
            assert await entries(redis.url, "customer:acme") == {}
            assert await redis_keys(redis.url, "cs:ch:*") == []
            legs = [a.admission.channels.acquire(["customer:acme"]) for _ in range(3)]
            await a.shared.channels.flush()
            assert await entries(redis.url, "customer:acme") == {str(a.shared.holder): 3}
            assert await b.call() == Refusal(profile="customer:acme", limit=3, in_use=3)
            for leg in legs:
                assert isinstance(leg, Grant)
                a.admission.release(leg)
            await wait_until(lambda: _empty(redis.url), within=2)  # the writer sends it
            assert isinstance(await b.call(), Grant)
        finally:
            await a.close()
            await b.close()


async def test_a_node_that_stops_renewing_is_freed_within_its_lease(tmp_path: Path) -> None:
    """With a 1.5 s lease, a node that dies holding the whole pool stops counting within its
    lease of its last renewal: the other node admits again."""
    with running_redis(tmp_path) as redis:
        a = await open_node(redis.url, "a", lease=1.5)
        b = await open_node(redis.url, "b", lease=1.5)
        try:
            calls = [await a.call() for _ in range(3)]
            assert all(isinstance(call, Grant) for call in calls)
            assert isinstance(await b.call(), Refusal)
            await a.shared.lease.beat()  # its last renewal
            died = time.monotonic()
            await _die(a)
            await wait_until(lambda: _admits(b), within=3, step=0.02)
            freed = time.monotonic() - died
            print(f"the dead node's channels free {freed:.2f} s after its last renewal")
            assert freed <= 1.5 + 0.2
            assert await entries(redis.url, "customer:acme") == {str(b.shared.holder): 1}
        finally:
            await b.close()


async def test_redis_unreachable_admits_by_the_local_view_then_the_counts_are_rewritten(
    tmp_path: Path,
) -> None:
    """Redis stopped: B admits by its own channels plus A's as last seen (2 of 3 on A: one
    more, then refused); Redis back, empty: each node rewrites its own entries."""
    with running_redis(tmp_path) as redis:
        a, b = await open_node(redis.url, "a"), await open_node(redis.url, "b")
        try:
            assert isinstance(await a.call(), Grant) and isinstance(await a.call(), Grant)
            await b.shared.lease.beat()  # the census: A holds 2
            redis.stop()
            assert isinstance(await b.call(), Grant)
            assert await b.call() == Refusal(profile="customer:acme", limit=3, in_use=3)
            assert not b.link.up
            assert b.shared.channels.statistics().local == {"admitted": 1, "refused": 1}
            redis.start()
            await answering(redis.url)
            await a.shared.lease.beat()  # A finds Redis gone too, and reconnects
            holders = {str(a.shared.holder): 2, str(b.shared.holder): 1}
            await wait_until(lambda: _held(redis.url, holders), within=5)
            assert await b.call() == Refusal(profile="customer:acme", limit=3, in_use=3)
        finally:
            await a.close()
            await b.close()


async def test_a_redis_restarted_empty_gets_the_counts_back_within_a_heartbeat(
    tmp_path: Path,
) -> None:
    """Redis restarted empty while calls are up (1.5 s lease: a 0.5 s heartbeat): the node's
    counts are back within a heartbeat and the link's retry."""
    with running_redis(tmp_path) as redis:
        a = await open_node(redis.url, "a", lease=1.5)
        try:
            assert isinstance(await a.call(), Grant) and isinstance(await a.call(), Grant)
            redis.stop()
            redis.start()
            await answering(redis.url)
            took = await wait_until(
                lambda: _held(redis.url, {str(a.shared.holder): 2}), within=5, step=0.02
            )
            print(f"counts back {took:.2f} s after Redis answered again (heartbeat 0.5 s)")
            assert took <= a.shared.lease.heartbeat + a.link.retry + 0.5
            assert a.shared.channels.statistics().restores == 1
        finally:
            await a.close()


async def test_a_lease_found_gone_by_an_acquire_resyncs_first(tmp_path: Path) -> None:
    """An acquire that finds this node's own lease gone decides by the local view and has the
    link put the lease and the entries back."""
    with running_redis(tmp_path) as redis:
        a = await open_node(redis.url, "a")
        client = aioredis.Redis.from_url(redis.url)
        try:
            assert isinstance(await a.call(), Grant)
            await client.delete(a.shared.holder.lease_key, "cs:ch:customer:acme")
            assert isinstance(await a.call(), Grant)
            assert a.shared.channels.statistics().local == {"admitted": 1, "refused": 0}
            await wait_until(lambda: _held(redis.url, {str(a.shared.holder): 2}), within=3)
            assert await client.exists(a.shared.holder.lease_key) == 1
        finally:
            await a.close()
            await client.aclose()


async def test_a_trunks_call_rate_is_shared_and_local_at_its_full_rate_without_redis(
    tmp_path: Path,
) -> None:
    """2 calls a second (burst 2) for the trunk on all nodes: A and B take one each, A's next
    is refused with the wait for a token; Redis stopped, A's own bucket at the full rate."""
    trunks = {
        "customers": {"acme": {"channels": 30}},
        "trunks": {"acme-pbx": {"match": ["192.0.2.1"], "customer": "acme", "cps": 2}},
    }
    with running_redis(tmp_path) as redis:
        a = await open_node(redis.url, "a", trunks=trunks)
        b = await open_node(redis.url, "b", trunks=trunks)
        try:
            assert a.admission.rates.tokens("trunk:acme-pbx", 0.0) is None  # not local
            assert isinstance(await a.call(), Grant) and isinstance(await b.call(), Grant)
            refused = await a.call()
            assert isinstance(refused, RateRefusal) and refused.key == "trunk:acme-pbx"
            assert 0 < refused.retry_after <= 0.5
            assert a.admission.rates.statistics().refused == {"trunk": 1}
            redis.stop()
            assert isinstance(await a.call(), Grant) and isinstance(await a.call(), Grant)
            assert isinstance(await a.call(), RateRefusal)
        finally:
            await a.close()
            await b.close()


async def _admits(node: Node) -> bool:
    return isinstance(await node.call(), Grant)


async def _die(node: Node) -> None:
    """Stop a node as a kill would: no more renewals, nothing released, nothing deleted."""
    for task in (node.shared.lease._task, node.shared.channels._writer):
        assert task is not None
        task.cancel()
    await node.link.client.aclose()


async def _empty(url: str) -> bool:
    return await entries(url, "customer:acme") == {}


async def _held(url: str, holders: dict[str, int]) -> bool:
    return await entries(url, "customer:acme") == holders


async def redis_keys(url: str, pattern: str) -> list[bytes]:
    """The keys matching ``pattern``."""
    client = aioredis.Redis.from_url(url)
    try:
        return list(await client.keys(pattern))
    finally:
        await client.aclose()
