"""The running server's control channel: ``<data_dir>/control.sock``, one JSON line a request.

Theory of operation
-------------------
The operator's commands that change a running server's state (``callserver agents login``
...) connect to an AF_UNIX stream socket in the data dir, owner-only (mode 0600: whoever may
read the data dir's databases may also act), send one JSON object on one line,
``{"command": "agents.login", "agent": "+38733100201"}``, and read one line back:
``{"ok": true, "result": {...}}`` or ``{"ok": false, "error": "why"}``. The server runs the
request's handler on its event loop, between two other events, so the handler sees and
changes the state the calls see, with no lock; a handler must not block.

Handlers are registered by name (``area.verb``); a later interface (an HTTP API) calls the
same in-process functions the handlers call and needs nothing of this socket. A line longer
than ``MAX_LINE`` or not a JSON object is answered with an error and the connection closed.
A socket file left by a killed server is replaced at the next start; a client finding no
socket, or one nobody listens on, gets :class:`NotRunning`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import structlog

__all__ = ["CONTROL_SOCKET", "MAX_LINE", "ControlServer", "Handler", "NotRunning", "request"]

log = structlog.get_logger("callserver.control")

CONTROL_SOCKET = "control.sock"
MAX_LINE = 64 * 1024
Handler = Callable[[Mapping[str, object]], dict[str, object]]


class NotRunning(ConnectionError):
    """No server listens on the data dir's control socket."""


class ControlServer:
    """Serves ``<data_dir>/control.sock`` on the loop (module docstring).

    Args:
        data_dir: where the socket is made.
        handlers: request name to handler; ``ValueError``/``LookupError`` it raises are the
            answer's ``error``, anything else is logged and answered as an internal error.
    """

    def __init__(self, data_dir: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = data_dir / CONTROL_SOCKET
        self.handlers = dict(handlers)
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        """Listen (a stale socket file is replaced).

        Raises:
            OSError: the socket cannot be made (a path too long for AF_UNIX, a read-only dir).
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        old = os.umask(0o077)
        try:
            with _addressable(self.path) as address:
                self._server = await asyncio.start_unix_server(
                    self._serve, path=address, limit=MAX_LINE
                )
        finally:
            os.umask(old)

    async def close(self) -> None:
        """Stop listening and remove the socket file."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(self.answer(line)).encode() + b"\n")
                await writer.drain()
        except (ValueError, asyncio.LimitOverrunError):
            writer.write(
                json.dumps(_error(f"a request is one line under {MAX_LINE} bytes")).encode() + b"\n"
            )
        except ConnectionError:
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def answer(self, line: bytes) -> dict[str, object]:
        """The answer to one request line."""
        try:
            message = json.loads(line)
        except ValueError:
            return _error("a request is a JSON object on one line")
        if not isinstance(message, dict):
            return _error("a request is a JSON object on one line")
        name = message.get("command")
        handler = self.handlers.get(name) if isinstance(name, str) else None
        if handler is None:
            return _error(f"unknown command {name!r}: one of {', '.join(sorted(self.handlers))}")
        try:
            return {"ok": True, "result": handler(message)}
        except (ValueError, LookupError) as exc:
            return _error(str(exc))
        except Exception:
            log.exception("control.handler_failed", command=name)
            return _error("internal error (see the server's log)")


@contextlib.contextmanager
def _addressable(path: Path) -> Iterator[str]:
    """An address of ``path`` short enough for AF_UNIX (108 bytes on Linux): the path, or
    the same file reached through an open descriptor of its directory."""
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _error(why: str) -> dict[str, object]:
    return {"ok": False, "error": why}


def request(data_dir: Path, message: Mapping[str, object], timeout: float = 10.0) -> object:
    """Send ``message`` to the server running on ``data_dir``; its ``result``.

    Raises:
        NotRunning: no server listens there.
        ValueError: the server refused the request (its ``error``).
        OSError: the connection broke.
    """
    path = data_dir / CONTROL_SOCKET
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            with _addressable(path) as address:
                sock.connect(address)
        except (FileNotFoundError, NotADirectoryError, ConnectionRefusedError):
            raise NotRunning(f"no running server: nothing listens on {path}") from None
        sock.sendall(json.dumps(dict(message)).encode() + b"\n")
        with sock.makefile("rb") as stream:
            line = stream.readline(MAX_LINE)
    if not line:
        raise OSError(f"{path}: the server closed the connection without an answer")
    answer = json.loads(line)
    if not answer.get("ok"):
        raise ValueError(str(answer.get("error")))
    return answer.get("result")
