"""REGISTER end to end: SIPp against `callserver run` (RFC 3261 §10.3, RFC 5626 §4.4.1)."""

from __future__ import annotations

import socket
from pathlib import Path

from tests.e2e.conftest import HOST, SCENARIOS, run_sipp, start_server, stopped_on_exit
from tests.e2e.subscribers import CREDENTIALS, MD5_ONLY, TRUNKS, write_centrex


def test_register_without_subscribers_gets_423_400_401_then_403(sipp: str, tmp_path: Path) -> None:
    """With no subscribers, a REGISTER meets 423, 400, the challenge and then 403."""
    with stopped_on_exit(start_server(tmp_path, trunks=MD5_ONLY)) as server:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sf",
            str(SCENARIOS / "uac-register-without-accounts-expects-423-400-401-then-403.xml"),
            "-m",
            "1",
            "-au",
            "201",
            "-ap",
            "pw201",
            timeout=20,
        )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])


def test_crlf_keepalive_on_tcp_is_answered_with_crlf(tmp_path: Path) -> None:
    """RFC 5626 §4.4.1: a CRLFCRLF ping on a TCP connection gets a single CRLF pong."""
    with (
        stopped_on_exit(start_server(tmp_path)) as server,
        socket.create_connection((HOST, server.port), timeout=5) as conn,
    ):
        conn.sendall(b"\r\n\r\n")
        assert conn.recv(16) == b"\r\n"


def test_subscriber_registers_with_md5_digest_then_removes_its_binding(
    sipp: str, tmp_path: Path
) -> None:
    """A centrex.yaml phone answers the 401 with MD5, gets 200 with its binding, and Expires: 0
    gets 200 without it."""
    write_centrex(tmp_path)
    with stopped_on_exit(start_server(tmp_path, trunks=TRUNKS)) as server:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sf",
            str(SCENARIOS / "uac-register-digest-then-remove.xml"),
            "-m",
            "1",
            *CREDENTIALS,
            timeout=20,
        )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
