"""The Prometheus metrics of a running server, read from its state at scrape time.

``server_registry`` gives the registry the admin server's ``GET /metrics`` serves
(``prometheus_client.generate_latest``): prometheus-client's process, GC and platform
collectors and :class:`ServerCollector`, whose ``collect`` builds every ``callserver_*``
family from what the server holds when it is asked (calls, channel pools, the statistics of
admission, overload control, the media engine, the CDR spool and ingester, the registrar, the
call centre, the dialplans). Nothing on the call or media path updates a metric object: the
counters are the server's own statistics, read here. A scrape runs on the event loop, reads
plain attributes and takes no lock and does no I/O. Labels are bounded: trunks, customers,
groups, queues, number classes and dialplan numbers are configuration, reasons are the
server's own words; no call id or caller number is a label.

docs/operations.md "Metrics" lists every family.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Protocol

from prometheus_client import (
    CollectorRegistry,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from callserver.admin.central_metrics import CentralCdrCollector
from callserver.admin.cluster_metrics import ClusterCollector
from callserver.admin.metric_sources import (
    REJECTIONS,
    bindings_per_customer,
    calls_in_progress,
    ingest_lag,
)
from callserver.admin.pools import channel_pools

__all__ = [
    "REJECTIONS",
    "GcPauseCollector",
    "OffLoop",
    "Server",
    "ServerCollector",
    "server_registry",
]

if TYPE_CHECKING:
    from callserver.calls.admission import Admission
    from callserver.calls.manager import CallManager
    from callserver.calls.reporting import CdrReporter
    from callserver.cdr.ingester import CdrIngester
    from callserver.cdr.spool import CdrSpool
    from callserver.cluster.cdrs import CentralCdrStore
    from callserver.cluster.edge import EdgeSources
    from callserver.cluster.limits import SharedLimits
    from callserver.cluster.link import RedisLink
    from callserver.config.tariffs import Tariffs
    from callserver.dialplan.routing import Routing
    from callserver.media.engine import MediaEngine
    from callserver.phone_services import PhoneServices
    from callserver.policy.overload import OverloadControl
    from callserver.process.gcpauses import GcPauses
    from callserver.sip.endpoint import SipEndpoint


class Server(Protocol):
    """What the metrics read of a ``callserver.app.Server``."""

    @property
    def calls(self) -> CallManager: ...
    @property
    def admission(self) -> Admission: ...
    @property
    def tariffs(self) -> Tariffs: ...
    @property
    def reporter(self) -> CdrReporter: ...
    @property
    def overload(self) -> OverloadControl: ...
    @property
    def media(self) -> MediaEngine: ...
    @property
    def cdr(self) -> CdrSpool | None: ...
    @property
    def ingester(self) -> CdrIngester: ...
    @property
    def routing(self) -> Routing: ...
    @property
    def phones(self) -> PhoneServices: ...
    @property
    def gc_pauses(self) -> GcPauses: ...
    @property
    def central(self) -> CentralCdrStore | None: ...
    @property
    def endpoint(self) -> SipEndpoint: ...
    @property
    def edge(self) -> EdgeSources | None: ...
    @property
    def link(self) -> RedisLink | None: ...
    @property
    def shared_limits(self) -> SharedLimits | None: ...


def server_registry(server: Server) -> CollectorRegistry:
    """A registry of ``server``'s metrics with the process, GC and platform collectors."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(OffLoop(ProcessCollector(registry=None)))
    GCCollector(registry=registry)
    PlatformCollector(registry=registry)
    registry.register(ServerCollector(server))
    registry.register(GcPauseCollector(server.gc_pauses))
    if server.central is not None:  # cluster.postgres: the feeder of the central CDR store
        registry.register(CentralCdrCollector(server.central.feeder))
    if server.link is not None and server.shared_limits is not None:
        registry.register(ClusterCollector(server.link, server.shared_limits))
    return registry


class GcPauseCollector(Collector):
    """``callserver_gc_pause_seconds``: the collector's pauses by generation (``GcPauses``)."""

    def __init__(self, pauses: GcPauses) -> None:
        self.pauses = pauses

    def collect(self) -> Iterator[Metric]:
        """A histogram of each generation's pauses since the server started."""
        family = HistogramMetricFamily(
            "callserver_gc_pause_seconds",
            "garbage-collector passes, by how long they held the process",
            labels=["generation"],
        )
        for generation in range(len(self.pauses.generations)):
            buckets, total = self.pauses.histogram(generation)
            family.add_metric([str(generation)], buckets, total)
        yield family


class OffLoop(Collector):
    """``collector``'s families as a worker thread last read them: a scrape returns those and
    starts the next read. The process collector reads /proc, and counting the open file
    descriptors lists one entry per RTP socket: milliseconds the event loop does not wait
    for. The first families are read at once, when the registry is made."""

    def __init__(self, collector: Collector) -> None:
        self._collector = collector
        self._families = list(collector.collect())
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="metrics")
        self._reading: Future[None] | None = None

    def collect(self) -> Iterator[Metric]:
        """The families of the last read; the next read starts unless one is under way."""
        families = self._families
        if self._reading is None or self._reading.done():
            self._reading = self._worker.submit(self._read)
        return iter(families)

    def _read(self) -> None:
        self._families = list(self._collector.collect())


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


