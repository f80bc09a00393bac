"""Redis, PostgreSQL, Kamailio and callserver nodes as child processes on loopback ports.

Each runs from Debian's packages (``make redis postgresql kamailio`` installs them) in a
directory of its own, in the foreground, so whoever started it can stop it (SIGTERM, then
SIGKILL), kill it (SIGKILL at once, as a machine that loses power) or start it again on the
same port and data. ``callserver cluster`` (``cluster.local``) starts a whole cluster with
them; the cluster tests start the ones they need.

PostgreSQL refuses to run as root: under root its data directory belongs to the ``postgres``
user the Debian package creates, and its processes run as that user.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

__all__ = [
    "Child",
    "KamailioServer",
    "MissingProgram",
    "NodeProcess",
    "PostgresServer",
    "RedisServer",
    "find_program",
    "free_port",
    "port_bound",
]

HOST = "127.0.0.1"
HINTS = {
    "redis-server": "redis-server not found: run `make redis` or apt-get install redis-server",
    "initdb": "PostgreSQL not found: run `make postgresql` or apt-get install postgresql",
    "kamailio": "kamailio not found: run `make kamailio` or apt-get install kamailio",
}


class MissingProgram(RuntimeError):
    """A program is not installed; the message says how to install it."""


def find_program(name: str) -> str:
    """The path of ``name``; MissingProgram with its install hint when it is not installed."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if path is None:
        raise MissingProgram(HINTS.get(name, f"{name} not found"))
    return path


def port_bound(port: int, *, udp: bool, host: str = HOST) -> bool:
    """True when some process has bound ``port`` on ``host`` (UDP, or TCP: a listener;
    connections left in TIME_WAIT by a server that stopped do not count)."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if not udp:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def free_port(*, both: bool = True) -> int:
    """A port free for UDP (and TCP when ``both``) on 127.0.0.1, left unbound."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((HOST, 0))
            port = int(udp.getsockname()[1])
            if not both or not port_bound(port, udp=False):
                return port
    raise RuntimeError("no free port found on 127.0.0.1")


