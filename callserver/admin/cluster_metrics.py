"""The metrics of a node's shared limits (``cluster.redis`` set), read at scrape time.

``callserver_cluster_redis_up`` and the times Redis was lost come from the node's link; new
calls checked across the nodes, by who decided (Redis, or the local view while Redis was
unreachable) and the outcome; the round trips of those checks as a histogram; the rewrites
after an outage and the leases found gone. Registered by ``admin.metrics.server_registry`` only
on a node with ``cluster.redis``; docs/operations.md "Metrics" lists them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from callserver.cluster.channels import ACQUIRE_BUCKETS

if TYPE_CHECKING:
    from callserver.cluster.limits import SharedLimits
    from callserver.cluster.link import RedisLink

__all__ = ["ClusterCollector"]


class ClusterCollector(Collector):
    """The ``callserver_cluster_*`` families of ``link`` and ``shared``."""

    def __init__(self, link: RedisLink, shared: SharedLimits) -> None:
        self.link = link
        self.shared = shared

    def collect(self) -> Iterator[Metric]:
        """Every family, read now."""
        link = self.link.statistics()
        yield GaugeMetricFamily(
            "callserver_cluster_redis_up", "1 while Redis (cluster.redis) answers.", value=link.up
        )
        yield CounterMetricFamily(
            "callserver_cluster_redis_downs", "Times Redis was lost.", value=link.downs
        )
        stats = self.shared.channels.statistics()
        admissions = CounterMetricFamily(
            "callserver_cluster_admissions",
            "New calls checked against every node's channels and the trunk's shared rate.",
            labels=["decided_by", "outcome"],
        )
        admissions.add_metric(["redis", "admitted"], stats.admitted)
        admissions.add_metric(["redis", "refused"], stats.refused)
        for outcome, count in sorted(stats.local.items()):
            admissions.add_metric(["local", outcome], count)
        yield admissions
        bounds = [*(repr(bound) for bound in ACQUIRE_BUCKETS), "+Inf"]
        yield HistogramMetricFamily(
            "callserver_cluster_acquire_seconds",
            "Round trips of the shared check of a new call (answered by Redis).",
            buckets=list(zip(bounds, stats.round_trips, strict=True)),
            sum_value=stats.round_trip_sum,
        )
        yield CounterMetricFamily(
            "callserver_cluster_channel_restores",
            "Rewrites of this node's channels in Redis after it was lost or restarted empty.",
            value=stats.restores,
        )
        yield CounterMetricFamily(
            "callserver_cluster_lease_lost",
            "Lease renewals that found this node's lease gone.",
            value=self.shared.lease.lost,
        )
