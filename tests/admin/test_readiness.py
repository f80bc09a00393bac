"""``/readyz``'s reasons, read from a server's state."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from callserver.admin.readiness import not_ready


def _state(tmp_path: Path, **changes: Any) -> Any:
    spool = tmp_path / "cdr"
    spool.mkdir(exist_ok=True)
    state: dict[str, Any] = {
        "settings": SimpleNamespace(dialplans=tmp_path / "dialplans"),
        "sockets": SimpleNamespace(describe=lambda: ["udp:127.0.0.1:5060"]),
        "routing": SimpleNamespace(dialplans=SimpleNamespace(plans=[object()])),
        "cdr": SimpleNamespace(directory=spool),
        "calls": SimpleNamespace(draining=False),
    }
    return SimpleNamespace(**{**state, **changes})


async def test_a_listening_server_with_plans_and_a_spool_is_ready(tmp_path: Path) -> None:
    """SIP sockets, a dialplan and a writable spool directory: no reason, ready."""
    assert await not_ready(_state(tmp_path)) == []


async def test_every_missing_part_is_a_reason(tmp_path: Path) -> None:
    """No socket, no plan, a spool that is a file, draining: four reasons, each named."""
    spool = tmp_path / "spool-file"
    spool.write_text("")
    state = _state(
        tmp_path,
        sockets=SimpleNamespace(describe=list),
        routing=SimpleNamespace(dialplans=SimpleNamespace(plans=[])),
        cdr=SimpleNamespace(directory=spool),
        calls=SimpleNamespace(draining=True),
    )
    dialplans = tmp_path / "dialplans"
    assert await not_ready(state) == [
        "SIP is not listening: see the log's server.listening and sip errors",
        f"no dialplan is loaded from {dialplans}: callserver check {dialplans}",
        f"the CDR spool {spool} is not a writable directory",
        "the server is draining to stop",
    ]


async def test_a_spool_not_yet_open_is_a_reason(tmp_path: Path) -> None:
    """Before start() opened the spool the server is not ready."""
    assert await not_ready(_state(tmp_path, cdr=None)) == ["the CDR spool is not open yet"]
