"""deploy/ for a cluster: the edge's Kamailio files are ``callserver edge-config``'s output for
the example node list and Kamailio parses them; the compose file and the node's systemd
template fit together with them."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from callserver.cli import main
from callserver.cluster.edge_config import load_node_list, render
from callserver.cluster.processes import find_program
from callserver.config.errors import OperatorFileError
from callserver.config.settings import load_settings
from tests.cluster.peers import hinted

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KAMAILIO = DEPLOY / "kamailio"


def test_the_shipped_edge_files_are_the_generators_output_for_the_node_list() -> None:
    """deploy/kamailio/kamailio.cfg and dispatcher.list are what `callserver edge-config
    deploy/kamailio/nodes.yaml` writes (run it after changing either)."""
    files = render(load_node_list(KAMAILIO / "nodes.yaml"), "nodes.yaml")
    assert (KAMAILIO / "kamailio.cfg").read_text() == files.kamailio_cfg
    assert (KAMAILIO / "dispatcher.list").read_text() == files.dispatcher_list


def test_kamailio_parses_the_shipped_config() -> None:
    """``kamailio -c`` (Debian's Kamailio 5.6) finds every module, parameter and function."""
    with hinted():
        kamailio = find_program("kamailio")
    done = subprocess.run(
        [kamailio, "-c", "-f", str(KAMAILIO / "kamailio.cfg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "config file ok" in done.stderr + done.stdout, done.stderr


def test_edge_config_writes_both_files_where_asked(tmp_path: Path) -> None:
    """The command writes the two files into --out, the same as the shipped ones."""
    assert main(["edge-config", str(KAMAILIO / "nodes.yaml"), "--out", str(tmp_path)]) == 0
    for name in ("kamailio.cfg", "dispatcher.list"):
        assert (tmp_path / name).read_text() == (KAMAILIO / name).read_text()


def test_a_bad_node_list_names_file_line_and_field(tmp_path: Path) -> None:
    """A node list with a bad address and an unknown key is refused with file:line errors."""
    path = tmp_path / "nodes.yaml"
    path.write_text("listen: 127.0.0.1\nnodes:\n  a: 127.0.0.1:5070\nprobes: 3\n")
    with pytest.raises(OperatorFileError) as caught:
        load_node_list(path)
    assert caught.value.errors == [
        f"{path}:1: listen: '127.0.0.1' is not IP:PORT (192.0.2.10:5060, [2001:db8::1]:5060)",
        f"{path}:4: probes: unknown key (misspelt, or in the wrong place?)",
    ]
    path.write_text("listen: 127.0.0.1:5060\nnodes:\n  'a b': 127.0.0.1:5070\n")
    with pytest.raises(OperatorFileError) as caught:
        load_node_list(path)
    assert caught.value.errors == [
        f"{path}:2: nodes: 'a b': a node name is letters, digits, '_', '.', '-'"
    ]


def _compose() -> dict[str, dict[str, object]]:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    assert isinstance(compose, dict)
    return compose


def _ip(service: dict[str, object]) -> str:
    networks = service["networks"]
    assert isinstance(networks, dict)
    return str(networks["cluster"]["ipv4_address"])


def test_the_compose_file_runs_the_edge_and_the_node_list_s_nodes() -> None:
    """Redis, PostgreSQL, the edge and the two nodes; the edge on the node list's address with
    the shipped files; each node at its address in the node list, naming the edge."""
    compose = _compose()
    services = compose["services"]
    assert sorted(services) == ["kamailio", "node-a", "node-b", "postgres", "redis"]
    nodes = load_node_list(KAMAILIO / "nodes.yaml")
    edge = services["kamailio"]
    assert _ip(edge) == nodes.listen.rsplit(":", 1)[0]
    for volume in edge["volumes"]:
        assert (DEPLOY / volume.split(":")[0]).is_file(), volume
    assert (DEPLOY / edge["build"] / "Dockerfile").is_file()
    for name, address in nodes.nodes.items():
        node = services[name]
        assert f"{_ip(node)}:5060" == address
        assert (DEPLOY / node["build"]["context"] / node["build"]["dockerfile"]).is_file()
    assert services["redis"]["image"].startswith("redis:")
    assert services["postgres"]["image"].startswith("postgres:")


def test_each_compose_node_s_environment_loads_as_its_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The CALLSERVER_* variables of each node give valid settings: its name, Redis,
    PostgreSQL, the edge's address with only on, its own listen address and RTP range."""
    monkeypatch.chdir(ROOT)
    services = _compose()["services"]
    ranges = []
    for name in ("node-a", "node-b"):
        for variable in [v for v in os.environ if v.startswith("CALLSERVER_")]:
            monkeypatch.delenv(variable)
        for key, value in services[name]["environment"].items():
            monkeypatch.setenv(key, re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", str(value)))
        settings = load_settings(ROOT / "config" / "callserver.yaml")
        cluster = settings.cluster
        assert (cluster.node, cluster.edge.addresses, cluster.edge.only) == (
            name,
            ["172.28.0.10"],
            True,
        )
        assert cluster.redis and cluster.postgres
        assert settings.sip.listen[0].host == _ip(services[name])
        ranges.append((settings.media.rtp_port_min, settings.media.rtp_port_max))
    assert ranges[0][1] < ranges[1][0]


def _unit(path: Path) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep case
    unit.read_string(path.read_text())
    return unit


def test_the_node_template_is_hardened_as_the_single_server_unit() -> None:
    """callserver@.service names the node and its data dir by the instance, and keeps every
    [Service] setting of callserver.service but those."""
    single = _unit(DEPLOY / "callserver.service")["Service"]
    node = _unit(DEPLOY / "callserver@.service")["Service"]
    assert node["Environment"].split() == [
        "CALLSERVER_DATA_DIR=/var/lib/callserver/%i",
        "CALLSERVER_CLUSTER__NODE=%i",
    ]
    assert "%i" in node["ExecStart"] and node["StateDirectory"] == "callserver/%i"
    differ = {"Environment", "ExecStart", "StateDirectory", "ReadWritePaths"}
    assert {k: v for k, v in single.items() if k not in differ} == {
        k: v for k, v in node.items() if k not in differ
    }


def test_systemd_analyze_verifies_a_node_instance(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say about callserver@node-a.service (its
    ExecStart pointed at this checkout's ``callserver``)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: run 'sudo apt-get install systemd'"
    executable = ROOT / ".venv" / "bin" / "callserver"
    text = (DEPLOY / "callserver@.service").read_text()
    unit = tmp_path / "callserver@node-a.service"
    unit.write_text(text.replace("/opt/callserver/.venv/bin/callserver", str(executable)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
