"""A node with ``cluster.edge`` settings, SIPp talking to it directly: SIPp plays the edge
from the edge's address (its port) and plays a caller from any other port.

The trunk ``behind-edge`` matches only an address no SIPp sends from: a caller is taken for
it only when the edge names that address in ``X-Callserver-Source``.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    free_port,
    run_sipp,
    start_server,
    stopped_on_exit,
)

SCENARIOS = Path(__file__).parent / "scenarios"


def _node(tmp_path: Path, *, only: bool) -> tuple[ServerProcess, int, int]:
    """The node, the port SIPp plays the edge from, the trunk's (the caller behind the edge)."""
    edge, trunk = free_port(both=False), free_port(both=False)
    trunks = {"trunks": {"behind-edge": {"match": [f"{HOST}:{trunk}"]}}}
    cluster = {"node": "a", "edge": {"addresses": [f"{HOST}:{edge}"], "only": only}}
    return start_server(tmp_path, trunks=trunks, cluster=cluster), edge, trunk


def _sipp(
    sipp: str, tmp_path: Path, node: ServerProcess, scenario: str, source: str, port: int
) -> None:
    """One call of ``scenario`` from ``port`` with the INVITE line ``source``; it succeeds."""
    result = run_sipp(
        sipp,
        tmp_path,
        node.port,
        *("-sf", str(SCENARIOS / scenario), "-m", "1", "-key", "source", source, "-d", "200"),
        timeout=20,
        local_port=port,
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(node.raw[-30:])


def test_a_forged_source_header_is_not_believed_and_the_edge_is(sipp: str, tmp_path: Path) -> None:
    """From beside the edge, a header naming the trunk's address is ignored (403, unknown
    source); from the edge the same header identifies the trunk; from the edge without it the
    INVITE gets 400."""
    node, edge, trunk = _node(tmp_path, only=False)
    header = f"X-Callserver-Source: {HOST}:{trunk}"
    with stopped_on_exit(node):
        _sipp(sipp, tmp_path, node, "uac-source-header-expect-403.xml", header, free_port())
        _sipp(sipp, tmp_path, node, "uac-source-header-answered-then-bye.xml", header, edge)
        _sipp(sipp, tmp_path, node, "uac-source-header-expect-400.xml", "Subject: none", edge)
        forged = f"X-Callserver-Source: {HOST}:{edge}, {HOST}:{trunk}"  # no address: 400 too
        _sipp(sipp, tmp_path, node, "uac-source-header-expect-400.xml", forged, edge)
        assert node.wait_for("edge.source_refused")["reason"] == "no_source_header"
    cdrs = exported_cdrs(node.data_dir)
    records = sorted((r["end_reason"], r["sip_code"], r["trunk"] or "") for r in cdrs)
    assert records == [("normal", 200, "behind-edge"), ("unauthorized", 403, "")], records


def test_under_only_a_caller_beside_the_edge_gets_no_answer_and_is_counted(
    sipp: str, tmp_path: Path
) -> None:
    """With edge.only, an INVITE from beside the edge (its header forged) is answered with
    nothing at all, not even 100 Trying, and /metrics counts it; the edge's call goes on."""
    node, edge, trunk = _node(tmp_path, only=True)
    header = f"X-Callserver-Source: {HOST}:{trunk}"
    with stopped_on_exit(node):
        _sipp(sipp, tmp_path, node, "uac-source-header-expect-no-answer.xml", header, free_port())
        _sipp(sipp, tmp_path, node, "uac-source-header-answered-then-bye.xml", header, edge)
        dropped = _scraped(node, "callserver_sip_dropped_total", "not_from_edge")
    assert dropped >= 1  # the INVITE and its retransmissions, each forgotten unanswered
    records = [(r["end_reason"], r["trunk"]) for r in exported_cdrs(node.data_dir)]
    assert records == [("normal", "behind-edge")], records


def _scraped(node: ServerProcess, name: str, reason: str) -> float:
    """The value of the ``name`` sample with ``reason`` in the node's /metrics."""
    port = node.wait_for("admin.listening")["port"]
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and sample.labels.get("reason") == reason
    )
