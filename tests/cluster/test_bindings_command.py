"""``callserver subscribers show`` on a node of a cluster reads the phone's changes and its
registrations from the cluster's Redis, what every node has in force; an unreachable Redis is
a clear error."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import yaml

from callserver.calls.services_store import Override
from callserver.cluster.bindings import RedisBindingStore
from callserver.cluster.link import RedisLink
from callserver.cluster.services import RedisServiceStore
from callserver.commands.subscribers import show
from tests.cluster.mirror_nodes import WALL, Wall
from tests.cluster.peers import Redis
from tests.commands.test_subscribers import _centrex
from tests.e2e.conftest import free_port
from tests.registrar.support import UDP, registered, registrar


async def _written_by_node_a(url: str) -> None:
    """Node a stores a registration of 201 and two of its settings in Redis."""
    loop = asyncio.get_running_loop()
    link = RedisLink(url)
    wall = Wall()
    bindings = RedisBindingStore(link, node="a", holder="a/1", loop=loop, wall=wall)
    services = RedisServiceStore(link, node="a", holder="a/1", loop=loop, wall=wall)
    try:
        for store in (bindings, services):
            await store.open()
        answer = registered(registrar(), 100.0, ["<sip:201@192.0.2.10:5062>;expires=600"], flow=UDP)
        bindings.apply(answer.changes, 100.0)
        services.apply(
            [
                Override(number="+38733100201", service="forward_no_answer", value="VM"),
                Override(number="+38733100201", service="dnd", value=True),
            ]
        )
        await asyncio.sleep(0)  # handed over to the mirrors
        await bindings.mirror.wait_written()
        await services.mirror.wait_written()
    finally:
        await bindings.mirror.close()
        await services.mirror.close()
        await link.close()


def test_show_on_a_cluster_node_reads_redis(tmp_path: Path) -> None:
    """The settings and the registration node a wrote, with the node named, and nothing from
    the (empty) data dir."""
    with Redis(tmp_path / "redis") as redis:
        asyncio.run(_written_by_node_a(redis.url))
        text = show(_centrex(), tmp_path, "033 100 201", "en", lambda: WALL + 100, redis.url)
    lines = {line.split()[0]: line.split()[1:] for line in text.splitlines()[7:14]}
    assert lines["forward_no_answer"] == ["VM", "off", "VM"] and lines["dnd"] == ["on", "off", "on"]
    assert "    sip:201@192.0.2.10:5062  udp from 192.0.2.10:5062 (node a), 500 s left" in text


def test_show_says_when_the_clusters_redis_cannot_be_reached(tmp_path: Path) -> None:
    """`callserver subscribers show` with cluster.redis on a port where nothing listens: exit
    1 and what to do."""
    url = f"redis://127.0.0.1:{free_port(both=False)}/0"
    config = {
        "trunks": str(tmp_path / "trunks.yaml"),
        "centrex": str(tmp_path / "centrex.yaml"),
        "data_dir": str(tmp_path / "var"),
        "cluster": {"redis": url},
    }
    (tmp_path / "callserver.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "trunks.yaml").write_text("trunks: {}\ncustomers: {acme: {}}\n")
    centrex = {"groups": {"office": yaml.safe_load(_GROUP)}}
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump(centrex))
    command = [sys.executable, "-m", "callserver", "subscribers", "show", "+38733100201"]
    done = subprocess.run(
        [*command, "--config", str(tmp_path / "callserver.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"the cluster's Redis ({url}) cannot be read" in done.stderr
    assert "start it, or check cluster.redis" in done.stderr


_GROUP = """
customer: acme
numbers: ['+387 33 100 200-299']
extensions: {digits: 3}
subscribers:
  '+387 33 100 201': {username: '38733100201', ha1_md5: '00000000000000000000000000000000'}
"""
