"""Redis, PostgreSQL and Kamailio as processes of a test, each on a free loopback port.

Each starts from Debian's packages (``make test`` installs them) in a temp dir of its own, in
the foreground, so a test can stop, kill or restart it and several tests can run side by side.
A missing binary fails the test with the install hint; it never skips.

PostgreSQL refuses to run as root: under root its data dir belongs to the ``postgres`` user
the Debian package creates, and its processes run as that user. pytest's own temp dirs are
private to root, so the data dir is a temp dir of its own under /tmp, removed on stop.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import pytest

from tests.e2e.conftest import HOST, free_port

__all__ = ["Kamailio", "Postgres", "Redis", "port_bound"]

_HINTS = {
    "redis-server": "redis-server not found: run `make test` or apt-get install redis-server",
    "initdb": "PostgreSQL not found: run `make test` or apt-get install postgresql",
    "kamailio": "kamailio not found: run `make test` or apt-get install kamailio",
}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(_HINTS[name])
    return path


def port_bound(port: int, *, udp: bool) -> bool:
    """True when some process has bound ``port`` on 127.0.0.1 (UDP or TCP)."""
    kind = socket.SOCK_DGRAM if udp else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return True
    return False


def _wait(predicate: object, proc: subprocess.Popen[bytes], what: str, timeout: float) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{what} did not start (exit code {proc.poll()})")


class _Process:
    """A child process that the context manager stops (SIGTERM, then SIGKILL)."""

    proc: subprocess.Popen[bytes] | None = None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM; SIGKILL after ``timeout``)."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)

    def kill(self) -> None:
        """SIGKILL the process at once, as a machine that loses power."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _pong(port: int) -> bool:
    """True when a Redis on ``port`` of 127.0.0.1 answers PING (bound is not yet listening,
    and a port another process holds is not ours)."""
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Redis(_Process):
    """``redis-server`` on a free port, nothing saved to disk: ``url`` reaches it."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()  # free for TCP, Redis's (and UDP)
        self.workdir.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Redis:
        """Start (or start again, on the same port, empty) and wait until it listens."""
        command = [_binary("redis-server"), "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.workdir)]
        log = (self.workdir / "redis.log").open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        proc = self.proc
        _wait(lambda: proc.poll() is None and _pong(self.port), proc, "redis-server", timeout)
        return self

    def __enter__(self) -> Redis:
        return self.start()


class Postgres(_Process):
    """A PostgreSQL server of its own (``initdb`` in a temp dir) on a free port; its
    superuser is ``callserver`` with trust authentication on loopback: ``dsn`` reaches the
    ``callserver`` database."""

    def __init__(self) -> None:
        self.port = free_port(both=False)
        self.datadir = Path(tempfile.mkdtemp(prefix="callserver-pg-")) / "data"
        self._bin = Path(_postgres_bin())
        self._initdb()

    @property
    def dsn(self) -> str:
        """``postgresql://callserver@127.0.0.1:PORT/callserver``."""
        return f"postgresql://callserver@{HOST}:{self.port}/callserver"

    def _as_owner(self) -> dict[str, object]:
        """Popen arguments that run a command as the data dir's owner (``postgres`` as root)."""
        if os.geteuid() != 0:
            return {}
        return {"user": "postgres", "group": "postgres", "extra_groups": []}

    def _initdb(self) -> None:
        self.datadir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.datadir.parent, "postgres", "postgres")
            shutil.chown(self.datadir, "postgres", "postgres")
        command = [str(self._bin / "initdb"), "-D", str(self.datadir), "-U", "callserver"]
        command += ["-A", "trust", "--no-sync", "-E", "UTF8", "--locale", "C"]
        done = subprocess.run(command, capture_output=True, check=False, **self._as_owner())  # type: ignore[call-overload]
        assert done.returncode == 0, done.stderr.decode(errors="replace")

    def start(self, timeout: float = 30.0) -> Postgres:
        """Start the server (again, on the same data) and wait until it takes connections."""
        command = [str(self._bin / "postgres"), "-D", str(self.datadir), "-p", str(self.port)]
        command += ["-k", str(self.datadir), "-c", f"listen_addresses={HOST}", "-c", "fsync=off"]
        log = (self.datadir.parent / "postgres.log").open("ab")
        self.proc = subprocess.Popen(  # type: ignore[call-overload]
            command, stdout=log, stderr=subprocess.STDOUT, **self._as_owner()
        )
        log.close()
        _wait(self._ready, self.proc, "postgres", timeout)
        if not self._database_exists():
            self._psql("postgres", "CREATE DATABASE callserver")
        return self

    def _ready(self) -> bool:
        done = subprocess.run(
            [str(self._bin / "pg_isready"), "-h", HOST, "-p", str(self.port), "-q"], check=False
        )
        return done.returncode == 0

    def _database_exists(self) -> bool:
        query = "SELECT 1 FROM pg_database WHERE datname = 'callserver'"
        return self._psql("postgres", query).strip() == "1"

    def _psql(self, database: str, sql: str) -> str:
        """The output of ``sql`` run by psql in ``database`` (unaligned, tuples only)."""
        command = [str(self._bin / "psql"), "-h", HOST, "-p", str(self.port), "-U", "callserver"]
        command += ["-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def query(self, sql: str) -> list[list[str]]:
        """The rows of ``sql`` in the ``callserver`` database, each as its columns' text."""
        lines = self._psql("callserver", sql).splitlines()
        return [line.split("|") for line in lines]

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def _postgres_bin() -> str:
    """The directory of Debian's PostgreSQL server binaries (the newest version installed)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return str(Path(found[-1]).parent)
    return str(Path(_binary("initdb")).resolve().parent)


class Kamailio(_Process):
    """Kamailio in the foreground (``-DD -E``) with ``config`` (the text of a kamailio.cfg)
    written to ``workdir``; ``port`` is the UDP and TCP port the config must listen on."""

    def __init__(self, workdir: Path, config: str, port: int) -> None:
        self.workdir = workdir
        self.port = port
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = workdir / "kamailio.cfg"
        self.config.write_text(config)
        self.log = workdir / "kamailio.log"

    def start(self, timeout: float = 10.0) -> Kamailio:
        """Start and wait until its UDP port is bound; fail with its log if it exits."""
        command = [_binary("kamailio"), "-f", str(self.config), "-DD", "-E"]
        command += ["-Y", str(self.workdir), "-P", str(self.workdir / "kamailio.pid")]
        log = self.log.open("ab")
        self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        try:
            _wait(lambda: port_bound(self.port, udp=True), self.proc, "kamailio", timeout)
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}:\n{self.log.read_text()[-3000:]}") from None
        return self

    def __enter__(self) -> Kamailio:
        return self.start()
