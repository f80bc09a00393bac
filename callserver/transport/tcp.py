"""The asyncio TCP adapter: a listener plus inbound and outbound connections (RFC 3261 §18).

Theory of operation
-------------------
Bytes only: received data goes straight to ``stream_data_received`` with a ``Peer`` whose
``conn_id`` names the connection; framing and flood limits belong to the sans-IO core, which
calls ``close_connection`` on a misbehaving peer. Every connection end is reported once through
``stream_closed``. ``send`` picks the connection named by ``peer.conn_id`` while it is open, else
the newest open one to (host, port), inbound or outbound (RFC 3261 §18.2.2, RFC 5923), else
opens one in the background with the data queued in order; if that fails, each queued ``Peer``
gets ``stream_closed`` (§18.4). ``send`` never raises or re-enters the handler. One periodic
sweep, not a timer per connection, closes connections idle either way for ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import functools
import ipaddress
import itertools
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol, cast

import structlog

from callserver.sip.events import Peer

__all__ = ["StreamHandler", "TcpStatistics", "TcpTransport"]

_log = structlog.get_logger("callserver.transport")

_Key = tuple[str, int]
_CLOSE_LINGER = 2.0  # seconds aclose() lets connections flush before resetting them


class StreamHandler(Protocol):
    """What a ``TcpTransport`` delivers stream data and connection ends to."""

    def stream_data_received(self, data: bytes, peer: Peer) -> None:
        """Take bytes that arrived on connection ``peer.conn_id`` (unframed, any chunk size)."""

    def stream_closed(self, peer: Peer) -> None:
        """Learn that a connection ended, or that a connect to ``peer`` failed (RFC 3261 §18.4)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpStatistics:
    """Counters of one ``TcpTransport`` since it opened (``connections_open`` is current)."""

    connections_open: int
    accepted: int
    connected: int
    refused: int
    connect_failures: int
    closed: int
    closed_idle: int
    closed_overflow: int
    closed_by_core: int
    bytes_in: int
    bytes_out: int
    send_errors: int


_COUNTED = [f.name for f in dataclasses.fields(TcpStatistics) if f.name != "connections_open"]


class _Limits(NamedTuple):
    idle_timeout: float
    max_connections: int
    max_write_buffer: int
    connect_timeout: float


@dataclass(slots=True)
class _Pending:
    """An outbound connection being opened, and the data queued for it in send order."""

    key: _Key
    peers: list[Peer] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    size: int = 0


@functools.lru_cache(maxsize=4096)
def _key(host: str, port: int) -> _Key:
    """One spelling per address, so ``[::1]`` and ``0:0::1`` find the same connection."""
    host = host.strip("[]")
    with contextlib.suppress(ValueError):
        host = ipaddress.ip_address(host).compressed
    return host, port