class Child:
    """A child process, stopped when the ``with`` block ends."""

    proc: subprocess.Popen[bytes] | None = None
    name = "process"

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout`` s."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def terminate(self) -> None:
        """SIGTERM without waiting (several children stop side by side); then :meth:`stop`."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL at once."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def _spawn(self, command: list[str], log: Path, **popen: Any) -> None:
        with log.open("ab") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, **popen)

    def _wait(self, ready: Callable[[], bool], timeout: float, log: Path) -> None:
        """Wait until ``ready``; RuntimeError with the log's end when it exits or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            if self.proc is None or self.proc.poll() is not None:
                break
            time.sleep(0.05)
        code = None if self.proc is None else self.proc.poll()
        self.stop()
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{self.name} did not start (exit code {code}); {log}:\n{tail}")

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(Child):
    """``redis-server`` on ``port`` with nothing saved to disk (a restart starts empty)."""

    name = "redis-server"

    def __init__(self, workdir: Path, port: int) -> None:
        self.workdir, self.port = workdir, port
        self.log = workdir / "redis.log"
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        """Start (again, on the same port) and wait until it listens."""
        command = [find_program("redis-server"), "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        self._spawn(command, self.log)
        self._wait(lambda: _pong(self.port), timeout, self.log)
        return self


def _pong(port: int) -> bool:
    """True when a Redis on ``port`` of 127.0.0.1 answers PING (bound is not yet listening,
    and a port another process holds is not ours)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def postgres_bin() -> Path:
    """The directory of Debian's PostgreSQL server programs (the newest version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    return Path(find_program("initdb")).resolve().parent


class PostgresServer(Child):
    """A PostgreSQL server of its own in ``datadir`` (``initdb`` the first time) on ``port``;
    its superuser is ``callserver``, trusted on loopback: ``dsn`` reaches the ``callserver``
    database. Under root, ``datadir`` and its parent are given to the ``postgres`` user."""

    name = "postgres"

    def __init__(self, datadir: Path, port: int) -> None:
        self.datadir, self.port = datadir, port
        self.log = datadir.parent / "postgres.log"
        self.bin = postgres_bin()

    @property
    def dsn(self) -> str:
        """``postgresql://callserver@127.0.0.1:PORT/callserver``."""
        return f"postgresql://callserver@{HOST}:{self.port}/callserver"

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a program as the data dir's owner (``postgres`` as root)."""
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def initdb(self) -> None:
        """Make the data directory (nothing when it holds a cluster already)."""
        if (self.datadir / "PG_VERSION").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.datadir.parent, "postgres", "postgres")
            shutil.chown(self.datadir, "postgres", "postgres")
            reach = ["test", "-w", str(self.datadir)]
            if subprocess.run(reach, check=False, **self._as_owner()).returncode != 0:
                raise RuntimeError(
                    f"PostgreSQL runs as the postgres user under root, and that user cannot "
                    f"reach {self.datadir}: choose a directory every user may traverse"
                )
        command = [str(self.bin / "initdb"), "-D", str(self.datadir), "-U", "callserver"]
        command += ["-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"]
        done = subprocess.run(command, capture_output=True, check=False, **self._as_owner())
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace')}")

    def start(self, timeout: float = 30.0) -> Self:
        """Start (again, on the same data) and wait until it takes connections; the
        ``callserver`` database is made the first time."""
        self.initdb()
        command = [str(self.bin / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        command += ["-k", str(self.datadir), "-c", f"listen_addresses={HOST}", "-c", "fsync=off"]
        self._spawn(command, self.log, **self._as_owner())
        self._wait(self._ready, timeout, self.log)
        if self.psql("postgres", "SELECT 1 FROM pg_database WHERE datname = 'callserver'") != "1":
            self.psql("postgres", "CREATE DATABASE callserver")
        return self

    def _ready(self) -> bool:
        command = [str(self.bin / "pg_isready"), "-h", HOST, "-p", str(self.port), "-q"]
        return subprocess.run(command, check=False).returncode == 0

    def psql(self, database: str, sql: str) -> str:
        """The output of ``sql`` in ``database`` (unaligned, tuples only), stripped."""
        command = [str(self.bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", "callserver"]
        command += ["-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql: {done.stderr.strip()}")
        return done.stdout.strip()


class KamailioServer(Child):
    """Kamailio in the foreground (``-DD -E``) on ``config`` (a kamailio.cfg, with the
    dispatcher list it names); ``port`` is the UDP port the config listens on."""

    name = "kamailio"

    def __init__(self, workdir: Path, config: Path, port: int) -> None:
        self.workdir, self.config, self.port = workdir, config, port
        self.log = workdir / "kamailio.log"
        workdir.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 10.0) -> Self:
        """Start and wait until its UDP port is bound."""
        command = [find_program("kamailio"), "-f", str(self.config), "-DD", "-E"]
        command += ["-Y", str(self.workdir), "-P", str(self.workdir / "kamailio.pid")]
        self._spawn(command, self.log)
        self._wait(lambda: port_bound(self.port, udp=True), timeout, self.log)
        return self


class NodeProcess(Child):
    """``callserver run --config CONFIG`` with ``env`` added to the environment (the
    ``CALLSERVER_*`` settings of this node); ready once it logged ``server.listening``."""

    def __init__(self, name: str, workdir: Path, config: Path, env: Mapping[str, str]) -> None:
        self.name, self.workdir, self.config, self.env = name, workdir, config, dict(env)
        self.log = workdir / "node.log"
        workdir.mkdir(parents=True, exist_ok=True)

    _offset = 0  # the log's size when this run started

    def start(self, timeout: float = 30.0, cwd: Path | None = None) -> Self:
        """Start and wait until it listens."""
        self.launch(cwd)
        return self.ready(timeout)

    def launch(self, cwd: Path | None = None) -> None:
        """Start without waiting (several nodes start side by side); then :meth:`ready`."""
        command = [sys.executable, "-m", "callserver", "run", "--config", str(self.config)]
        clean = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        self._spawn(command, self.log, env={**clean, **self.env}, cwd=cwd)

    def ready(self, timeout: float = 30.0) -> Self:
        """Wait until the node logged ``server.listening``."""
        self._wait(lambda: b"server.listening" in self._log_since(), timeout, self.log)
        return self

    def _log_since(self) -> bytes:
        with self.log.open("rb") as log:
            log.seek(self._offset)
            return log.read()
