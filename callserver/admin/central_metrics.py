"""The metrics of the central CDR store's feeder (``cluster.postgres``), read at scrape time.

``CentralCdrCollector`` builds the ``callserver_cdr_central_*`` families from
``CdrFeeder.statistics()`` when it is asked, as ``admin.metrics`` does for the rest of the
server: nothing on the feeder's path updates a metric object, and a scrape does no I/O (the
backlog is the one the feeder counted at its last look at the spool, once a second). It is
registered only on a node with ``cluster.postgres``. docs/operations.md "Metrics" lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from callserver.cdr.feeder import FeederStatistics

__all__ = ["CentralCdrCollector", "FeederView"]


class FeederView(Protocol):
    """What the collector reads of the feeder."""

    def statistics(self) -> FeederStatistics:
        """A snapshot of its figures."""


class CentralCdrCollector(Collector):
    """The feeder's families (see the module docstring)."""

    def __init__(self, feeder: FeederView) -> None:
        self.feeder = feeder

    def collect(self) -> Iterator[Metric]:
        """Every family, read now."""
        stats = self.feeder.statistics()
        for name, doc, value in (
            ("up", "1 while the central CDR store (PostgreSQL) answers the feeder.", stats.up),
            ("backlog_records", "Spooled CDRs not yet in PostgreSQL.", stats.backlog_records),
            ("backlog_bytes", "Bytes of those CDRs.", stats.backlog_bytes),
            ("lag_seconds", "How long the oldest of them has waited.", stats.lag_seconds),
        ):
            yield GaugeMetricFamily(f"callserver_cdr_central_{name}", doc, value=float(value))
        for name, doc, count in (
            ("delivered", "CDRs the feeder added to PostgreSQL.", stats.delivered),
            ("duplicates", "CDRs sent again and ignored (already there).", stats.duplicates),
            ("malformed", "Spool lines skipped: no record.", stats.malformed),
            ("failures", "Delivery attempts that failed.", stats.failures),
        ):
            yield CounterMetricFamily(f"callserver_cdr_central_{name}", doc, value=count)
