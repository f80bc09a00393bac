"""Several nodes on the command line: ``callserver cluster`` (a whole cluster on this machine,
``make cluster``) and ``callserver edge-config NODES.yaml`` (the edge's Kamailio files).

``add_parsers`` adds them to ``callserver``'s parser; ``RUNNERS`` maps a command to its
function, which imports what it works with when it runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from callserver.config.errors import OperatorFileError

__all__ = ["RUNNERS", "add_parsers"]


def add_parsers(sub: Any) -> None:
    """Add ``cluster`` and ``edge-config`` to ``sub`` (argparse's subparsers of callserver)."""
    cluster = sub.add_parser(
        "cluster",
        help="run Redis, PostgreSQL, N nodes and the Kamailio edge on loopback until Ctrl-C",
    )
    cluster.add_argument("--nodes", type=int, default=2, help="how many nodes (2)")
    cluster.add_argument(
        "--dir", type=Path, default=Path("var/cluster"), help="their files (var/cluster)"
    )
    cluster.add_argument(
        "--edge-port", type=int, default=5060, help="the edge's SIP port on 127.0.0.1 (5060)"
    )
    cluster.add_argument(
        "--config", type=Path, default=Path("config/callserver.yaml"), help="the nodes' settings"
    )
    edge = sub.add_parser(
        "edge-config", help="write the edge's kamailio.cfg and dispatcher.list from a node list"
    )
    edge.add_argument("nodes", type=Path, help="the node list (deploy/kamailio/nodes.yaml)")
    edge.add_argument("--out", type=Path, help="where to write them (the node list's directory)")


def _cluster(args: argparse.Namespace) -> int:
    from callserver.cluster.local import ClusterLayout, run_cluster
    from callserver.cluster.processes import MissingProgram

    if not 1 <= args.nodes <= 26:
        print("callserver cluster: --nodes is 1 to 26", file=sys.stderr)
        return 2
    layout = ClusterLayout(args.dir, args.nodes, args.edge_port, args.config)
    try:
        return run_cluster(layout, lambda line: print(line, flush=True))
    except (MissingProgram, RuntimeError, OSError) as exc:
        print(f"callserver cluster: {exc}", file=sys.stderr)
        return 1


def _edge_config(args: argparse.Namespace) -> int:
    from callserver.cluster.edge_config import load_node_list, write_files

    try:
        nodes = load_node_list(args.nodes)
        out = args.out or args.nodes.parent
        for path in write_files(nodes, out, args.nodes.name):
            print(f"wrote {path}")
    except OperatorFileError as exc:
        print("\n".join(exc.errors), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"callserver edge-config: {exc}", file=sys.stderr)
        return 1
    return 0


RUNNERS: dict[str, Callable[[argparse.Namespace], int]] = {
    "cluster": _cluster,
    "edge-config": _edge_config,
}
