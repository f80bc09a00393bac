"""Helpers of the central CDR store's tests: records spooled by the real ``CdrSpool``, a
feeder over a data dir, PostgreSQL stopped the way an outage stops it, and its rows read back."""

from __future__ import annotations

import signal
from collections.abc import Iterable
from pathlib import Path

from callserver.cdr.feeder import CHECKPOINT, CdrFeeder
from callserver.cdr.record import CdrRecord
from callserver.cdr.spool import CdrSpool
from tests.cdr import make_record
from tests.cluster.peers import Postgres

NODE = "node-a"


def spool(data_dir: Path, records: Iterable[CdrRecord]) -> None:
    """Write ``records`` through a ``CdrSpool`` on ``data_dir/cdr`` (fsync'd), then close it."""
    with CdrSpool(data_dir / "cdr") as writer:
        futures = [writer.write(record) for record in records]
        assert all(future.result(timeout=30) for future in futures)


def numbered(first: int, count: int, **fields: object) -> list[CdrRecord]:
    """``count`` answered legs ``u<first>``... (``tests.cdr.make_record``) with ``fields``."""
    return [make_record(n, **fields) for n in range(first, first + count)]


def feeder_of(
    data_dir: Path, dsn: str, *, batch: int = 200, interval: float = 1.0, backoff: float = 30.0
) -> CdrFeeder:
    """A feeder of ``data_dir``'s spool as the server makes it (``cluster.cdrs``)."""
    return CdrFeeder(
        data_dir / "cdr",
        dsn,
        NODE,
        checkpoint=data_dir / CHECKPOINT,
        batch=batch,
        interval=interval,
        backoff=backoff,
    )


def stop_fast(postgres: Postgres) -> None:
    """Stop PostgreSQL as an outage does: its fast shutdown (SIGINT) ends the sessions of
    connected clients; the smart one (SIGTERM, ``Postgres.stop``) would wait for them."""
    proc, postgres.proc = postgres.proc, None
    assert proc is not None
    proc.send_signal(signal.SIGINT)
    proc.wait(30)


def central_uuids(postgres: Postgres) -> list[str]:
    """Every row's uuid in the central ``cdr`` table, in the order stored (one per row);
    none before a feeder made the table."""
    if postgres.query("SELECT to_regclass('cdr') IS NULL") == [["t"]]:
        return []
    return [row[0] for row in postgres.query("SELECT uuid FROM cdr ORDER BY id")]
