"""callserver.admin.central_metrics: the feeder's figures as Prometheus families."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callserver.admin.central_metrics import CentralCdrCollector
from callserver.cdr.feeder import CHECKPOINT, CdrFeeder

ROOT = Path(__file__).resolve().parents[2]


def _feeder(tmp_path: Path) -> CdrFeeder:
    """A feeder that has not run: nothing delivered, nothing known to wait, not up."""
    dsn = "postgresql://callserver@127.0.0.1:1/callserver"
    return CdrFeeder(tmp_path / "cdr", dsn, "node-a", checkpoint=tmp_path / CHECKPOINT)


async def test_the_feeders_figures_are_scraped_as_they_are(tmp_path: Path) -> None:
    """Every family comes out with the feeder's value: down and nothing counted yet."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(CentralCdrCollector(_feeder(tmp_path)))
    text = generate_latest(registry).decode()
    samples = {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    assert samples == {
        "callserver_cdr_central_up": 0.0,
        "callserver_cdr_central_backlog_records": 0.0,
        "callserver_cdr_central_backlog_bytes": 0.0,
        "callserver_cdr_central_lag_seconds": 0.0,
        "callserver_cdr_central_delivered_total": 0.0,
        "callserver_cdr_central_duplicates_total": 0.0,
        "callserver_cdr_central_malformed_total": 0.0,
        "callserver_cdr_central_failures_total": 0.0,
    }


async def test_every_central_metric_is_in_the_operations_guide(tmp_path: Path) -> None:
    """Each callserver_cdr_central_* family has a row in docs/operations.md Metrics."""
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    missing = [
        family.name
        for family in CentralCdrCollector(_feeder(tmp_path)).collect()
        if not any(f"`{family.name}{suffix}`" in section for suffix in ("", "_total"))
    ]
    assert missing == []
