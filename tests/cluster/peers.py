"""Redis, PostgreSQL and Kamailio as processes of a test, each on a free loopback port.

The process starters are ``callserver cluster``'s own (``callserver.cluster.processes``);
here each gets a free port and a directory of the test's, starts on ``with``, and a missing
program fails the test with its install hint (it never skips).

pytest's own temp dirs are private to root, and PostgreSQL runs as the ``postgres`` user
under root: its data dir is a temp dir of its own under /tmp, removed on stop.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from callserver.cluster.processes import (
    KamailioServer,
    MissingProgram,
    PostgresServer,
    RedisServer,
    free_port,
    port_bound,
)

__all__ = ["Kamailio", "Postgres", "Redis", "hinted", "port_bound"]


@contextlib.contextmanager
def hinted() -> Iterator[None]:
    """A missing program fails the test with the hint that installs it."""
    try:
        yield
    except MissingProgram as exc:
        pytest.fail(str(exc))


class Redis(RedisServer):
    """``redis-server`` on a free port, nothing saved to disk: ``url`` reaches it."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir, free_port())

    def start(self, timeout: float = 10.0) -> Redis:
        """Start (or start again, on the same port, empty) and wait until it listens."""
        with hinted():
            return super().start(timeout)

    def __enter__(self) -> Redis:
        return self.start()


class Postgres(PostgresServer):
    """A PostgreSQL server of its own (``initdb`` in a temp dir) on a free port; its
    superuser is ``callserver`` with trust authentication on loopback: ``dsn`` reaches the
    ``callserver`` database."""

    def __init__(self) -> None:
        with hinted():
            datadir = Path(tempfile.mkdtemp(prefix="callserver-pg-")) / "data"
            super().__init__(datadir, free_port(both=False))
            self.initdb()

    def query(self, sql: str) -> list[list[str]]:
        """The rows of ``sql`` in the ``callserver`` database, each as its columns' text."""
        return [line.split("|") for line in self.psql("callserver", sql).splitlines()]

    def __enter__(self) -> Postgres:
        # The port was free when chosen, before initdb: another process may have taken it.
        for _ in range(2):
            try:
                return self.start()
            except RuntimeError as exc:
                if "Address already in use" not in str(exc):
                    raise
                self.port = free_port(both=False)
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


class Kamailio(KamailioServer):
    """Kamailio in the foreground (``-DD -E``) with ``config`` (the text of a kamailio.cfg)
    written to ``workdir``; ``port`` is the UDP and TCP port the config must listen on."""

    def __init__(self, workdir: Path, config: str, port: int) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        path = workdir / "kamailio.cfg"
        path.write_text(config)
        super().__init__(workdir, path, port)

    def start(self, timeout: float = 10.0) -> Kamailio:
        """Start and wait until its UDP port is bound; fail with its log if it exits."""
        with hinted():
            return super().start(timeout)

    def __enter__(self) -> Kamailio:
        return self.start()
