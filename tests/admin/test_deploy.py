"""deploy/: the dashboard's queries, the systemd unit and the Dockerfile's health check."""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from callserver.admin.metrics import ServerCollector, server_registry
from callserver.config.settings import CallsSettings
from tests.admin.in_process import PLANS, in_process_server

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
# Metric names in PromQL: ours and prometheus-client's process and platform collectors'.
NAME = re.compile(r"\b(?:callserver|process|python)_[a-z0-9_]+\b")
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
}


def _exprs(node: object) -> Iterator[str]:
    """Every ``expr`` string anywhere in the dashboard's JSON."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from _exprs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _exprs(item)


async def test_every_metric_the_dashboard_queries_is_exposed(tmp_path: Path) -> None:
    """Each metric name in the Grafana dashboard's queries is one the server's registry has."""
    server, _ = in_process_server(tmp_path, PLANS)
    exposed = {
        name
        for family in server_registry(server).collect()
        for name in (family.name, *(sample.name for sample in family.samples))
    }
    exposed |= {f"{f.name}_total" for f in server_registry(server).collect() if f.type == "counter"}
    dashboard = json.loads((DEPLOY / "grafana" / "callserver-dashboard.json").read_text())
    queried = {name for expr in _exprs(dashboard) for name in NAME.findall(expr)}
    assert len(queried) >= 10
    assert queried - exposed == set()


def test_the_prometheus_example_scrapes_one_node_on_the_admin_address() -> None:
    """deploy/prometheus.yml scrapes /metrics of 127.0.0.1:8080, the admin server's default."""
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] == "/metrics"
    assert [s["targets"] for s in job["static_configs"]] == [["127.0.0.1:8080"]]


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys keep case
    unit.read_string((DEPLOY / "callserver.service").read_text())
    return unit


def test_the_unit_runs_unprivileged_hardened_and_drains_on_stop() -> None:
    """The unit's keys: a non-root user, the hardening options, SIGHUP reload, a long stop."""
    service = _unit()["Service"]
    assert service["User"] == "callserver"
    assert {key: service[key] for key in HARDENING} == HARDENING
    assert "/var/lib/callserver" in service["ReadWritePaths"].split()
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"
    drain = CallsSettings().drain_timeout
    assert float(service["TimeoutStopSec"]) > drain


def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """``systemd-analyze verify`` finds nothing to say about the unit (its ExecStart pointed
    at this checkout's ``callserver``, which it checks is executable)."""
    analyze = shutil.which("systemd-analyze")
    assert analyze is not None, "systemd-analyze is missing: run 'sudo apt-get install systemd'"
    executable = ROOT / ".venv" / "bin" / "callserver"
    text = (DEPLOY / "callserver.service").read_text()
    unit = tmp_path / "callserver.service"
    unit.write_text(text.replace("/opt/callserver/.venv/bin/callserver", str(executable)))
    done = subprocess.run(
        [analyze, "verify", "--man=no", str(unit)], capture_output=True, text=True, check=False
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


def test_the_docker_health_check_asks_the_admin_servers_healthz() -> None:
    """The Dockerfile's HEALTHCHECK fetches /healthz on the admin server's default address."""
    instructions = (ROOT / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    [check] = [line for line in instructions if line.startswith("HEALTHCHECK ")]
    assert "http://127.0.0.1:8080/healthz" in check


async def test_every_server_metric_is_in_the_operations_guide(tmp_path: Path) -> None:
    """Each callserver_* family the collector yields has a row in docs/operations.md Metrics."""
    server, _ = in_process_server(tmp_path, PLANS)
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    missing = [
        family.name
        for family in ServerCollector(server).collect()
        if not any(f"`{family.name}{suffix}`" in section for suffix in ("", "_total", "_info"))
    ]
    assert missing == []
