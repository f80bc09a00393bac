"""Wiring: settings -> transports -> SIP endpoint -> calls <- media engine, plus signals.

The ``Server`` is the asyncio adapter around the sans-IO endpoint (aioquic's
pattern): after every datagram, stream chunk or timer it drains the endpoint's output and
events, then re-arms one ``loop.call_at`` only when the earliest deadline changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import structlog

from callserver.admin.metrics import server_registry
from callserver.admin.server import AdminServer, open_admin
from callserver.calls.admission import Admission
from callserver.calls.manager import CallManager
from callserver.calls.originating import Outbound
from callserver.calls.reporting import CdrReporter
from callserver.campaigns.runner import server_runner
from callserver.cdr.ingester import CdrIngester
from callserver.cdr.purging import RetentionTask
from callserver.cdr.spool import CdrSpool
from callserver.cluster.cdrs import CentralCdrStore, open_central_cdrs
from callserver.cluster.edge import open_edge
from callserver.cluster.lease import Holder
from callserver.cluster.limits import SharedLimits, open_shared_limits
from callserver.cluster.link import RedisLink
from callserver.cluster.phone_state import SharedPhoneState
from callserver.config.centrex import load_customers
from callserver.config.errors import OperatorFileError
from callserver.config.settings import (
    DEFAULT_CONFIG,
    Settings,
    endpoint_config,
    keep_startup_values,
    load_settings,
)
from callserver.config.tariffs import load_tariffs
from callserver.dialplan.routing import Routing, plan_numbers
from callserver.dialplan.verbs.queue import centrex_agents
from callserver.media.engine import MediaEngine
from callserver.media.events import MediaEvent
from callserver.media.hold_music import music_in_force, reload_music
from callserver.media.prompt_cache import warm_prompts, warm_prompts_in_slices
from callserver.media.prompts import PromptStore
from callserver.phone_services import PhoneServices
from callserver.policy.overload import EpisodeStarted, OverloadControl
from callserver.process.alarm import Alarm
from callserver.process.gcpauses import GcPauses
from callserver.process.gctuning import FullCollections, tune_gc
from callserver.process.pacing import Background, spare_share
from callserver.queues.eventlog import EVENTS_DIR, QueueEventLog
from callserver.sip.endpoint import SipEndpoint
from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import CloseConnection, Peer, RequestReceived, SipEvent, Transmit
from callserver.transport.listening import advertised, resolver_for
from callserver.transport.sockets import SipSockets

__all__ = ["Server"]

log = structlog.get_logger("callserver.app")


class Server:
    """One callserver process: its sockets, its endpoint, its calls."""

    def __init__(
        self,
        settings: Settings,
        config_path: Path | None = None,
        overrides: dict[str, Any] | None = None,
    ) -> None:
        """Wire a server for ``settings``; ``overrides`` (the flags) also win on reload."""
        self.settings = settings
        self.config_path = config_path
        self.overrides = overrides or {}
        self._loop = asyncio.get_running_loop()
        self.sockets = SipSockets()
        self._alarm = Alarm(self._loop, self._on_timer)  # the endpoint's next deadline
        self.collections = FullCollections(self._loop)  # the scheduled full GC passes
        self.gc_pauses = GcPauses()  # every pass timed, for /metrics
        self._stopped = asyncio.Event()
        first = settings.sip.listen[0]
        reached_at = advertised(settings.sip.advertised_address, first)
        self.endpoint = SipEndpoint(endpoint_config(settings, reached_at, first.port))
        self.media = MediaEngine(settings.media, bind_host=first.host, sink=self._on_media)
        self.prompts = PromptStore(settings.media.prompts_dir, self._language_chain)
        trunks, self.centrex = load_customers(
            settings.trunks, settings.centrex, plan_numbers(settings.dialplans)
        )
        self.admission = Admission(trunks, self.centrex)  # the groups and phones in force
        self.tariffs = load_tariffs(settings.tariffs)
        self.cdr: CdrSpool | None = None  # opened by start(): it writes to the data dir
        self.queue_events: QueueEventLog | None = None  # the queues' event log, as the CDRs
        self.ingester = CdrIngester(
            settings.data_dir,
            settings.cdr.ingest_interval,
            log_level=settings.log_level,
            log_format=settings.log_format,
        )
        self.central: CentralCdrStore | None = None  # cluster.postgres: CDRs shipped there
        self.reporter = CdrReporter(self.tariffs, self._loop.time)
        self.retention = RetentionTask(
            settings.data_dir, self._retention_days, share=self._spare_share
        )
        self.calls = CallManager(
            self.endpoint,
            settings,
            media_host=reached_at,
            media=self.media,
            prompts=self.prompts,
            admission=self.admission,
            tariffs=self.tariffs,
            reporter=self.reporter,
            loop=self._loop,
            wake=self.pump,
        )
        self.phones = PhoneServices(
            settings=lambda: self.settings,
            centrex=lambda: self.centrex,
            calls=self.calls,
            endpoint=self.endpoint,
            admission=self.admission,
            loop=self._loop,
            wake=self.pump,
        )
        self.admission.auth.accounts = self.phones.account  # INVITEs, as their REGISTERs
        self.edge = open_edge(settings.cluster.edge, self.endpoint)  # None: no SIP edge
        self.calls.screening.edge = self.edge
        outbound = Outbound(  # customers' numbers hold their Centrex blocks (load_customers)
            lambda n: self.admission.table.own_number(n),
            lambda: self.settings.calls.outbound_ring_timeout,
        )
        self.routing = Routing(
            phones=self.phones.book.route,
            outbound=outbound.route,
            codes=self.phones.codes(),
            dialplans=settings.dialplans,
            blacklist=settings.blacklist,
            prompts=self.prompts,
            tariffs=self.tariffs,
            default_language=settings.media.default_language,
            routes=lambda: self.admission.table.config.routes.keys(),
            agents=centrex_agents(lambda: self.centrex),
            share=self._spare_share,
        )
        self.overload = OverloadControl(
            settings.overload,
            receive_backlog=self.sockets.receive_backlog,
            loop_load=self.media.loop_load,
            clock_lag=self.media.clock_lag,
            in_setup=lambda: self.endpoint.uas.invites_in_setup,
            free_ports=self.media.free_ports,
        )
        self.endpoint.gate = self.overload.admit
        self._overload_timer: asyncio.TimerHandle | None = None
        self.calls.host.router = self.routing.route
        plans = self.calls.forwarder.transfers.plans  # a transfer into a plan of ours
        plans.hosts = lambda number: self.routing.dialplans.plans.own_plan(number) is not None
        plans.router = self.routing.route
        self.calls.forwarder.resolver = resolver_for(
            settings.sip.listen, settings.dns, self._loop.time
        )
        self.calls.screening.blacklist = lambda: self.routing.blacklist
        self.calls.originated.router = self.routing.route  # a campaign's answered calls
        originate = self.calls.originated.place
        self.campaigns = server_runner(
            settings.data_dir, self.admission, lambda: self.settings.dialplans, originate
        )
        self._watching = asyncio.Event()  # set: stop watching the dialplans directory
        self._watch: asyncio.Task[None] | None = None
        self.background = Background()  # reloads in progress: dialplans, prompts
        self.admin: AdminServer | None = None  # the admin API (``admin.listen``), once started
        cluster = settings.cluster  # several nodes: what they share goes through Redis
        self.link = None if cluster.redis is None else RedisLink(cluster.redis)
        self.holder = Holder.new(cluster.node)  # this process among the nodes
        self.shared: SharedPhoneState | None = None  # bindings, settings: start()
        self.shared_limits: SharedLimits | None = None  # channels and call rates: start()

    async def start(self, on_ready: Callable[[], None] | None = None) -> None:
        """Open every listening socket; fixes the endpoint's port when it listened on port 0.
        ``on_ready`` (the pid file) runs before ``server.listening`` is logged, so whoever
        waits for that line finds it done."""
        await self._open_cluster_limits()  # before the first INVITE can arrive
        sip = self.settings.sip
        await self.sockets.open(
            sip.listen,
            self,
            idle_timeout=sip.tcp_idle_timeout,
            max_connections=sip.tcp_max_connections,
        )
        first = sip.listen[0]
        self.endpoint.config = endpoint_config(
            self.settings, advertised(sip.advertised_address, first), self.sockets.first_port
        )
        await self.media.start()
        self.cdr = self.reporter.sink = CdrSpool(self.settings.data_dir / "cdr")
        self.queue_events = QueueEventLog(self.settings.data_dir / EVENTS_DIR)
        if self.link is not None:
            node, loop = self.settings.cluster.node, self._loop
            self.shared = await SharedPhoneState.open(
                self.link, node=node, holder=str(self.holder), loop=loop
            )
        opened = self.phones.open(
            self.cdr.directory, self._watching, self.queue_events, self.shared
        )
        self.background.run(opened)
        await self.phones.open_control()  # ``callserver agents ...`` reach the server
        aborted = self.cdr.recover(datetime.now(UTC))  # legs a crash left open
        if aborted:
            log.warning("cdr.recovered_aborted", records=len(aborted))
        self.ingester.start()  # into cdr.sqlite now, then every cdr.ingest_interval
        self.central = open_central_cdrs(self.settings)
        self.background.run(self.retention.run())  # expired call recordings, hourly
        warm_prompts(self.prompts)  # no call decodes one on the loop
        self.calls.music = music_in_force(self.settings.media.hold_music_dir)
        self.routing.load()
        self._watch = self._loop.create_task(self.routing.watch(self._watching))
        self.campaigns.scan()  # the campaigns started before, and while it was down
        # None: disabled, or a port taken (calls go on)
        self.admin = await open_admin(self, server_registry(self))
        if on_ready is not None:
            on_ready()
        log.info("server.listening", addresses=self.sockets.describe())

    async def _open_cluster_limits(self) -> None:
        """With ``cluster.redis``: the channels and trunk call rates shared through the link."""
        if self.link is None:
            return
        shared = await open_shared_limits(
            self.settings.cluster, self.link, self.admission, self.holder
        )
        self.calls.intake.share(shared.channels)
        self.shared_limits = shared

    async def _close_cluster_limits(self) -> None:
        """The calls waiting for Redis refused, the last releases sent, the lease deleted
        (the link closes after the shared phone state)."""
        if self.calls.intake.shared is not None:
            await self.calls.intake.shared.close()
        if self.shared_limits is not None:
            await self.shared_limits.close()

    # -- transport callbacks (asyncio names) ------------------------------------------------

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        """A UDP datagram arrived."""
        self.endpoint.receive_datagram(data, peer, self._loop.time())
        self.pump()
        self.media.poll_clock()  # a tick due in the middle of a burst runs now

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Bytes arrived on a TCP connection."""
        self.endpoint.receive_stream_data(data, peer, self._loop.time())
        self.pump()
        self.media.poll_clock()  # as for a datagram (not in pump: a tick's own events pump)

    def stream_closed(self, peer: Peer) -> None:
        """A TCP connection closed."""
        self.endpoint.stream_closed(peer)
        if self.calls.registration is not None:
            self.calls.registration.stream_closed(peer, self._loop.time())

    # -- the pump ---------------------------------------------------------------------------

    def pump(self) -> None:
        """Send what the endpoint queued, hand its events to the calls, re-arm the timer."""
        endpoint = self.endpoint
        while True:
            for action in endpoint.datagrams_to_send():
                self._send(action)
            event = endpoint.next_event()
            if event is None:
                break
            self._handle(event)
        self._alarm.arm(self.endpoint.get_timer())

    def _handle(self, event: SipEvent) -> None:
        try:
            self.calls.handle_event(event, self._loop.time())
        except Exception:
            # A bug in call handling stays with that call, not the server: log it, and answer
            # the request that triggered it with 500 if nothing answered it yet.
            log.exception("calls.event_failed", kind=type(event).__name__)
            if isinstance(event, RequestReceived) and event.key is not None:
                with contextlib.suppress(LocalProtocolError):
                    self.endpoint.respond(event.key, 500, self._loop.time())

    def _on_media(self, event: MediaEvent) -> None:
        try:
            self.calls.handle_media_event(event)
        except Exception:
            log.exception("calls.media_event_failed", kind=type(event).__name__)

    def _send(self, action: Transmit | CloseConnection) -> None:
        self.sockets.send(action)
        if isinstance(action, CloseConnection):
            log.info("sip.connection_closed", conn_id=action.conn_id, reason=action.reason)

    def _on_timer(self, deadline: float) -> None:
        self.endpoint.handle_timer(max(deadline, self._loop.time()))
        self.pump()

    # -- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT drain and stop; SIGHUP reloads settings."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stopped.set)
        self._loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> None:
        """Re-read the config file (flags still win); a bad file leaves the running settings.

        New calls get the new values; start-up-only settings (listen addresses, SIP timers,
        the RTP port range, logging) keep their running values and are logged as needing a
        restart.
        """
        path = str(self.config_path or DEFAULT_CONFIG)
        self.campaigns.scan()  # ``callserver campaign start|stop`` send SIGHUP
        try:
            loaded = load_settings(self.config_path, self.overrides)
            trunks, centrex = load_customers(
                loaded.trunks, loaded.centrex, plan_numbers(loaded.dialplans)
            )
            tariffs = load_tariffs(loaded.tariffs)
        except OperatorFileError as exc:
            log.error("config.reload_failed", path=path, errors=exc.errors)
            self._reload_routing()  # the dialplans and the blacklist are files of their own
            return
        if loaded.dns != self.settings.dns:  # else the cached answers stay
            self.calls.forwarder.resolver = resolver_for(
                loaded.sip.listen, loaded.dns, self._loop.time
            )
        self.settings, restart = keep_startup_values(self.settings, loaded)
        self.calls.settings = self.settings
        self.overload.settings = self.settings.overload
        self.admission.reload(trunks, centrex)
        self.centrex = centrex
        if self.calls.registration is not None:
            self.calls.registration.update(self.settings, self.admission.auth)
        self.tariffs = self.calls.tariffs = self.reporter.tariffs = tariffs
        self.media.reconfigure(self.settings.media)
        media = self.settings.media
        if media.prompts_dir != self.prompts.root:  # else the store keeps what it decoded
            self.prompts = self.calls.prompts = PromptStore(media.prompts_dir, self._language_chain)
        self.background.run(warm_prompts_in_slices(self.prompts, self._spare_share))
        use_music = partial(setattr, self.calls.live, "music")
        self.background.run(reload_music(media.hold_music_dir, use_music))
        self.routing.prompts, self.routing.tariffs = self.prompts, tariffs
        self.routing.default_language = media.default_language
        self._reload_routing()
        current = self.endpoint.config
        self.endpoint.config = endpoint_config(self.settings, current.host, current.port)
        if restart:
            log.warning("config.restart_needed", settings=restart)
        log.info("config.reloaded", path=path)

    def _reload_routing(self) -> None:
        """SIGHUP: the blacklist at once, the dialplans a file per turn of the loop."""
        self.routing.load_blacklist()
        self.background.run(self.routing.dialplans.reload_in_slices())

    def _retention_days(self, customer: str) -> int:
        return self.admission.table.retention_days(customer)

    def _spare_share(self) -> float:
        """The share of the loop reload work may take now: what calls leave (pacing)."""
        return spare_share(self.media.loop_load())

    def _language_chain(self, language: str) -> list[str]:
        """The prompt language chain of the settings in force (it follows a reload)."""
        return self.settings.media.language_chain(language)

    def stop(self) -> None:
        """Ask ``serve_forever`` to drain and return."""
        self._stopped.set()

    async def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until stopped, then drain: 503 to new calls, BYE after the drain timeout."""
        await self.start(on_ready)
        tune_gc()
        self.collections.start()
        self.gc_pauses.install()
        self.overload.start(self._loop.time())
        self._poll_overload()
        await self._stopped.wait()
        await self.drain()

    def _poll_overload(self) -> None:
        """Log overload episodes as they start and end (a line each), four times a second."""
        for event in self.overload.poll(self._loop.time()):
            name = "overload.started" if isinstance(event, EpisodeStarted) else "overload.ended"
            log.warning(name, **dataclasses.asdict(event))
        self._overload_timer = self._loop.call_later(0.25, self._poll_overload)

    async def drain(self) -> None:
        """Refuse new calls, give active ones ``drain_timeout`` to end, then BYE the rest."""
        self.calls.draining = True  # no new call, nor a campaign's
        await self.campaigns.close(self.settings.calls.drain_timeout)
        # BYE retransmits at T1, 2*T1, ...: a few tries before the sockets close.
        await self.calls.drain(self.settings.calls.drain_timeout, 8 * self.settings.sip.t1)
        await self.close()
        lockout = self.admission.auth.lockout.statistics()
        overload = self.overload.statistics()
        log.info(
            "server.stopped",
            overload_refused=overload.refused,
            overload_episodes=overload.episodes,
            calls_total=self.calls.calls_total,
            channels_in_use=self.admission.channels.statistics().active_grants,
            auth_failures=lockout.failures,
            auth_penalties=lockout.penalties,
            auth_refused=lockout.refused,
            auth_unanswered=self.calls.screening.statistics().dropped,
        )

    async def close(self) -> None:
        """Close every socket and stop the timers."""
        if self.admin is not None:
            await self.admin.close()
        await self._close_cluster_limits()  # while the CDR spool and the sockets are open
        self._alarm.cancel()
        self.collections.stop()
        self.gc_pauses.uninstall()
        if self._overload_timer is not None:
            self._overload_timer.cancel()
        self._watching.set()
        self.background.cancel()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._watch
        await self.media.stop()
        await self.phones.close()  # control socket closed; bindings, settings... on disk
        if self.shared is not None:
            await self.shared.close()  # bindings, settings: the last changes into Redis
        if self.link is not None:
            await self.link.close()
        if self.cdr is not None:
            await asyncio.to_thread(self.cdr.close)  # every queued CDR on disk before we exit
        await self.ingester.close()  # then the last of them into cdr.sqlite
        if self.central is not None:
            await self.central.close()  # and into PostgreSQL, within a few seconds
        if self.queue_events is not None:
            await asyncio.to_thread(self.queue_events.close)  # every queued event on disk
        await self.sockets.close()
