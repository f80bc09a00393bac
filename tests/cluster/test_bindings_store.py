"""The registrar's bindings and the phones' settings shared through a real redis-server: a
REGISTER one node takes is in force on the other (reached through its Path, qualified only
where it was taken), removals reach every node, expiries are not written, a restarted node
takes its own bindings back; a setting changed on one node is in force on the other."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from callserver.calls.services_store import ServicesStore
from callserver.cluster.bindings import RedisBindingStore
from callserver.cluster.link import RedisLink
from callserver.cluster.services import RedisServiceStore
from callserver.config.centrex import Centrex, compile_centrex
from callserver.config.centrex_file import CentrexFile
from callserver.policy.services import ServiceSettings
from callserver.registrar.binding import Binding, BindingState
from callserver.registrar.registrar import Registrar
from callserver.sip.peer import Peer
from tests.cluster.mirror_nodes import Wall, until
from tests.cluster.peers import Redis
from tests.registrar.support import AOR, TCP, UDP, registered, registrar

EDGE = "<sip:192.0.2.50:5070;lr>"  # the Path the edge puts in a REGISTER it forwards


class Node:
    """A node's link, binding store and registrar (qualify every 30 s)."""

    def __init__(self, url: str, name: str, wall: Wall, incarnation: int = 1) -> None:
        self.loop = asyncio.get_running_loop()
        self.link = RedisLink(url, timeout=0.3, retry=0.05)
        self.store = RedisBindingStore(
            self.link, node=name, holder=f"{name}/{incarnation}", loop=self.loop, wall=wall
        )
        self.registrar: Registrar = registrar()

    async def start(self) -> None:
        """Read the bindings into the registrar, then take other nodes' changes."""
        await self.store.open()
        self.registrar.restore(self.store.load(self.loop.time()))
        self.registrar.set_qualify(30.0, self.loop.time())
        self.store.attach(self._changed)

    def _changed(self, aor: str, contact: str, binding: Binding | None) -> None:
        self.registrar.changed_elsewhere(aor, contact, binding, self.loop.time())

    def register(self, contact: str, flow: Peer, *path: str, cseq: int = 1) -> None:
        """A REGISTER of ``contact`` taken here, its changes stored."""
        extra = [("Path", hop) for hop in path]
        now = self.loop.time()
        answer = registered(self.registrar, now, [contact], flow=flow, extra=extra, cseq=cseq)
        assert answer.status == 200, answer
        self.store.apply(answer.changes, now)

    async def close(self) -> None:
        """Stop the mirror and the link."""
        self.store.close()
        await self.store.mirror.close()
        await self.link.close()


@asynccontextmanager
async def _nodes(redis: Redis, *names: str) -> AsyncIterator[list[Node]]:
    nodes = [Node(redis.url, name, Wall()) for name in names]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.close()


async def test_a_binding_taken_on_one_node_is_reached_from_the_other_through_its_path(
    tmp_path: Path,
) -> None:
    """A REGISTER through the edge on node a: node b holds the binding as a's, sends to the
    Path's first hop with the Path as Route set, and does not qualify it; a does."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, "a", "b") as (a, b):
            a.register("<sip:201@192.0.2.10:5062>", UDP, EDGE)
            took = await until(lambda: b.registrar.lookup(AOR, b.loop.time()) != [], "at b")
            (there,) = b.registrar.lookup(AOR, b.loop.time())
            assert there.node == "a" and there.path == (EDGE,)
            assert there.flow == Peer("udp", "192.0.2.50", 5070)
            assert there.expires - b.loop.time() == pytest.approx(3600, abs=1)
            later = b.loop.time() + 31
            assert b.registrar.qualify_due(later) == []
            assert [x.contact for x in a.registrar.qualify_due(later)] == [there.contact]
            assert took < 1.0


async def test_another_nodes_tcp_binding_without_path_is_held_but_never_used(
    tmp_path: Path,
) -> None:
    """A TCP connection is the node's that holds it: node b lists a's TCP binding (no Path)
    as FLOW_CLOSED and never sends to it; one through the edge it reaches by the Path."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, "a", "b") as (a, b):
            a.register("<sip:201@192.0.2.11:40312;transport=tcp>", TCP)
            await until(lambda: b.registrar.bindings() != [], "a's binding at b")
            (held,) = b.registrar.bindings()
            assert held.state is BindingState.FLOW_CLOSED and held.flow.conn_id is None
            assert b.registrar.lookup(AOR, b.loop.time()) == []
            edge = "<sip:192.0.2.50:5070;transport=tcp;lr>"
            a.register("<sip:201@192.0.2.12;transport=tcp>", TCP, edge, cseq=3)
            await until(lambda: b.registrar.lookup(AOR, b.loop.time()) != [], "via the edge")
            (usable,) = b.registrar.lookup(AOR, b.loop.time())
            assert usable.flow == Peer("tcp", "192.0.2.50", 5070)


