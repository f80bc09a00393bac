"""The ``cluster`` section: defaults, the commented example of config/callserver.yaml, and the
bad-file corpus in tests/config/cluster_bad."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, keep_startup_values, load_settings

BAD_DIR = Path(__file__).resolve().parent / "cluster_bad"
ROOT = Path(__file__).resolve().parents[2]

BAD: dict[str, list[str]] = {
    "edge-address-not-an-ip": [
        ":3: cluster.edge.addresses.0: 'kamailio.example.com' is not an IP address "
        "(192.0.2.10, 192.0.2.10:5060, [2001:db8::1]:5060)"
    ],
    "edge-address-port-too-big": [
        ":5: cluster.edge.addresses.1: '192.0.2.11:70000': the port is a number from 1 to 65535"
    ],
    "edge-header-not-a-name": [
        ":4: cluster.edge.source_header: 'X Source' is not a header name (letters, digits, '-')"
    ],
    "edge-only-not-a-boolean": [
        ":4: cluster.edge.only: Input should be a valid boolean, unable to interpret input"
    ],
    "edge-only-without-addresses": [
        ":3: cluster.edge: only: true takes SIP from the edge alone: list the edge's addresses "
        "(addresses: [192.0.2.10])"
    ],
    "edge-unknown-key": [
        ":3: cluster.edge.adresses: unknown key (misspelt, or in the wrong place?)"
    ],
    "lease-zero": [":3: cluster.lease: Input should be greater than 0"],
    "node-name-spaces": [
        ":2: cluster.node: 'node a': a node name is letters, digits, '_', '.', '-'"
    ],
    "postgres-not-a-url": [
        ":2: cluster.postgres: 'host=db user=callserver' is not a postgresql URL "
        "(postgresql://user@127.0.0.1:5432/db)"
    ],
    "redis-not-a-url": [
        ":3: cluster.redis: 'localhost:6379' is not a redis URL (redis://127.0.0.1:6379/0)"
    ],
    "unknown-key": [":2: cluster.nodes: unknown key (misspelt, or in the wrong place?)"],
}


def test_every_bad_file_has_its_message() -> None:
    """The corpus and the table name the same files, so no bad file goes unchecked."""
    assert sorted(path.stem for path in BAD_DIR.glob("*.yaml")) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_fails_with_its_message(name: str) -> None:
    """Loading the bad file raises OperatorFileError with exactly its file:line: field lines."""
    path = BAD_DIR / f"{name}.yaml"
    with pytest.raises(OperatorFileError) as caught:
        load_settings(path)
    assert caught.value.errors == [f"{path}{line}" for line in BAD[name]]


def test_without_a_cluster_section_the_node_is_on_its_own() -> None:
    """No Redis, no PostgreSQL, no edge: the embedded single node."""
    cluster = Settings().cluster
    assert (cluster.redis, cluster.postgres, cluster.edge.addresses, cluster.edge.only) == (
        None,
        None,
        [],
        False,
    )
    assert cluster.edge.source_header == "X-Callserver-Source"


def test_the_commented_example_in_the_shipped_settings_is_valid(tmp_path: Path) -> None:
    """The cluster section of config/callserver.yaml, its comment marks taken off, loads as
    the values it shows."""
    text = (ROOT / "config" / "callserver.yaml").read_text()
    block = re.search(r"^# cluster:\n(?:#   .*\n)+", text, re.MULTILINE)
    assert block is not None
    lines = [line[2:] for line in block.group(0).splitlines()]
    path = tmp_path / "callserver.yaml"
    path.write_text("\n".join(lines) + "\n")
    cluster = load_settings(path).cluster
    assert (cluster.node, cluster.lease, cluster.heartbeat) == ("node-a", 15.0, 5.0)
    assert cluster.redis == "redis://127.0.0.1:6379/0"
    assert cluster.postgres == "postgresql://callserver@127.0.0.1:5432/callserver"
    assert (cluster.edge.addresses, cluster.edge.only) == (["192.0.2.10"], True)


def test_a_reload_keeps_the_cluster_section_in_force(tmp_path: Path) -> None:
    """The node's place in the cluster is read at start-up: SIGHUP keeps it, says so."""
    running = load_settings(None, {"cluster": {"node": "a", "edge": {"addresses": ["192.0.2.1"]}}})
    loaded = load_settings(None, {"cluster": {"node": "b"}})
    kept, restart = keep_startup_values(running, loaded)
    assert kept.cluster == running.cluster
    assert restart == ["cluster.node", "cluster.edge"]
