"""REGISTER end to end: SIPp against `callserver run` (RFC 3261 §10.3, RFC 5626 §4.4.1).

SIPp 3.6.1 answers MD5 only and reads the first challenge's algorithm, so the server offers
MD5 alone here (see tests/e2e/test_digest_trunks.py).
"""

from __future__ import annotations

import socket
from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import HOST, SCENARIOS, run_sipp, start_server, stopped_on_exit

MD5_ONLY = {"digest": {"algorithms": ["MD5"]}, "trunks": {}}


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
    username, realm, password = "38733100201", "callserver", "phone-201-secret"
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": realm,
        "extensions": {"digits": 3},
        "subscribers": {
            "+387 33 100 201": {
                "username": username,
                "ha1_md5": password_ha1(username, realm, password, "MD5"),
                "ha1_sha256": password_ha1(username, realm, password, "SHA-256"),
            }
        },
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))
    trunks = {**MD5_ONLY, "customers": {"acme": {}}}
    with stopped_on_exit(start_server(tmp_path, trunks=trunks)) as server:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            "-sf",
            str(SCENARIOS / "uac-register-digest-then-remove.xml"),
            "-m",
            "1",
            "-au",
            username,
            "-ap",
            password,
            timeout=20,
        )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
