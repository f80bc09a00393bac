"""Operating `callserver run`: SIGHUP reload, TCP flood, bad UDP, IPv6, the make-run config."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.default_plan import write_default_plan
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    SippResult,
    free_port,
    launch,
    run_sipp,
    start_server,
    start_server_on,
    stat_value,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "callserver.yaml"
FLOOD_BYTES = 10 * 1024 * 1024
FLOOD_CHUNK = 64 * 1024
_branches = itertools.count(1)


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Stop ``server`` (SIGTERM, bounded wait) however the test ends."""
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.stop()


def assert_calls_ok(result: SippResult, calls: int) -> None:
    """SIPp exited 0 with ``calls`` successful calls and none failed."""
    assert result.returncode == 0, result.output[-3000:]
    assert stat_value(result, "SuccessfulCall(C)") == calls
    assert stat_value(result, "FailedCall(C)") == 0


def uac(sipp: str, tmp_path: Path, port: int, calls: int, transport: str = "u1") -> None:
    """SIPp's built-in uac places ``calls`` calls at 20/s and every one succeeds."""
    result = run_sipp(
        sipp,
        tmp_path,
        port,
        "-sn",
        "uac",
        "-m",
        str(calls),
        "-r",
        "20",
        timeout=30,
        transport=transport,
    )
    assert_calls_ok(result, calls)