async def test_a_removal_reaches_every_node_and_an_expiry_is_not_written(
    tmp_path: Path,
) -> None:
    """b unregisters a's binding: a's copy goes too. Expiries are each node's own: nothing
    is written when a binding expires."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, "a", "b") as (a, b):
            a.register("<sip:201@192.0.2.10:5062>", UDP)
            await until(lambda: b.registrar.bindings() != [], "at b")
            b.store.apply(b.registrar.unregister(AOR), b.loop.time())
            await until(lambda: a.registrar.bindings() == [], "removed at a")
            a.register("<sip:201@192.0.2.10:5062>", UDP, cseq=5)
            await until(lambda: b.registrar.bindings() != [], "registered again, at b")
            written = a.store.mirror.statistics().written
            expired = a.registrar.handle_timer(a.loop.time() + 3601)
            assert [c.change.value for c in expired] == ["expired"]
            a.store.apply(expired, a.loop.time())
            await asyncio.sleep(0.05)
            assert a.store.mirror.statistics().written == written
            assert a.store.mirror.statistics().unsent == 0


async def test_a_restarted_node_takes_its_own_bindings_back(tmp_path: Path) -> None:
    """A node started again reads the bindings its earlier run took as its own: qualified
    here, a TCP one unusable until the phone registers again (its connection is gone)."""
    with Redis(tmp_path / "redis") as redis:
        async with _nodes(redis, "a") as (a,):
            a.register("<sip:201@192.0.2.10:5062>", UDP)
            await until(lambda: a.store.mirror.statistics().written == 1, "written")
        again = Node(redis.url, "a", Wall(), incarnation=2)
        try:
            await again.start()
            (binding,) = again.registrar.bindings()
            assert binding.node is None and binding.state is BindingState.ACTIVE
            later = again.loop.time() + 31
            assert [x.contact for x in again.registrar.qualify_due(later)] == [binding.contact]
        finally:
            await again.close()


def _centrex() -> Centrex:
    phones = {
        f"+38733100{ext}": {"ha1_md5": "0" * 32, "username": f"u{ext}"} for ext in ("201", "202")
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "extensions": {"digits": 3},
        "subscribers": phones,
    }
    centrex, errors = compile_centrex(CentrexFile.model_validate({"groups": {"g": group}}))
    assert errors == []
    return centrex


async def test_a_setting_changed_on_one_node_is_in_force_on_the_other(tmp_path: Path) -> None:
    """*21*202# on node a: node b's services store has it in force at once (the pub/sub
    delay); a node started later reads it."""
    loop, centrex = asyncio.get_running_loop(), _centrex()
    with Redis(tmp_path / "redis") as redis:
        links = [RedisLink(redis.url, timeout=0.3, retry=0.05) for _ in range(3)]
        stores = [
            RedisServiceStore(link, node=name, holder=f"{name}/1", loop=loop, wall=Wall())
            for link, name in zip(links, "abc", strict=True)
        ]
        services: list[ServicesStore] = []
        try:
            for store in stores[:2]:
                await store.open()
                services.append(ServicesStore(lambda: centrex, store, loop))
                store.attach(services[-1].changed_elsewhere)
            assert services[0].change("+38733100201", {"forward_always": "202", "dnd": True})
            expected = ServiceSettings(forward_always="202", dnd=True)
            took = await until(lambda: services[1].settings_of("38733100201") == expected, "at b")
            assert took < 1.0
            await stores[2].open()
            assert {(o.service, o.value) for o in stores[2].load()} == {
                ("forward_always", "202"),
                ("dnd", True),
            }
        finally:
            for service in services:
                await service.close()
            for store, link in zip(stores, links, strict=True):
                await store.mirror.close()
                await link.close()
