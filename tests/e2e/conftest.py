"""End-to-end fixtures: a real ``callserver run`` process and the SIPp binary, on 127.0.0.1 only."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.default_plan import write_default_plan

SCENARIOS = Path(__file__).parent / "scenarios"
PROMPTS = Path(__file__).parents[2] / "prompts"
TARIFFS = Path(__file__).parents[2] / "config" / "tariffs.yaml"
HOST = "127.0.0.1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e carries the e2e marker."""
    for item in items:
        if "tests/e2e" in str(item.path):
            item.add_marker(pytest.mark.e2e)


# A port found free can be taken by another process (a SIPp of a parallel test, any ephemeral
# bind) before the server binds it: the server then exits with "cannot listen"; try another.
_LISTEN_ATTEMPTS = 3


class PortTaken(AssertionError):
    """The server could not bind the port it was given: another process took it first."""


def free_port(*, both: bool = True) -> int:
    """A port free for UDP (and TCP when ``both``) on 127.0.0.1, left unbound."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = udp.getsockname()[1]
            if not both:
                return int(port)
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((HOST, port))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no free port pair found")


def media_port() -> int:
    """A SIPp media port (``-mp``) on 127.0.0.1: SIPp binds it and the next three (RTCP, then
    video RTP and RTCP), so all four are free now (left unbound)."""
    for _ in range(50):
        with contextlib.ExitStack() as held:
            first = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
            first.bind((HOST, 0))
            base = int(first.getsockname()[1])
            if base > 65532:
                continue
            try:
                for port in range(base + 1, base + 4):
                    held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)).bind(
                        (HOST, port)
                    )
            except OSError:
                continue
            return base
    raise RuntimeError("no four free ports in a row found")


@pytest.fixture(scope="session")
def sipp() -> str:
    """Path of the sipp binary (installed by `make test` from Debian's sip-tester)."""
    path = shutil.which("sipp")
    if path is None:
        pytest.fail(
            "sipp not found: run `make test` (installs sip-tester) or apt-get install sip-tester"
        )
    return path


@dataclass
class ServerProcess:
    """A running `callserver run` with its log lines collected."""

    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    lines: list[dict[str, object]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def events(self, name: str) -> list[dict[str, object]]:
        """Log lines whose event is ``name``."""
        return [line for line in self.lines if line.get("event") == name]

    def wait_for(self, name: str, timeout: float = 10.0) -> dict[str, object]:
        """Block until a log line with event ``name`` appears."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if found:
                return found[0]
            if self.proc.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no {name!r} log line; server output:\n" + "\n".join(self.raw[-40:]))

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait until it exited and its last log line is read; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        if self.reader is not None:
            self.reader.join(timeout=timeout)
        return code


def _reader(server: ServerProcess) -> None:
    assert server.proc.stdout is not None
    with server.proc.stdout:  # closed at EOF, not left to the garbage collector
        for text in server.proc.stdout:
            server.raw.append(text.rstrip())
            with contextlib.suppress(json.JSONDecodeError):
                server.lines.append(json.loads(text))


LOCAL_TRUNK = {"trunks": {"test": {"match": ["127.0.0.1", "::1"]}}}


def write_trunks(tmp_path: Path, trunks: dict[str, object] | None) -> str:
    """Write a trunks file (default: one trunk for 127.0.0.1 and ::1, no limits)."""
    path = tmp_path / "trunks.yaml"
    path.write_text(yaml.safe_dump(LOCAL_TRUNK if trunks is None else trunks))
    return str(path)


def plan_dir(tmp_path: Path, number: str, plan: str) -> Path:
    """A dialplan directory in ``tmp_path`` holding ``plan`` (YAML text) for ``number``."""
    directory = tmp_path / "dialplans"
    directory.mkdir()
    (directory / f"{number}.yaml").write_text(plan)
    return directory


def start_server(
    tmp_path: Path,
    *,
    media: dict[str, object] | None = None,
    trunks: dict[str, object] | None = None,
    tariffs: Path = TARIFFS,
    dialplans: Path | None = None,
    dns: dict[str, object] | None = None,
    t1: float = 0.5,
    blacklist: Path | None = None,
    sip: dict[str, object] | None = None,
    overload: dict[str, object] | None = None,
    registrar: dict[str, object] | None = None,
    voicemail: dict[str, object] | None = None,
    admin: dict[str, object] | None = None,
    cluster: dict[str, object] | None = None,
    ring: float = 0.0,
    hangup_after: float = 30.0,
    loop: bool = False,
    env: dict[str, str] | None = None,
    **calls: object,
) -> ServerProcess:
    """Start `callserver run` on a free port with ``calls`` (``media``, ``trunks``, ``dns``,
    ``sip``, ``overload``, ``registrar``, ``voicemail``, ``admin``, ``cluster``) settings;
    the admin API listens on a free port (its ``admin.listening`` line names it).

    ``dialplans`` is the dialplan directory (default: one in ``tmp_path`` holding only the
    default plan of ``tests.default_plan``: ``ring`` s of 180 before the answer, the greeting
    (repeated with ``loop``), BYE ``hangup_after`` s after the answer); ``t1`` the SIP timer
    T1 (final answers to an INVITE are retransmitted for 64*T1 until their ACK); ``blacklist``
    the global blacklist; ``env`` variables added to the server's environment.
    """
    if dialplans is None:
        directory = tmp_path / "dialplans"
        write_default_plan(directory, ring=ring, hangup_after=hangup_after, loop=loop)
    for attempt in range(_LISTEN_ATTEMPTS):
        port = free_port()
        config = {
            "trunks": write_trunks(tmp_path, trunks),
            "centrex": str(tmp_path / "centrex.yaml"),  # none: no groups of the shipped file
            "tariffs": str(tariffs),
            "dialplans": str(dialplans or tmp_path / "dialplans"),
            "sip": {
                "listen": [f"udp:{HOST}:{port}", f"tcp:{HOST}:{port}"],
                "t1": t1,
                **(sip or {}),
            },
            "media": {"prompts_dir": str(PROMPTS), **(media or {})},
            "calls": {"drain_timeout": 2, **calls},
            "dns": dns or {},
            "overload": overload or {},
            "registrar": registrar or {},
            "voicemail": voicemail or {},
            "data_dir": str(tmp_path / "var"),
            "log_format": "json",
            "log_level": "info",
            "admin": {"listen": f"{HOST}:0", **(admin or {})},
            "cluster": cluster or {},
        }
        if blacklist is not None:
            config["blacklist"] = str(blacklist)
        path = tmp_path / "callserver.yaml"
        path.write_text(yaml.safe_dump(config))
        try:
            return launch(["run", "--config", str(path)], port, tmp_path / "var", env=env)
        except PortTaken:
            if attempt == _LISTEN_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """`callserver run` with the default plan only (answer at once, BYE after 30 s)."""
    proc = start_server(tmp_path)
    yield proc
    if proc.proc.poll() is None:
        proc.stop()


@dataclass
class SippResult:
    """What a SIPp run returned: exit code (0 = every call succeeded) and its output."""

    returncode: int
    output: str
    stats: str


def run_sipp(
    sipp: str,
    tmp_path: Path,
    target_port: int,
    *args: str,
    timeout: float = 60.0,
    transport: str = "u1",
    local_port: int | None = None,
) -> SippResult:
    """Run SIPp against 127.0.0.1:``target_port`` from ``local_port`` (default: a free one);
    bounded in time. A port found free that another process took before SIPp bound it makes
    SIPp stop before it sends anything: it is run again on other free ports."""
    for _attempt in range(_BIND_ATTEMPTS):
        local = local_port or free_port(both=transport.startswith("t"))
        result = _sipp_once(sipp, tmp_path, target_port, local, args, timeout, transport)
        if _UNBOUND not in result.output:
            break
    return result


_BIND_ATTEMPTS = 3
_UNBOUND = "(Address already in use)"  # SIPp: "Unable to bind ... errno = 98 (Address ...)"


def _sipp_once(
    sipp: str,
    tmp_path: Path,
    target_port: int,
    local: int,
    args: tuple[str, ...],
    timeout: float,
    transport: str,
) -> SippResult:
    media = media_port()
    stat_file = tmp_path / f"sipp-{local}.csv"
    cmd = [
        sipp,
        f"{HOST}:{target_port}",
        *("-i", HOST, "-p", str(local), "-mp", str(media), "-t", transport, "-nostdin"),
        *("-timeout", f"{int(timeout)}s", "-timeout_error", "-trace_stat", "-stf", str(stat_file)),
        *("-trace_err", "-error_file", str(tmp_path / f"sipp-{local}-errors.log")),
        *args,
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        errors="replace",  # SIPp quotes stray datagrams it discarded (an RTCP packet's bytes)
        timeout=timeout + 30,
        cwd=tmp_path,
    )
    stats = stat_file.read_text() if stat_file.exists() else ""
    return SippResult(proc.returncode, proc.stdout + proc.stderr, stats)


def run_scenario(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    scenario: str,
    *args: str,
    timeout: float = 30.0,
) -> SippResult:
    """Run SIPp with the scenario file ``scenario`` of tests/e2e/scenarios against ``server``."""
    return run_sipp(
        sipp, tmp_path, server.port, "-sf", str(SCENARIOS / scenario), *args, timeout=timeout
    )


@contextlib.contextmanager
def stopped_on_exit(server: ServerProcess) -> Iterator[ServerProcess]:
    """``server`` for the block, stopped when the block ends, however it ends."""
    try:
        yield server
    finally:
        server.stop()


def stat_value(result: SippResult, column: str) -> int:
    """The last row's value of ``column`` in SIPp's -trace_stat CSV."""
    rows = [row.split(";") for row in result.stats.strip().splitlines()]
    assert len(rows) >= 2, f"no SIPp statistics:\n{result.output[-2000:]}"
    header = rows[0]
    return int(rows[-1][header.index(column)])


def exported_cdrs(data_dir: Path) -> list[dict[str, object]]:
    """The CDRs in ``data_dir``, read back with `callserver cdr export` (JSON lines)."""
    proc = subprocess.run(
        [sys.executable, "-m", "callserver", "cdr", "export", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def launch(
    args: list[str],
    port: int,
    data_dir: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``python -m callserver ARGS`` without CALLSERVER_* variables (with ``env``'s);
    wait until it listens. Its admin API listens on a free port unless ``env`` says where."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
    clean["CALLSERVER_ADMIN__LISTEN"] = f"{HOST}:0"  # never the shared default, 8080
    proc = subprocess.Popen(
        [sys.executable, "-m", "callserver", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**clean, **(env or {})},
        cwd=cwd,
    )
    server = ServerProcess(proc=proc, port=port, data_dir=data_dir)
    server.reader = threading.Thread(target=_reader, args=(server,), daemon=True)
    server.reader.start()
    try:
        # Generous: a loaded machine (parallel tests, a benchmark beside) can take seconds
        # to import and load a server; only a server that never listens waits it out.
        server.wait_for("server.listening", timeout=30.0)
    except AssertionError as exc:
        server.stop()
        if any("cannot listen" in line for line in server.raw):
            raise PortTaken(str(exc)) from None
        raise
    return server


def start_server_on(tmp_path: Path, listen: list[str], **calls: object) -> ServerProcess:
    """Start `callserver run` listening on ``listen`` (``udp:[::1]:5062`` ...) with ``calls``
    and the default plan only (as ``start_server``).

    ``ServerProcess.port`` is the first address's port.
    """
    config = {
        "trunks": write_trunks(tmp_path, None),
        "centrex": str(tmp_path / "centrex.yaml"),
        "tariffs": str(TARIFFS),
        "dialplans": str(write_default_plan(tmp_path / "dialplans").parent),
        "sip": {"listen": listen, "t1": 0.5},
        "media": {"prompts_dir": str(PROMPTS)},
        "calls": {"drain_timeout": 2, **calls},
        "data_dir": str(tmp_path / "var"),
        "log_format": "json",
        "log_level": "info",
        "admin": {"listen": f"{HOST}:0"},
    }
    path = tmp_path / "callserver.yaml"
    path.write_text(yaml.safe_dump(config))
    port = int(listen[0].rpartition(":")[2])
    return launch(["run", "--config", str(path)], port, tmp_path / "var")


def start_uas(
    sipp: str, tmp_path: Path, *args: str, port: int | None = None
) -> tuple[subprocess.Popen[str], int]:
    """SIPp as a called party on ``port`` (default: a free one, another if a test running
    beside took it first) of 127.0.0.1 (one call, 30 s at most)."""

    def command(local: int) -> list[str]:
        return [
            sipp,
            *("-i", HOST, "-p", str(local), "-mp", str(media_port())),
            *("-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"),
            *args,
        ]

    return popen_bound(command, tmp_path, port)


def popen_sipp(cmd: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    """SIPp started with its output (stdout and stderr) to read as text."""
    return subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        cwd=tmp_path,
    )


def popen_bound(
    command: Callable[[int], list[str]], tmp_path: Path, port: int | None = None
) -> tuple[subprocess.Popen[str], int]:
    """SIPp listening on ``port`` (default: one from ``free_port``): started again, on
    another free port unless ``port`` is given, when it exits at once because a test running
    beside bound one of its ports (SIP or media: ``command`` picks the media port) between the
    two."""
    for _ in range(_BIND_ATTEMPTS - 1):
        local = port or free_port(both=False)
        proc = popen_sipp(command(local), tmp_path)
        if not _unbound(proc):
            return proc, local
    local = port or free_port(both=False)
    return popen_sipp(command(local), tmp_path), local


def _unbound(proc: subprocess.Popen[str], settle: float = 0.3) -> bool:
    """True when SIPp exited within ``settle`` seconds for want of its port. Another early
    exit's output is printed, so the failing test shows it."""
    try:
        proc.wait(timeout=settle)
    except subprocess.TimeoutExpired:
        return False
    output = proc.stdout.read() if proc.stdout is not None else ""
    if _UNBOUND in output:
        return True
    print(output)
    return False


@contextlib.contextmanager
def uas_leg(sipp: str, tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """``start_uas`` for the block: the SIPp uas and its port, killed after it if still running."""
    uas, port = start_uas(sipp, tmp_path, *args)
    try:
        yield uas, port
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.communicate()  # reaped: no process left running behind the test
