"""Two nodes behind a real Kamailio edge, on loopback, for the edge's tests.

Each node is a ``callserver run`` of its own (``start_server`` in a subdirectory of the test's
tmp dir) with ``cluster.edge`` naming the edge's address and port, ``only`` on; the edge's
files are ``callserver edge-config``'s (``cluster.edge_config.render``) for those two nodes.
No Redis: these tests are about the SIP path.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from callserver.cluster.edge_config import NodeList, render
from tests.cluster.peers import Kamailio
from tests.e2e.conftest import HOST, ServerProcess, exported_cdrs, free_port, start_server

__all__ = ["EdgeCluster", "edge_cluster", "node_list"]


def node_list(edge_port: int, nodes: dict[str, int], directory: Path, **timing: object) -> NodeList:
    """The node list of an edge on ``edge_port`` in front of ``nodes`` (name: SIP port)."""
    return NodeList.model_validate(
        {
            "listen": f"{HOST}:{edge_port}",
            "dispatcher_list": str(directory / "dispatcher.list"),
            "nodes": {name: f"{HOST}:{port}" for name, port in nodes.items()},
            **timing,
        }
    )


@dataclass
class EdgeCluster:
    """The edge's port, its Kamailio and the nodes by name."""

    port: int
    kamailio: Kamailio
    nodes: dict[str, ServerProcess]

    def log_lines(self, pattern: str) -> list[str]:
        """The edge's log lines that match ``pattern``."""
        text = self.kamailio.log.read_text(errors="replace")
        return [line for line in text.splitlines() if re.search(pattern, line)]

    def wait_for_log(self, pattern: str, timeout: float) -> float:
        """Seconds until a line matching ``pattern`` appeared in the edge's log (polled each
        20 ms); AssertionError after ``timeout``."""
        start = time.monotonic()
        while time.monotonic() - start < timeout:
            if self.log_lines(pattern):
                return time.monotonic() - start
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in the edge's log:\n{self.tail()}")

    def tail(self) -> str:
        """The end of the edge's log."""
        return self.kamailio.log.read_text(errors="replace")[-3000:]

    def cdrs(self) -> dict[str, list[dict[str, object]]]:
        """Each node's CDRs (stop the nodes first: their last records are then on disk)."""
        return {name: exported_cdrs(node.data_dir) for name, node in self.nodes.items()}


@contextlib.contextmanager
def edge_cluster(
    tmp_path: Path,
    settings: dict[str, dict[str, Any]] | None = None,
    names: tuple[str, ...] = ("a", "b"),
    **timing: object,
) -> Iterator[EdgeCluster]:
    """Nodes ``names`` (``a`` and ``b``) behind a Kamailio edge, each in its subdirectory of
    ``tmp_path``; ``settings`` are a node's own ``start_server`` arguments by name, ``timing``
    goes into the node list (``reply_timeout``, ``pike_requests``, ...). Everything is
    stopped when the block ends."""
    edge_port = free_port()
    edge = {"addresses": [f"{HOST}:{edge_port}"], "only": True}
    nodes: dict[str, ServerProcess] = {}
    try:
        for name in names:
            cluster = {"node": name, "edge": edge}
            own = (settings or {}).get(name, {})
            nodes[name] = start_server(tmp_path / name, cluster=cluster, hangup_after=60, **own)
        directory = tmp_path / "edge"
        directory.mkdir()
        ports = {name: node.port for name, node in nodes.items()}
        files = render(node_list(edge_port, ports, directory, **timing))
        (directory / "dispatcher.list").write_text(files.dispatcher_list)
        with Kamailio(directory, files.kamailio_cfg, edge_port) as kamailio:
            yield EdgeCluster(edge_port, kamailio, nodes)
    finally:
        for node in nodes.values():
            if node.proc.poll() is None:
                node.stop()