def options(local: tuple[str, int], host: str, port: int, transport: str, extra: str = "") -> bytes:
    """An OPTIONS request from ``local`` to host:port (RFC 3261 §11), IPv6 hosts bracketed;
    ``extra`` is added as header lines (each ending in CRLF)."""
    here = f"[{local[0]}]" if ":" in local[0] else local[0]
    there = f"[{host}]" if ":" in host else host
    n = next(_branches)
    return (
        f"OPTIONS sip:probe@{there}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport.upper()} {here}:{local[1]};branch=z9hG4bKops{n}\r\n"
        f"From: <sip:ops@{here}>;tag=ops{n}\r\n"
        f"To: <sip:probe@{there}>\r\n"
        f"Call-ID: ops-{n}@{here}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def ask_options(host: str, port: int, transport: str, timeout: float = 5.0, extra: str = "") -> str:
    """Send one OPTIONS over ``transport`` from a fresh socket; return the response text."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    with socket.socket(family, kind) as sock:
        sock.settimeout(timeout)
        if transport == "udp":
            sock.bind((host, 0))
            request = options(sock.getsockname()[:2], host, port, "udp", extra)
            sock.sendto(request, (host, port))
            return sock.recv(65535).decode()
        sock.connect((host, port))
        sock.sendall(options(sock.getsockname()[:2], host, port, "tcp", extra))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65535)
            if not chunk:
                break
            data += chunk
        return data.decode()


# -- SIGHUP ----------------------------------------------------------------------------------


def test_callserver_reload_signals_the_running_server(tmp_path: Path) -> None:
    """`callserver reload` finds the server by its data dir's pid file and makes it reload."""
    no_plans = tmp_path / "no-plans"  # no calls here: an empty dialplans directory
    no_plans.mkdir()
    with running(start_server(tmp_path, dialplans=no_plans)) as server:
        pid_file = server.data_dir / "callserver.pid"
        assert pid_file.read_text().strip() == str(server.proc.pid)
        reload = subprocess.run(
            [sys.executable, "-m", "callserver", "reload", "--data-dir", str(server.data_dir)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
        )
        assert reload.returncode == 0, reload.stderr
        assert reload.stdout.strip() == f"reload sent to process {server.proc.pid}"
        server.wait_for("config.reloaded")
        assert server.wait_for("dialplan.loaded")["plans"] == 0
    assert not pid_file.exists()  # removed when the server stopped
    missing = subprocess.run(
        [sys.executable, "-m", "callserver", "reload", "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=30,
    )
    assert missing.returncode == 1 and "no running server" in missing.stderr


def test_sighup_reload_applies_to_new_calls_and_survives_a_bad_file(
    sipp: str, tmp_path: Path
) -> None:
    """SIGHUP makes new calls use the new hangup delay; a bad file is refused and calls go on."""
    with running(start_server(tmp_path, hangup_after=30)) as server:
        path = tmp_path / "callserver.yaml"
        plan = write_default_plan(tmp_path / "dialplans", hangup_after=1)
        version = hashlib.sha256(plan.read_bytes()).hexdigest()[:12]
        server.proc.send_signal(signal.SIGHUP)
        assert server.wait_for("config.reloaded")["path"] == str(path)
        _wait_for_version(server, version)
        # The scenario waits 15 s for the BYE: only the reloaded 1 s delay can pass it.
        bye = ("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-m", "2", "-r", "5")
        assert_calls_ok(run_sipp(sipp, tmp_path, server.port, *bye, timeout=30), 2)

        path.write_text("calls:\n  drain_timeout: -1\n")
        server.proc.send_signal(signal.SIGHUP)
        failed = server.wait_for("config.reload_failed")
        assert failed["errors"] == [
            f"{path}:2: calls.drain_timeout: Input should be greater than or equal to 0"
        ]
        uac(sipp, tmp_path, server.port, 5)
        assert_calls_ok(run_sipp(sipp, tmp_path, server.port, *bye, timeout=30), 2)
        assert server.proc.poll() is None


def _wait_for_version(server: ServerProcess, version: str, timeout: float = 10.0) -> None:
    """Block until a ``dialplan.loaded`` line puts ``version`` of default.yaml in force."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in server.events("dialplan.loaded"):
            versions = line.get("versions")
            if isinstance(versions, dict) and versions.get("default") == version:
                return
        time.sleep(0.02)
    raise AssertionError(f"default.yaml {version} never loaded:\n" + "\n".join(server.raw[-40:]))


# -- TCP flood -------------------------------------------------------------------------------


def flood_once(port: int) -> str:
    """One connection sending an endless INVITE header line (up to 10 MB); how it ended.

    ``"cut"``: the server closed or reset it; ``"stalled"``: it stopped reading without
    closing; ``"open"``: all 10 MB went through and the connection stayed up.
    """
    with socket.create_connection((HOST, port), timeout=5) as sock:
        try:
            sock.sendall(b"INVITE sip:a@b SIP/2.0\r\nX: ")
            for _ in range(FLOOD_BYTES // FLOOD_CHUNK):
                sock.sendall(b"a" * FLOOD_CHUNK)
        except TimeoutError:
            return "stalled"
        except OSError:
            return "cut"
        try:
            while sock.recv(65535):
                pass
        except TimeoutError:
            return "open"
        except OSError:
            return "cut"
        return "cut"


def flood(port: int, stop: threading.Event, outcomes: list[str]) -> None:
    """Flood connection after connection until ``stop`` (60 s at most)."""
    deadline = time.monotonic() + 60
    while not stop.is_set() and time.monotonic() < deadline:
        outcomes.append(flood_once(port))
        stop.wait(0.02)


def test_tcp_flood_is_cut_off_while_calls_go_on(
    sipp: str, server: ServerProcess, tmp_path: Path
) -> None:
    """A header that never ends gets its connection cut; OPTIONS and calls are served meanwhile."""
    stop = threading.Event()
    outcomes: list[str] = []
    flooder = threading.Thread(target=flood, args=(server.port, stop, outcomes), daemon=True)
    flooder.start()
    try:
        for _ in range(5):
            assert ask_options(HOST, server.port, "tcp").startswith("SIP/2.0 200 ")
        uac(sipp, tmp_path, server.port, 20, transport="t1")
        uac(sipp, tmp_path, server.port, 20, transport="u1")
    finally:
        stop.set()
        flooder.join(timeout=30)
    assert not flooder.is_alive()
    assert outcomes
    assert set(outcomes) == {"cut"}, outcomes
    closed = server.wait_for("sip.connection_closed")
    assert "longer than" in str(closed["reason"])
    assert server.proc.poll() is None


# -- malformed UDP ---------------------------------------------------------------------------


def test_malformed_udp_gets_400_or_nothing(
    sipp: str, server: ServerProcess, tmp_path: Path
) -> None:
    """Garbage is dropped unanswered, an INVITE with a negative Content-Length gets 400."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.bind((HOST, 0))
        here = sock.getsockname()[1]
        sock.sendto(b"\x00\xff\xfe not sip at all \r\n\r\n", (HOST, server.port))
        invite = (
            f"INVITE sip:100@{HOST}:{server.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{here};branch=z9hG4bKnegcl\r\n"
            f"From: <sip:ops@{HOST}>;tag=neg\r\n"
            f"To: <sip:100@{HOST}>\r\n"
            f"Call-ID: negative-length@{HOST}\r\n"
            "CSeq: 1 INVITE\r\n"
            f"Contact: <sip:ops@{HOST}:{here}>\r\n"
            "Max-Forwards: 70\r\n"
            "Content-Length: -5\r\n\r\n"
        ).encode()
        sock.sendto(invite, (HOST, server.port))
        # Datagrams from one socket are handled in order: an answer to the garbage came first.
        response = sock.recv(65535).decode()
    assert response.startswith("SIP/2.0 400 "), response
    assert f"Call-ID: negative-length@{HOST}" in response
    dropped = server.wait_for("sip.message_dropped")
    assert dropped["peer"] == HOST
    uac(sipp, tmp_path, server.port, 3)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_nul_in_a_header_value_gets_400_and_stays_out_of_the_logs(
    server: ServerProcess, transport: str
) -> None:
    """A NUL or ESC in a header value gets 400 over UDP and TCP; no log line carries it raw."""
    for extra in ("Subject: hello\x00world\r\n", "User-Agent: x\x1b[2Jy\r\n"):
        response = ask_options(HOST, server.port, transport, extra=extra)
        assert response.startswith("SIP/2.0 400 "), response
        assert "control character" in response
        assert "\x00" not in response and "\x1b" not in response
    assert ask_options(HOST, server.port, transport).startswith("SIP/2.0 200 ")
    assert server.stop() == 0
    assert not any("\x00" in line or "\x1b" in line for line in server.raw)


# -- IPv6 ------------------------------------------------------------------------------------


def free_port_v6() -> int:
    """A port free for UDP and TCP on ::1; skips the test when IPv6 loopback is unusable."""
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6 support")
    try:
        for _ in range(50):
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as udp:
                udp.bind(("::1", 0))
                port = int(udp.getsockname()[1])
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as tcp:
                    try:
                        tcp.bind(("::1", port))
                    except OSError:
                        continue
                    return port
    except OSError as exc:
        pytest.skip(f"cannot bind the IPv6 loopback ::1: {exc}")
    raise RuntimeError("no free port pair found on ::1")


def sipp_v6(sipp: str, tmp_path: Path, port: int, calls: int, transport: str) -> list[str]:
    """The SIPp command line for ``calls`` built-in uac calls from ::1 to [::1]:port."""
    local = free_port_v6()
    return [
        sipp,
        f"[::1]:{port}",
        "-i",
        "::1",
        "-p",
        str(local),
        "-mp",
        str(free_port_v6()),
        "-sn",
        "uac",
        "-m",
        str(calls),
        "-r",
        "20",
        "-t",
        transport,
        "-nostdin",
        "-timeout",
        "30s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(tmp_path / f"sipp6-{local}.csv"),
    ]


def run_sipp_v6(sipp: str, tmp_path: Path, port: int, calls: int, transport: str) -> SippResult:
    """Run SIPp's built-in uac over IPv6 loopback; bounded in time."""
    cmd = sipp_v6(sipp, tmp_path, port, calls, transport)
    proc = subprocess.run(
        cmd, capture_output=True, text=True, errors="replace", timeout=60, cwd=tmp_path
    )
    stats = Path(cmd[-1]).read_text() if Path(cmd[-1]).exists() else ""
    return SippResult(proc.returncode, proc.stdout + proc.stderr, stats)


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_ipv6_loopback_calls_succeed(sipp: str, tmp_path: Path, transport: str) -> None:
    """A server on [::1] answers OPTIONS and completes SIPp's uac calls over IPv6."""
    port = free_port_v6()
    listen = [f"udp:[::1]:{port}", f"tcp:[::1]:{port}"]
    with running(start_server_on(tmp_path, listen)) as server:
        assert server.wait_for("server.listening")["addresses"] == listen
        assert ask_options("::1", port, "udp" if transport == "u1" else "tcp").startswith(
            "SIP/2.0 200 "
        )
        assert_calls_ok(run_sipp_v6(sipp, tmp_path, port, 10, transport), 10)


def test_dual_stack_answers_on_every_socket(sipp: str, tmp_path: Path) -> None:
    """With IPv4 and IPv6 listeners, each replies from its own socket, TCP streams never mixed."""
    port6 = free_port_v6()
    port4 = free_port()
    listen = [
        f"udp:{HOST}:{port4}",
        f"tcp:{HOST}:{port4}",
        f"udp:[::1]:{port6}",
        f"tcp:[::1]:{port6}",
    ]
    with running(start_server_on(tmp_path, listen)) as server:
        for host, port in ((HOST, port4), ("::1", port6)):
            for transport in ("udp", "tcp"):
                response = ask_options(host, port, transport)
                assert response.startswith("SIP/2.0 200 "), (host, transport, response)
        # Both listeners number their first connection 1: run a TCP caller on each at once.
        cmd = sipp_v6(sipp, tmp_path, port6, 20, "t1")
        v6 = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        try:
            uac(sipp, tmp_path, port4, 20, transport="t1")
            output, _ = v6.communicate(timeout=60)
        finally:
            if v6.poll() is None:
                v6.kill()
                v6.wait(timeout=10)
        assert_calls_ok(SippResult(v6.returncode, output, Path(cmd[-1]).read_text()), 20)
        assert not server.events("transport.connect_failed")


# -- the make-run configuration --------------------------------------------------------------


def test_shipped_config_serves_200_calls_at_100_per_second(sipp: str, tmp_path: Path) -> None:
    """`callserver run` on config/callserver.yaml, port moved, completes 200 calls at 100/s.

    It runs in the repository, as `make run` does: the config names config/trunks.yaml and
    prompts/ relative to it; only the data directory is moved to a temporary one.
    """
    port = free_port()
    args = ["run", "--config", str(SHIPPED), "--sip-listen", f"{HOST}:{port}"]
    args += ["--data-dir", str(tmp_path / "var")]
    with running(launch(args, port, tmp_path / "var", cwd=SHIPPED.parents[1])) as server:
        listening = server.wait_for("server.listening")
        assert listening["addresses"] == [f"udp:{HOST}:{port}", f"tcp:{HOST}:{port}"]
        result = run_sipp(sipp, tmp_path, port, "-sn", "uac", "-m", "200", "-r", "100", timeout=60)
        assert_calls_ok(result, 200)
        assert server.stop() == 0


def test_address_in_use_exits_1_with_a_message(tmp_path: Path) -> None:
    """`callserver run` on a port another socket holds exits 1 naming the address, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind((HOST, 0))
        port = holder.getsockname()[1]
        args = ["run", "--config", str(SHIPPED), "--sip-listen", f"udp:{HOST}:{port}"]
        result = subprocess.run(
            [sys.executable, "-m", "callserver", *args],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=30,
            cwd=SHIPPED.parents[1],
            env={k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")},
        )
    assert result.returncode == 1
    assert f"cannot listen on udp:{HOST}:{port}: Address already in use" in result.stderr
    assert "None" not in result.stderr
    assert "Traceback" not in result.stderr


def test_start_server_tries_another_port_when_its_port_was_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port taken between finding it free and the server's bind costs one more try, no test."""
    from tests.e2e import conftest

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind((HOST, 0))
        taken = holder.getsockname()[1]
        ports = iter([taken, free_port()])
        monkeypatch.setattr(conftest, "free_port", lambda: next(ports))
        server = start_server(tmp_path)
        try:
            assert server.port != taken
            assert ask_options(HOST, server.port, "udp").startswith("SIP/2.0 200 ")
        finally:
            server.stop()
