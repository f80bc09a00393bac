"""An in-process ``Server`` for the admin tests, fed datagrams by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from callserver.app import Server
from callserver.config.settings import load_settings
from callserver.sip.events import Peer

PLANS = Path(__file__).resolve().parents[2] / "dialplans"


class StandInSocket:
    """Stands in for the server's UDP socket: keeps what is sent."""

    local_address = ("127.0.0.1", 5060)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes, peer: Peer) -> None:
        """Keep ``data``."""
        self.sent.append(data)

    def receive_backlog(self) -> int:
        """Nothing waits: every datagram is fed in by hand."""
        return 0


def in_process_server(
    tmp_path: Path, plans: Path, settings: dict[str, Any] | None = None
) -> tuple[Server, StandInSocket]:
    """A ``Server`` as ``bench/call_path`` builds one: not started, its dialplans loaded, its
    UDP socket a stand-in that keeps what is sent; its data directory under ``tmp_path``;
    ``settings`` are added to (and win over) the test's own."""
    overrides: dict[str, Any] = {
        "sip": {"listen": ["udp:127.0.0.1:0"]},
        "dialplans": plans,
        "data_dir": tmp_path / "data",
        "admin": {"listen": "127.0.0.1:0"},
        **(settings or {}),
    }
    server = Server(load_settings(None, overrides))
    server.routing.load()
    socket = StandInSocket()
    server.sockets.udp.append(socket)  # type: ignore[arg-type]
    return server, socket
