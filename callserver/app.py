"""Wiring: settings -> transports -> SIP endpoint -> calls, plus signals (DESIGN.md).

The ``Server`` is the asyncio adapter around the sans-IO endpoint (STYLE.md §5, aioquic's
pattern): after every datagram, stream chunk or timer it drains the endpoint's output and
events, then re-arms one ``loop.call_at`` only when the earliest deadline changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from pathlib import Path

import structlog

from callserver.calls.manager import CallManager
from callserver.config import ConfigError, ListenAddress, Settings, load_settings
from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import CloseConnection, Peer, Transmit
from callserver.sip.parser import ParseLimits
from callserver.sip.timers import SipTimers
from callserver.transport.tcp import TcpTransport
from callserver.transport.udp import UdpTransport

__all__ = ["Server", "endpoint_config"]

log = structlog.get_logger("callserver.app")


def endpoint_config(settings: Settings, host: str, port: int) -> EndpointConfig:
    """Build the endpoint's config from settings and the address we are reached at."""
    sip = settings.sip
    return EndpointConfig(
        host=host,
        port=port,
        user_agent=sip.user_agent,
        timers=SipTimers(t1=sip.t1, t2=sip.t2, t4=sip.t4),
        limits=ParseLimits(
            max_message_bytes=sip.max_message_bytes,
            max_headers=sip.max_headers,
            max_header_line=sip.max_header_line,
        ),
        session_expires=sip.session_expires,
        min_se=sip.min_se,
    )


def _advertised(settings: Settings, listen: ListenAddress) -> str:
    if settings.sip.advertised_address:
        return settings.sip.advertised_address
    if listen.host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return listen.host


class Server:
    """One callserver process: its sockets, its endpoint, its calls."""

    def __init__(self, settings: Settings, config_path: Path | None = None) -> None:
        self.settings = settings
        self.config_path = config_path
        self._loop = asyncio.get_running_loop()
        self._udp: list[UdpTransport] = []
        self._tcp: list[TcpTransport] = []
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._stopped = asyncio.Event()
        first = settings.sip.listen[0]
        self.endpoint = SipEndpoint(
            endpoint_config(settings, _advertised(settings, first), first.port)
        )
        self.calls = CallManager(
            self.endpoint,
            settings,
            media_host=_advertised(settings, first),
            loop=self._loop,
            wake=self.pump,
        )

    async def start(self) -> None:
        """Open every listening socket; fixes the endpoint's port when it listened on port 0."""
        for listen in self.settings.sip.listen:
            if listen.transport == "udp":
                self._udp.append(await UdpTransport.open(listen.host, listen.port, self))
            else:
                self._tcp.append(
                    await TcpTransport.open(
                        listen.host,
                        listen.port,
                        self,
                        idle_timeout=self.settings.sip.tcp_idle_timeout,
                        max_connections=self.settings.sip.tcp_max_connections,
                    )
                )
        sockets: list[UdpTransport | TcpTransport] = [*self._udp, *self._tcp]
        bound = sockets[0].local_address
        first = self.settings.sip.listen[0]
        self.endpoint.config = endpoint_config(
            self.settings, _advertised(self.settings, first), bound[1]
        )
        log.info("server.listening", addresses=[self._describe(t) for t in sockets])

    @staticmethod
    def _describe(transport: UdpTransport | TcpTransport) -> str:
        kind = "udp" if isinstance(transport, UdpTransport) else "tcp"
        host, port = transport.local_address
        return f"{kind}:{host}:{port}"

    # -- transport callbacks (asyncio names) ------------------------------------------------

    def datagram_received(self, data: bytes, peer: Peer) -> None:
        """A UDP datagram arrived."""
        self.endpoint.receive_datagram(data, peer, self._loop.time())
        self.pump()

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Bytes arrived on a TCP connection."""
        self.endpoint.receive_stream_data(data, peer, self._loop.time())
        self.pump()

    def stream_closed(self, peer: Peer) -> None:
        """A TCP connection closed."""
        self.endpoint.stream_closed(peer)

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
        self._arm_timer()

    def _handle(self, event: object) -> None:
        try:
            self.calls.handle_event(event, self._loop.time())
        except Exception:
            log.exception("calls.event_failed", event=type(event).__name__)

    def _send(self, action: Transmit | CloseConnection) -> None:
        if isinstance(action, CloseConnection):
            for tcp in self._tcp:
                tcp.close_connection(action.conn_id)
            log.info("sip.connection_closed", conn_id=action.conn_id, reason=action.reason)
            return
        if action.peer.transport == "udp":
            if self._udp:
                self._udp[0].send(action.data, action.peer)
        elif self._tcp:
            self._tcp[0].send(action.data, action.peer)

    def _arm_timer(self) -> None:
        deadline = self.endpoint.get_timer()
        if deadline == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = deadline
        if deadline is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        deadline, self._deadline = self._deadline, None
        now = self._loop.time()
        self.endpoint.handle_timer(max(deadline or now, now))
        self.pump()

    # -- lifecycle ---------------------------------------------------------------------------

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT drain and stop; SIGHUP reloads settings."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self._stopped.set)
        self._loop.add_signal_handler(signal.SIGHUP, self.reload)

    def reload(self) -> None:
        """Re-read the config file; a bad file is logged and the running settings stay."""
        try:
            settings = load_settings(self.config_path)
        except ConfigError as exc:
            log.error("config.reload_failed", errors=exc.errors)
            return
        if settings.sip.listen != self.settings.sip.listen:
            log.warning("config.listen_change_needs_restart")
        self.settings = settings.model_copy(
            update={"sip": settings.sip.model_copy(update={"listen": self.settings.sip.listen})}
        )
        self.calls.settings = self.settings
        log.info("config.reloaded", path=str(self.config_path))

    def stop(self) -> None:
        """Ask ``serve_forever`` to drain and return."""
        self._stopped.set()

    async def serve_forever(self, on_ready: Callable[[], None] | None = None) -> None:
        """Run until stopped, then drain: 503 to new calls, BYE after the drain timeout."""
        await self.start()
        if on_ready is not None:
            on_ready()
        await self._stopped.wait()
        await self.drain()

    async def drain(self) -> None:
        """Refuse new calls, give active ones ``drain_timeout`` to end, then BYE the rest."""
        self.calls.draining = True
        log.info("server.draining", active_calls=len(self.calls.calls))
        await self._wait_calls(self.settings.calls.drain_timeout)
        if self.calls.calls:
            self.calls.hang_up_all()
            await self._wait_calls(4 * self.settings.sip.t1 + 1.0)
        await self.close()
        log.info("server.stopped", calls_total=self.calls.calls_total)

    async def _wait_calls(self, limit: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                await self.calls.idle.wait()

    async def close(self) -> None:
        """Close every socket."""
        if self._timer is not None:
            self._timer.cancel()
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            with contextlib.suppress(Exception):
                await tcp.aclose()