def _counter(name: str, doc: str, labels: list[str]) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, labels=labels)


class ServerCollector(Collector):
    """Builds the ``callserver_*`` families from ``server`` at each scrape."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        """Every family, read now."""
        yield from self._calls()
        yield from self._channels()
        yield from self._admission()
        yield from self._sip()
        yield from self._registrations()
        yield from self._mirrors()
        yield from self._queues()
        yield from self._media()
        yield from self._cdr()
        yield from self._dialplans()

    def _calls(self) -> Iterator[Metric]:
        server = self.server
        progress = _gauge(
            "callserver_calls_in_progress",
            "Calls in progress.",
            ["trunk", "customer", "number_class", "direction"],
        )
        for labels, count in sorted(calls_in_progress(server.calls.calls, server.tariffs).items()):
            progress.add_metric(list(labels), count)
        yield progress
        ended = server.reporter.ended_by_reason
        attempts = sum(n for (leg, _), n in ended.items() if leg == "a")
        yield CounterMetricFamily(
            "callserver_call_attempts",
            "Inbound calls offered: ended (refused included) plus in progress.",
            value=attempts + len(server.calls.calls),
        )
        legs = _counter("callserver_call_legs_ended", "Call legs ended.", ["leg", "reason"])
        rejections = _counter(
            "callserver_call_rejections", "Inbound calls refused, by reason.", ["reason"]
        )
        for (leg, reason), count in sorted(ended.items()):
            legs.add_metric([leg, reason], count)
            if leg == "a" and reason in REJECTIONS:
                rejections.add_metric([reason], count)
        yield legs
        yield rejections

    def _channels(self) -> Iterator[Metric]:
        in_use = _gauge("callserver_channels_in_use", "Channels held per pool.", ["kind", "pool"])
        bought = _gauge("callserver_channels_bought", "Channel limit per pool.", ["kind", "pool"])
        here = _gauge(
            "callserver_channels_in_use_here",
            "Channels this node holds per pool (a cluster's node).",
            ["kind", "pool"],
        )
        for pool in channel_pools(self.server.admission):
            in_use.add_metric([pool.kind, pool.name], pool.in_use)
            if pool.channels is not None:
                bought.add_metric([pool.kind, pool.name], pool.channels)
            if pool.here is not None:
                here.add_metric([pool.kind, pool.name], pool.here)
        yield in_use
        yield bought
        yield here

    def _admission(self) -> Iterator[Metric]:
        admission, server = self.server.admission, self.server
        channels = admission.channels.statistics()
        yield _by_key(
            "callserver_channel_refusals", "Calls over a channel limit.", "kind", channels.refused
        )
        rates = admission.rates.statistics()
        yield _by_key("callserver_cps_refusals", "Calls over a call rate.", "kind", rates.refused)
        overload = server.overload.statistics()
        yield _by_key(
            "callserver_overload_refusals",
            "INVITEs refused by overload control.",
            "reason",
            overload.by_reason,
        )
        yield CounterMetricFamily(
            "callserver_overload_episodes", "Overload episodes.", value=overload.episodes
        )
        yield GaugeMetricFamily(
            "callserver_overload_shedding",
            "1 while overload control refuses new calls.",
            value=int(overload.shedding),
        )
        lockout = admission.auth.lockout.statistics()
        yield CounterMetricFamily(
            "callserver_auth_failures", "Digest authentications failed.", value=lockout.failures
        )
        yield _by_key(
            "callserver_auth_lockout_refusals",
            "Requests refused in a password-guessing penalty.",
            "scope",
            lockout.refused,
        )

    def _sip(self) -> Iterator[Metric]:
        server = self.server
        dropped = {"unanswerable": server.endpoint.statistics().messages_dropped}
        refused: dict[str, int] = {}
        if server.edge is not None:
            edge = server.edge.statistics()
            dropped.update(edge.dropped)
            refused = edge.refused
        yield _by_key(
            "callserver_sip_dropped",
            "SIP requests dropped unanswered: unanswerable, or not from the edge (edge.only).",
            "reason",
            dropped,
        )
        yield _by_key(
            "callserver_sip_edge_refusals",
            "Requests from the SIP edge answered 400: no valid source header.",
            "reason",
            refused,
        )

    def _registrations(self) -> Iterator[Metric]:
        family = _gauge("callserver_registrations", "Registered bindings.", ["customer"])
        registration = self.server.calls.registration
        if registration is not None:
            counts = registration.registrar.binding_counts()
            centrex = self.server.admission.centrex
            for customer, count in sorted(bindings_per_customer(counts, centrex).items()):
                family.add_metric([customer], count)
        yield family

    def _mirrors(self) -> Iterator[Metric]:
        """What the cluster's shared mirrors did (bindings, settings); empty on a single node."""
        labels = ["kind"]
        up = _gauge("callserver_cluster_mirror_up", "1 while changes flow.", labels)
        received = _counter(
            "callserver_cluster_changes_received", "Changes of other nodes applied.", labels
        )
        written = _counter("callserver_cluster_changes_written", "Own changes written.", labels)
        unsent = _gauge("callserver_cluster_changes_unsent", "Own changes not written.", labels)
        resyncs = _counter("callserver_cluster_mirror_resyncs", "Re-reads after an outage.", labels)
        shared = self.server.phones.shared
        for stats in [] if shared is None else shared.statistics():
            up.add_metric([stats.kind], int(stats.up))
            received.add_metric([stats.kind], stats.received)
            written.add_metric([stats.kind], stats.written)
            unsent.add_metric([stats.kind], stats.unsent)
            resyncs.add_metric([stats.kind], stats.resyncs)
        yield from (up, received, written, unsent, resyncs)

    def _queues(self) -> Iterator[Metric]:
        centre = self.server.phones.centre.centre
        waiting = _gauge("callserver_queue_waiting", "Callers in a queue.", ["customer", "queue"])
        for (customer, queue), count in sorted(centre.waiting_counts().items()):
            waiting.add_metric([customer, queue], count)
        yield waiting
        states: dict[tuple[str, str], int] = {}
        for agent in centre.agents:
            key = (agent.customer, agent.state.value)
            states[key] = states.get(key, 0) + 1
        agents = _gauge("callserver_queue_agents", "Agents by state.", ["customer", "state"])
        for (customer, state), count in sorted(states.items()):
            agents.add_metric([customer, state], count)
        yield agents

    def _media(self) -> Iterator[Metric]:
        stats = self.server.media.statistics()
        clock = stats.clock
        yield GaugeMetricFamily(
            "callserver_media_streams", "RTP streams open.", value=stats.streams
        )
        yield GaugeMetricFamily(
            "callserver_media_ports_in_use", "RTP port pairs in use.", value=stats.ports_in_use
        )
        yield CounterMetricFamily(
            "callserver_rtp_packets_sent", "RTP packets sent.", value=stats.packets_sent
        )
        yield CounterMetricFamily(
            "callserver_rtp_packets_received", "RTP packets received.", value=stats.packets_received
        )
        yield _by_key(
            "callserver_rtp_packets_dropped", "RTP packets dropped.", "reason", stats.drops
        )
        yield CounterMetricFamily(
            "callserver_rtp_packets_lost",
            "RTP packets expected from the sources and never received.",
            value=stats.packets_lost,
        )
        jitter = _gauge("callserver_rtp_jitter_seconds", "Jitter of open streams.", ["quantile"])
        jitter.add_metric(["0.5"], stats.jitter_p50)
        jitter.add_metric(["0.99"], stats.jitter_p99)
        yield jitter
        tick = _gauge("callserver_media_tick_seconds", "Media tick duration.", ["quantile"])
        late = _gauge("callserver_media_lateness_seconds", "Media tick lateness.", ["quantile"])
        for quantile, duration, lateness in (
            ("0.5", clock.tick_p50, clock.lateness_p50),
            ("0.99", clock.tick_p99, clock.lateness_p99),
        ):
            tick.add_metric([quantile], duration)
            late.add_metric([quantile], lateness)
        yield tick
        yield late
        calls = self.server.calls
        yield CounterMetricFamily(
            "callserver_rtp_timeouts", "Calls whose RTP stopped.", value=calls.rtp_timeouts
        )
        yield _by_key("callserver_dtmf_digits", "DTMF digits.", "source", calls.dtmf_by_source)

    def _cdr(self) -> Iterator[Metric]:
        server = self.server
        backlog = 0
        if server.cdr is not None:
            spool = server.cdr.statistics()
            backlog = spool.queued + spool.journal_backlog + spool.retry_pending
        yield GaugeMetricFamily(
            "callserver_cdr_spool_backlog", "CDRs not yet written to the spool.", value=backlog
        )
        lag = ingest_lag(server.ingester.last_success, _loop_time())
        lag_family = GaugeMetricFamily(
            "callserver_cdr_ingest_lag_seconds",
            "Seconds since the last CDR ingest into cdr.sqlite succeeded.",
            labels=[],
        )
        if lag is not None:
            lag_family.add_metric([], lag)
        yield lag_family
        ingester = server.ingester.statistics()
        yield CounterMetricFamily(
            "callserver_cdr_ingest_failures", "CDR ingest runs failed.", value=ingester.failures
        )

    def _dialplans(self) -> Iterator[Metric]:
        dialplans = self.server.routing.dialplans
        yield CounterMetricFamily(
            "callserver_dialplan_reloads", "Dialplan sets loaded.", value=dialplans.reloads
        )
        info = InfoMetricFamily(
            "callserver_dialplan", "The dialplan version in force per number.", labels=["number"]
        )
        for number, plan in sorted(dialplans.plans.plans.items()):
            info.add_metric([number], {"version": plan.version})
        yield info


def _loop_time() -> float | None:
    """The running loop's time (the ingester's clock); None outside a loop."""
    try:
        return asyncio.get_running_loop().time()
    except RuntimeError:
        return None


def _by_key(name: str, doc: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = _counter(name, doc, [label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family
