"""Batched RTP socket I/O: a tick's datagrams sent in one call, every waiting one read in one.

Each stream has its own UDP socket (RFC 3550 §11: a port pair a stream; symmetric RTP, RFC
4961, sends from the port it receives on), so a thousand calls are a thousand sockets, each
with a datagram in and out every 20 ms. One event-loop callback and one system call from
Python a datagram cost as much as the streams' own work; the engine hands its sockets to an
``RtpSockets`` instead:

- ``register(sock, key)`` / ``unregister(key)``: a non-blocking UDP socket under a key (the
  stream's id); unregister before the socket is closed;
- ``fileno()``: a descriptor that is readable while any registered socket has a datagram, the
  one descriptor the event loop watches;
- ``receive(limit)``: what waits on the ready sockets (at most ``limit`` sockets, at most
  ``DATAGRAMS_PER_SOCKET`` datagrams each, each cut to ``DATAGRAM_BYTES``), as ``(key, data,
  address)`` with the address as ``recvfrom`` gives it, and ``(key, errno)`` for a socket whose
  read failed (an ICMP error for an earlier send); never blocks;
- ``send(batch)``: each ``(key, data, address)`` from the key's socket, in order; returns
  ``(index, errno)`` for each datagram that did not go (an unknown key is ``EBADF``). A bad
  peer or address never raises: its datagram fails alone.

Two implementations have this API and behaviour: the compiled ``_rtpio`` (Cython, Linux:
epoll, ``recvmmsg`` and ``sendto`` in one C loop) and ``PythonRtpSockets`` here (a selector and
the socket methods), used when the extension was not built. ``open_rtp_sockets`` picks the
compiled one and warns once when it is missing.
"""

from __future__ import annotations

import errno
import selectors
import socket
from typing import Protocol

import structlog

from callserver.media.latch import Address

__all__ = [
    "DATAGRAMS_PER_SOCKET",
    "DATAGRAM_BYTES",
    "RECEIVE_LIMIT",
    "PythonRtpSockets",
    "RtpSockets",
    "compiled",
    "open_rtp_sockets",
]

log = structlog.get_logger("callserver.media")
RECEIVE_LIMIT = 1024  # the most ready sockets one receive serves
DATAGRAMS_PER_SOCKET = 8  # the most datagrams one receive reads from one socket
DATAGRAM_BYTES = 2048  # a longer datagram is returned cut to this length

Datagram = tuple[int, bytes, Address]
Received = tuple[list[Datagram], list[tuple[int, int]]]


class RtpSockets(Protocol):
    """Datagram sockets read and written in batches; see the module docstring."""

    def __len__(self) -> int: ...
    def fileno(self) -> int: ...
    def register(self, sock: socket.socket, key: int) -> None: ...
    def unregister(self, key: int) -> None: ...
    def receive(self, limit: int = RECEIVE_LIMIT) -> Received: ...
    def send(self, batch: list[Datagram]) -> list[tuple[int, int]]: ...
    def close(self) -> None: ...


try:
    from callserver.media import _rtpio
except ImportError as exc:
    _compiled: type[RtpSockets] | None = None
    _missing = str(exc)
else:
    _compiled = _rtpio.RtpSockets
    _missing = ""
_warned = False


def compiled() -> bool:
    """Whether the compiled extension was built and loads."""
    return _compiled is not None


def open_rtp_sockets() -> RtpSockets:
    """A new, empty ``RtpSockets``: the compiled one, else (warned once) ``PythonRtpSockets``."""
    global _warned
    if _compiled is not None:
        return _compiled()
    if not _warned:
        _warned = True
        log.warning("media.rtpio_not_compiled", hint="make install", reason=_missing)
    return PythonRtpSockets()


class PythonRtpSockets:
    """``RtpSockets`` in Python: a selector and one socket call a datagram."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._sockets: dict[int, socket.socket] = {}

    def __len__(self) -> int:
        return len(self._sockets)

    def fileno(self) -> int:
        """The selector's descriptor: readable while a registered socket has a datagram."""
        return self._selector.fileno()

    def register(self, sock: socket.socket, key: int) -> None:
        """Watch ``sock``; its datagrams come back with ``key``, and ``key`` sends from it."""
        if key in self._sockets:
            raise ValueError(f"key {key!r} is already registered")
        self._selector.register(sock, selectors.EVENT_READ, key)
        self._sockets[key] = sock

    def unregister(self, key: int) -> None:
        """Stop watching the socket of ``key`` (``KeyError`` if none)."""
        sock = self._sockets.pop(key)
        self._selector.unregister(sock)

    def receive(self, limit: int = RECEIVE_LIMIT) -> Received:
        """What waits on the ready sockets, and the read errors; see the module docstring."""
        datagrams: list[Datagram] = []
        errors: list[tuple[int, int]] = []
        for selected, _events in self._selector.select(0)[: max(1, limit)]:
            sock: socket.socket = selected.fileobj  # type: ignore[assignment]
            key: int = selected.data
            for _ in range(DATAGRAMS_PER_SOCKET):
                try:
                    data, address = sock.recvfrom(DATAGRAM_BYTES)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:
                    errors.append((key, exc.errno or errno.EIO))
                    break
                datagrams.append((key, data, address))
        return datagrams, errors

    def send(self, batch: list[Datagram]) -> list[tuple[int, int]]:
        """Send each ``(key, data, address)``; ``(index, errno)`` of those that failed."""
        failed: list[tuple[int, int]] = []
        sockets = self._sockets
        for index, (key, data, address) in enumerate(batch):
            sock = sockets.get(key)
            if sock is None:
                failed.append((index, errno.EBADF))
                continue
            try:
                sock.sendto(data, address)
            except OSError as exc:
                code = exc.errno
                failed.append((index, code if code is not None and code > 0 else errno.EINVAL))
            except (TypeError, ValueError, OverflowError):
                failed.append((index, errno.EINVAL))
        return failed

    def close(self) -> None:
        """Stop watching every socket (the sockets stay open)."""
        self._selector.close()
        self._sockets.clear()
