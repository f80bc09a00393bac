"""``callserver cluster`` (``make cluster``): a whole cluster on this machine, on loopback.

Redis, PostgreSQL, N ``callserver run`` nodes and the Kamailio edge in front of them, from
Debian's packages, each a child process (``cluster.processes``) with its files under one
directory (``var/cluster`` by default)::

    var/cluster/redis/          redis.log (nothing saved: Redis starts empty each time)
    var/cluster/pg/data/        PostgreSQL's data (initdb the first time), pg/postgres.log
    var/cluster/node-a/         the node's data dir (var/) and its log (node.log)
    var/cluster/edge/           kamailio.cfg and dispatcher.list (``callserver edge-config``'s
                                files for these nodes), kamailio.log

Every node runs the same settings file (``--config``, default config/callserver.yaml) with
its own values from ``CALLSERVER_*`` variables: its SIP port, admin port, data dir, RTP port
range, the cluster section (its name, Redis, PostgreSQL, the edge's address and port with
``edge.only`` on). The edge listens on 127.0.0.1:``edge_port`` (5060 by default): point
phones and SIPp there. It all runs in the foreground until Ctrl-C (or SIGTERM), which stops
everything (the nodes drain as on any SIGTERM); a child that exits on its own stops the rest.
"""

from __future__ import annotations

import json
import signal
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from callserver.cluster.edge_config import NodeList, render
from callserver.cluster.processes import (
    HOST,
    Child,
    KamailioServer,
    NodeProcess,
    PostgresServer,
    RedisServer,
    free_port,
    port_bound,
)

__all__ = ["ClusterLayout", "LocalCluster", "run_cluster"]

_RTP_SPAN = 2000  # RTP ports per node: node i takes 20000 + i * 2000 ... + 1999


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """Where the cluster lives and its shape."""

    root: Path = Path("var/cluster")
    nodes: int = 2
    edge_port: int = 5060
    config: Path = Path("config/callserver.yaml")


class LocalCluster:
    """The children of one ``callserver cluster``; see the module docstring."""

    def __init__(self, layout: ClusterLayout, say: Callable[[str], None] = print) -> None:
        self.layout = layout
        self.say = say
        root = layout.root.resolve()
        self.redis = RedisServer(root / "redis", free_port())
        self.postgres = PostgresServer(root / "pg" / "data", free_port(both=False))
        names = [f"node-{letter}" for letter in string.ascii_lowercase[: layout.nodes]]
        self.ports = {name: free_port() for name in names}
        self.admin = {name: free_port() for name in names}
        self.nodes = [self._node(i, name, root) for i, name in enumerate(names)]
        self.edge = KamailioServer(root / "edge", root / "edge" / "kamailio.cfg", layout.edge_port)

    def _node(self, index: int, name: str, root: Path) -> NodeProcess:
        port, low = self.ports[name], 20000 + index * _RTP_SPAN
        env = {
            "CALLSERVER_SIP__LISTEN": json.dumps([f"udp:{HOST}:{port}", f"tcp:{HOST}:{port}"]),
            "CALLSERVER_ADMIN__LISTEN": f"{HOST}:{self.admin[name]}",
            "CALLSERVER_DATA_DIR": str(root / name / "var"),
            "CALLSERVER_MEDIA__RTP_PORT_MIN": str(low),
            "CALLSERVER_MEDIA__RTP_PORT_MAX": str(low + _RTP_SPAN - 1),
            "CALLSERVER_LOG_FORMAT": "json",
            "CALLSERVER_CLUSTER__NODE": name,
            "CALLSERVER_CLUSTER__REDIS": self.redis.url,
            "CALLSERVER_CLUSTER__POSTGRES": self.postgres.dsn,
            "CALLSERVER_CLUSTER__EDGE__ADDRESSES": json.dumps([f"{HOST}:{self.layout.edge_port}"]),
            "CALLSERVER_CLUSTER__EDGE__ONLY": "true",
        }
        return NodeProcess(name, root / name, self.layout.config.resolve(), env)

    @property
    def children(self) -> list[Child]:
        """Every child, in the order they start."""
        return [self.redis, self.postgres, *self.nodes, self.edge]

    def start(self) -> None:
        """Start everything; on a failure, stop what started and raise."""
        if port_bound(self.layout.edge_port, udp=True):
            raise RuntimeError(
                f"127.0.0.1:{self.layout.edge_port} (UDP) is taken: give --edge-port another"
            )
        try:
            self.redis.start()
            self.postgres.start()
            for node in self.nodes:
                node.launch(cwd=Path.cwd())
            for node in self.nodes:
                node.ready()
            self._write_edge_files()
            self.edge.start()
        except BaseException:
            self.stop()
            raise

    def _write_edge_files(self) -> None:
        directory = self.edge.workdir
        nodes = NodeList(
            listen=f"{HOST}:{self.layout.edge_port}",
            dispatcher_list=str(directory / "dispatcher.list"),
            nodes={name: f"{HOST}:{port}" for name, port in self.ports.items()},
        )
        files = render(nodes, "(callserver cluster)")
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "dispatcher.list").write_text(files.dispatcher_list)
        self.edge.config.write_text(files.kamailio_cfg)

    def describe(self) -> list[str]:
        """Where each part is, a line each."""
        root = self.layout.root
        lines = [f"edge (Kamailio)  sip:{HOST}:{self.layout.edge_port} (UDP, TCP)   {root}/edge"]
        for node in self.nodes:
            port, admin = self.ports[node.name], self.admin[node.name]
            lines.append(
                f"{node.name:<16} sip:{HOST}:{port}  admin http://{HOST}:{admin}   "
                f"{root}/{node.name}"
            )
        lines.append(f"Redis            {self.redis.url}   {root}/redis")
        lines.append(f"PostgreSQL       {self.postgres.dsn}   {root}/pg")
        return lines

    def stop(self) -> None:
        """Stop everything, the edge first, the nodes side by side (each drains)."""
        self.edge.stop()
        for node in self.nodes:
            node.terminate()
        for child in (*self.nodes, self.postgres, self.redis):
            child.stop(timeout=60.0)

    def watch(self, poll: float = 0.5) -> str | None:
        """Block until SIGINT or SIGTERM (None) or until a child exits (its name)."""
        stopping: list[int] = []

        def stop_on(signum: int, frame: FrameType | None) -> None:
            stopping.append(signum)

        previous = {sig: signal.signal(sig, stop_on) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stopping:
                for child in self.children:
                    if not child.running:
                        return child.name
                time.sleep(poll)
            return None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_cluster(layout: ClusterLayout, say: Callable[[str], None] = print) -> int:
    """Start the cluster of ``layout``, say where each part is, run until Ctrl-C; stop it.

    Returns:
        0 after Ctrl-C or SIGTERM, 1 when a child exited on its own.
    """
    cluster = LocalCluster(layout, say)
    say(f"callserver cluster: starting Redis, PostgreSQL, {layout.nodes} nodes and the edge")
    cluster.start()
    for line in cluster.describe():
        say(f"  {line}")
    say("callserver cluster: ready; Ctrl-C stops everything")
    exited = cluster.watch()
    if exited is not None:
        say(f"callserver cluster: {exited} exited (see its log); stopping the rest")
    else:
        say("callserver cluster: stopping")
    cluster.stop()
    say("callserver cluster: stopped")
    return 0 if exited is None else 1