class _Connection(asyncio.Protocol):
    """One TCP connection; hands received bytes to the handler as they come."""

    transport: asyncio.Transport

    def __init__(self, owner: TcpTransport, conn_id: int, pending: _Pending | None) -> None:
        self.owner = owner
        self.conn_id = conn_id
        self.pending = pending
        self.peer = Peer("tcp", "", 0, conn_id)
        self.keys: list[_Key] = []
        self.registered = False
        self.time = owner.loop.time
        self.last_activity = self.time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's does not subclass it
        self.owner._connection_made(self)

    def data_received(self, data: bytes) -> None:
        self.last_activity = self.time()
        self.owner.counts["bytes_in"] += len(data)
        try:
            self.owner.handler.stream_data_received(data, self.peer)
        except Exception:
            _log.exception("transport.handler_error", transport="tcp", peer=self.peer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._connection_lost(self, exc)


class TcpTransport:
    """A TCP listener and the SIP connections it accepts or opens (RFC 3261 §18, RFC 5923)."""

    def __init__(self, handler: StreamHandler, limits: _Limits) -> None:
        """Set up an idle transport; ``open`` is the way to get one (``limits`` as it takes)."""
        if min(limits) <= 0:
            raise ValueError("transport limits and timeouts must be positive")
        self.loop = asyncio.get_running_loop()
        self.handler = handler
        self.limits = limits
        self.counts: collections.Counter[str] = collections.Counter()
        self._server: asyncio.Server | None = None
        self._local_address = ("", 0)
        self._connections: dict[int, _Connection] = {}
        self._by_key: dict[_Key, _Connection] = {}  # the newest connection to each address
        self._pending: dict[_Key, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)
        self._sweep_handle: asyncio.TimerHandle | None = None
        self._drained = asyncio.Event()  # set while no connection is open
        self._drained.set()
        self._saturated = False
        self._closing = False

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        handler: StreamHandler,
        *,
        idle_timeout: float = 300.0,
        max_connections: int = 1024,
        max_write_buffer: int = 1 << 20,
        connect_timeout: float = 5.0,
    ) -> TcpTransport:
        """Listen on (host, port) and serve SIP connections for ``handler`` (RFC 3261 §18.2.1).

        Args:
            host: IPv4 or IPv6 literal to bind; port 0 picks a free port (see ``local_address``).
            handler: receives stream data and connection ends.
            idle_timeout: seconds without traffic either way after which a connection is closed.
            max_connections: open plus opening connections allowed at once.
            max_write_buffer: bytes a connection may queue for a slow peer before it is aborted.
            connect_timeout: seconds an outbound connect may take before it counts as failed.

        Returns:
            The listening transport.

        Raises:
            OSError: the address cannot be bound.
            ValueError: a limit or timeout is not positive.
        """
        self = cls(
            handler, _Limits(idle_timeout, max_connections, max_write_buffer, connect_timeout)
        )
        self._server = await self.loop.create_server(self._accepted, host, port, backlog=1024)
        sockname = self._server.sockets[0].getsockname()
        self._local_address = (str(sockname[0]), int(sockname[1]))
        self._arm_sweep()
        _log.info("transport.listening", transport="tcp", address=self.local_address)
        return self

    @property
    def local_address(self) -> tuple[str, int]:
        """The (host, port) the listener is bound to, with the real port when opened with 0."""
        return self._local_address

    def send(self, data: bytes, peer: Peer) -> None:
        """Send ``data`` to ``peer`` over TCP; never raises (RFC 3261 §18.2.2, RFC 5923).

        Args:
            data: serialised SIP message(s).
            peer: ``conn_id`` picks the connection while it is open; otherwise an open
                connection to (host, port) is reused, or a new one is opened in the background.
                If that connect fails, ``stream_closed(peer)`` is called.
        """
        conn = self._connections.get(peer.conn_id) if peer.conn_id is not None else None
        if conn is None or conn.transport.is_closing():
            conn = self._by_key.get(_key(peer.host, peer.port))
        if conn is not None and not conn.transport.is_closing():
            self._write(conn, data)
        else:
            self._send_when_connected(data, peer)

    def close_connection(self, conn_id: int) -> None:
        """Stop reading from a connection and close it once queued data is written.

        The core calls this when a peer sends garbage or more than its limits allow, after
        queuing any final error response; ``stream_closed`` follows when the socket closes.
        """
        conn = self._connections.get(conn_id)
        if conn is not None and not conn.transport.is_closing():
            self.counts["closed_by_core"] += 1
            _log.info("transport.connection_closed_by_core", peer=conn.peer)
            conn.transport.close()

    async def aclose(self) -> None:
        """Stop listening, cancel pending connects, and close every connection.

        Connections get a short linger to flush queued data, then the rest are reset; every
        ``stream_closed`` has been delivered by the time this returns.
        """
        if self._closing:
            return
        self._closing = True
        if self._sweep_handle is not None:
            self._sweep_handle.cancel()
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pending.clear()
        for conn in list(self._connections.values()):
            conn.transport.close()
        await self._wait_drained()
        for conn in list(self._connections.values()):
            conn.transport.abort()
        await self._wait_drained()
        _log.info("transport.closed", transport="tcp")

    def statistics(self) -> TcpStatistics:
        """Return the connection and traffic counters since the transport opened."""
        counts = {name: self.counts[name] for name in _COUNTED}
        return TcpStatistics(connections_open=len(self._connections), **counts)

    async def _wait_drained(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_CLOSE_LINGER):
                await self._drained.wait()

    def _accepted(self) -> _Connection:
        return _Connection(self, next(self._ids), None)

    def _connection_made(self, conn: _Connection) -> None:
        pending = conn.pending
        if pending is None and (self._closing or self._full()):
            self._limit_reached()
            conn.transport.abort()
            return
        if pending is not None and self._pending.get(pending.key) is not pending:
            conn.transport.abort()  # the connect already timed out or was cancelled
            return
        self._register(conn)
        if pending is None:
            self.counts["accepted"] += 1
            return
        del self._pending[pending.key]
        self.counts["connected"] += 1
        for chunk in pending.chunks:
            self._write(conn, chunk)

    def _limit_reached(self) -> None:
        self.counts["refused"] += 1
        if not self._saturated and not self._closing:
            self._saturated = True  # log once until a connection ends, not once per refusal
            _log.warning("transport.connection_limit_reached", limit=self.limits.max_connections)

    def _register(self, conn: _Connection) -> None:
        peername = conn.transport.get_extra_info("peername") or ("", 0)  # None: already reset
        host, port = str(peername[0]), int(peername[1])
        conn.peer = Peer("tcp", host, port, conn.conn_id)
        conn.keys = [_key(host, port)]
        if conn.pending is not None and conn.pending.key != conn.keys[0]:
            conn.keys.append(conn.pending.key)  # so the name the core sent to finds it too
        conn.registered = True
        self._connections[conn.conn_id] = conn
        for key in conn.keys:
            self._by_key[key] = conn
        self._drained.clear()

    def _connection_lost(self, conn: _Connection, exc: Exception | None) -> None:
        if not conn.registered:
            return
        conn.registered = False
        del self._connections[conn.conn_id]
        for key in conn.keys:
            if self._by_key.get(key) is conn:
                del self._by_key[key]
        self.counts["closed"] += 1
        self._saturated = False
        _log.debug("transport.connection_closed", peer=conn.peer, error=exc and str(exc))
        if not self._connections:
            self._drained.set()
        self._notify_closed(conn.peer)

    def _full(self) -> bool:
        return len(self._connections) + len(self._pending) >= self.limits.max_connections

    def _notify_closed(self, peer: Peer) -> None:
        try:
            self.handler.stream_closed(peer)
        except Exception:
            _log.exception("transport.handler_error", transport="tcp", peer=peer)

    def _write(self, conn: _Connection, data: bytes) -> None:
        transport = conn.transport
        try:
            transport.write(data)
        except (OSError, RuntimeError) as exc:
            self.counts["send_errors"] += 1
            _log.warning("transport.send_failed", transport="tcp", peer=conn.peer, error=str(exc))
            transport.abort()
            return
        self.counts["bytes_out"] += len(data)
        conn.last_activity = conn.time()
        if transport.get_write_buffer_size() > self.limits.max_write_buffer:
            self.counts["closed_overflow"] += 1
            _log.warning("transport.write_buffer_overflow", peer=conn.peer)
            transport.abort()

    def _send_when_connected(self, data: bytes, peer: Peer) -> None:
        key = _key(peer.host, peer.port)
        pending = self._pending.get(key)
        if pending is None:
            if self._closing or self._full():
                self._limit_reached()
                self.loop.call_soon(self._notify_closed, peer)
                return
            pending = self._pending[key] = _Pending(key)
            task = self.loop.create_task(self._connect(pending))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        if pending.size + len(data) > self.limits.max_write_buffer:
            self.counts["send_errors"] += 1
            _log.warning("transport.connect_queue_full", peer=peer)
            return
        pending.chunks.append(data)
        pending.size += len(data)
        if peer not in pending.peers:
            pending.peers.append(peer)

    async def _connect(self, pending: _Pending) -> None:
        host, port = pending.key
        try:
            async with asyncio.timeout(self.limits.connect_timeout):
                await self.loop.create_connection(
                    lambda: _Connection(self, next(self._ids), pending), host, port
                )
            reason = "connection lost while connecting"  # if connection_made did not take it
        except (OSError, ValueError, TimeoutError) as exc:
            reason = repr(exc)
        if self._pending.get(pending.key) is pending:
            del self._pending[pending.key]
            self.counts["connect_failures"] += 1
            self._saturated = False
            _log.warning("transport.connect_failed", host=host, port=port, error=reason)
            for peer in pending.peers:
                self._notify_closed(peer)

    def _arm_sweep(self) -> None:
        interval = min(max(self.limits.idle_timeout / 4, 0.01), 5.0)
        self._sweep_handle = self.loop.call_later(interval, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for ``idle_timeout``: one timer for all of them."""
        try:
            deadline = self.loop.time() - self.limits.idle_timeout
            for conn in [c for c in self._connections.values() if c.last_activity <= deadline]:
                if conn.transport.is_closing():
                    conn.transport.abort()  # still flushing to a peer that stopped reading
                else:
                    self.counts["closed_idle"] += 1
                    _log.info("transport.connection_idle", peer=conn.peer)
                    conn.transport.close()
        finally:
            self._arm_sweep()
