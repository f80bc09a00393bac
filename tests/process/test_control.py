"""The control socket: one JSON line a request, answered on the loop, owner-only."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from pathlib import Path

import pytest

from callserver.process.control import ControlServer, NotRunning, request


def _echo(message: Mapping[str, object]) -> dict[str, object]:
    if message.get("fail"):
        raise LookupError("no such thing")
    return {"got": message.get("value")}


async def test_requests_are_answered_and_errors_are_answers(tmp_path: Path) -> None:
    """A handler's result, its LookupError, an unknown command and a line that is no JSON
    object each come back as one line; the socket is the owner's alone and gone at close."""
    server = ControlServer(tmp_path, {"test.echo": _echo})
    await server.start()
    mode = stat.S_IMODE(server.path.stat().st_mode)
    result = await asyncio.to_thread(request, tmp_path, {"command": "test.echo", "value": 3})
    with pytest.raises(ValueError, match="no such thing"):
        await asyncio.to_thread(request, tmp_path, {"command": "test.echo", "fail": True})
    with pytest.raises(ValueError, match=r"unknown command 'nope': one of test\.echo"):
        await asyncio.to_thread(request, tmp_path, {"command": "nope"})
    assert server.answer(b"[1, 2]") == {
        "ok": False,
        "error": "a request is a JSON object on one line",
    }
    await server.close()
    assert result == {"got": 3} and mode & 0o077 == 0
    assert not server.path.exists()
    with pytest.raises(NotRunning):
        request(tmp_path, {"command": "test.echo"})


async def test_a_data_dir_too_deep_for_af_unix_still_works(tmp_path: Path) -> None:
    """A socket path longer than AF_UNIX takes is reached through its directory's descriptor."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = ControlServer(deep, {"test.echo": _echo})
    await server.start()
    try:
        result = await asyncio.to_thread(request, deep, {"command": "test.echo", "value": "x"})
    finally:
        await server.close()
    assert result == {"got": "x"} and len(str(server.path)) > 108


def test_a_stale_socket_file_is_not_a_running_server(tmp_path: Path) -> None:
    """A socket file nobody listens on (a killed server's) gives NotRunning."""
    import socket

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind(str(tmp_path / "control.sock"))
    with pytest.raises(NotRunning):
        request(tmp_path, {"command": "test.echo"})
