"""The feeder against a real PostgreSQL: a spool written by the real ``CdrSpool`` reaches the
central ``cdr`` table in batches, from its offset checkpoint, each record once, whatever
happens between the two (a torn line, a bad line, a crash after a commit, an outage)."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from callserver.cdr.central import read_central
from callserver.cdr.feeder import CHECKPOINT
from tests.cdr import DAY, events_named
from tests.cluster.central_cdrs import NODE, central_uuids, feeder_of, numbered, spool, stop_fast
from tests.cluster.peers import Postgres


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL of the test's own, started."""
    with Postgres() as server:
        yield server


def _day_file(data_dir: Path) -> Path:
    return data_dir / "cdr" / DAY


def _checkpoint(data_dir: Path) -> dict[str, int]:
    return dict(json.loads((data_dir / CHECKPOINT).read_text()))


async def _until(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.05)


async def test_records_go_in_batches_and_the_checkpoint_follows_the_commits(
    postgres: Postgres, tmp_path: Path
) -> None:
    """250 spooled records go as batches of 100, 100 and 50, each row once with its node and
    its spooled line; the checkpoint is the day file's length; a pass with nothing new sends
    nothing, and 10 more records move it on."""
    spool(tmp_path, numbered(0, 250))
    feeder = feeder_of(tmp_path, postgres.dsn, batch=100)
    await feeder.deliver(wait=20)
    stats = feeder.statistics()
    assert (stats.delivered, stats.batches, stats.duplicates, stats.up) == (250, 3, 0, True)
    assert central_uuids(postgres) == [f"u{n}" for n in range(250)]
    assert _checkpoint(tmp_path) == {DAY: _day_file(tmp_path).stat().st_size}
    first_line = _day_file(tmp_path).read_bytes().split(b"\n", 1)[0].decode()
    assert postgres.query("SELECT node, record FROM cdr WHERE uuid = 'u0'") == [[NODE, first_line]]

    await feeder.deliver(wait=20)
    assert (feeder.statistics().delivered, feeder.statistics().batches) == (250, 3)
    spool(tmp_path, numbered(250, 10))
    await feeder.deliver(wait=20)
    assert feeder.statistics().delivered == 260
    assert len(set(central_uuids(postgres))) == len(central_uuids(postgres)) == 260
    assert _checkpoint(tmp_path) == {DAY: _day_file(tmp_path).stat().st_size}
    await feeder.close()


async def test_a_line_still_being_written_waits_for_its_newline(
    postgres: Postgres, tmp_path: Path
) -> None:
    """A last line without its newline is neither sent nor counted in the backlog; once it
    ends, it goes."""
    spool(tmp_path, numbered(0, 5))
    line = numbered(5, 1)[0].to_json().encode()
    with _day_file(tmp_path).open("ab") as file:
        file.write(line[:40])
    feeder = feeder_of(tmp_path, postgres.dsn)
    await feeder.deliver(wait=20)
    assert central_uuids(postgres) == [f"u{n}" for n in range(5)]
    assert _checkpoint(tmp_path)[DAY] == _day_file(tmp_path).stat().st_size - 40
    assert (feeder.statistics().backlog_records, feeder.statistics().backlog_bytes) == (0, 0)
    with _day_file(tmp_path).open("ab") as file:
        file.write(line[40:] + b"\n")
    await feeder.deliver(wait=20)
    assert central_uuids(postgres) == [f"u{n}" for n in range(6)]
    await feeder.close()


async def test_a_line_that_is_no_record_is_skipped_counted_and_logged(
    postgres: Postgres, tmp_path: Path
) -> None:
    """A torn line ended by the next write (as ``cdr.files`` leaves one) is skipped and
    logged with its offset; the records around it go, and the offset passes it."""
    spool(tmp_path, numbered(0, 2))
    torn_at = _day_file(tmp_path).stat().st_size
    with _day_file(tmp_path).open("ab") as file:
        file.write(numbered(2, 1)[0].to_json().encode()[:50] + b"\n")
    spool(tmp_path, numbered(3, 2))
    feeder = feeder_of(tmp_path, postgres.dsn)
    with capture_logs() as logs:
        await feeder.deliver(wait=20)
    assert central_uuids(postgres) == ["u0", "u1", "u3", "u4"]
    [malformed] = events_named(logs, "cdr.central_malformed")
    assert (malformed["file"], malformed["offset"]) == (DAY, torn_at)
    assert (feeder.statistics().malformed, feeder.statistics().delivered) == (1, 4)
    assert _checkpoint(tmp_path) == {DAY: _day_file(tmp_path).stat().st_size}
    await feeder.close()


async def test_a_crash_between_commit_and_checkpoint_doubles_nothing(
    postgres: Postgres, tmp_path: Path
) -> None:
    """The checkpoint a crash leaves behind a commit (the one before it), or none at all:
    the next feeder sends those records again and PostgreSQL keeps one row each."""
    spool(tmp_path, numbered(0, 50))
    feeder = feeder_of(tmp_path, postgres.dsn)
    await feeder.deliver(wait=20)
    before = (tmp_path / CHECKPOINT).read_bytes()
    spool(tmp_path, numbered(50, 50))
    await feeder.deliver(wait=20)
    await feeder.close()
    assert len(central_uuids(postgres)) == 100

    (tmp_path / CHECKPOINT).write_bytes(before)  # the crash: committed, not checkpointed
    again = feeder_of(tmp_path, postgres.dsn)
    await again.deliver(wait=20)
    assert (again.statistics().delivered, again.statistics().duplicates) == (0, 50)
    await again.close()
    (tmp_path / CHECKPOINT).unlink()  # no checkpoint at all: everything once more
    fresh = feeder_of(tmp_path, postgres.dsn)
    await fresh.deliver(wait=20)
    assert (fresh.statistics().delivered, fresh.statistics().duplicates) == (0, 100)
    await fresh.close()
    assert sorted(central_uuids(postgres)) == sorted(f"u{n}" for n in range(100))


async def test_postgres_stopped_then_started_gets_every_record_once(
    postgres: Postgres, tmp_path: Path
) -> None:
    """PostgreSQL stops (fast shutdown) while records keep coming: the feeder logs the
    outage once, the backlog and lag grow and ``up`` is 0; started again, everything that
    waited arrives once, ``cdr.central_resumed`` says how many, and the backlog is 0."""
    feeder = feeder_of(tmp_path, postgres.dsn, interval=0.1, backoff=0.5)
    with capture_logs() as logs:
        feeder.start()
        spool(tmp_path, numbered(0, 100))
        await _until(lambda: feeder.statistics().delivered == 100, "first 100 delivered")
        await asyncio.to_thread(stop_fast, postgres)
        spool(tmp_path, numbered(100, 60))
        await _until(lambda: feeder.statistics().backlog_records == 60, "a backlog of 60")
        await asyncio.sleep(1.5)  # several attempts fail meanwhile
        down = feeder.statistics()
        assert (down.up, down.backlog_records, down.failures > 1) == (False, 60, True)
        assert down.backlog_bytes > 0 and down.lag_seconds >= 1.0
        spool(tmp_path, numbered(160, 40))
        await asyncio.to_thread(postgres.start)
        await _until(lambda: feeder.statistics().backlog_records == 0, "the backlog drained")
        await feeder.close()
    stats = feeder.statistics()
    assert (stats.up, stats.delivered, stats.duplicates, stats.lag_seconds) == (True, 200, 0, 0.0)
    assert sorted(central_uuids(postgres)) == sorted(f"u{n}" for n in range(200))
    assert len(events_named(logs, "cdr.central_unavailable")) == 1
    [resumed] = events_named(logs, "cdr.central_resumed")
    assert resumed["delivered"] == 100 and resumed["down_seconds"] > 1.0


async def test_close_makes_a_last_delivery_and_is_bounded_without_postgres(
    postgres: Postgres, tmp_path: Path
) -> None:
    """Records spooled just before close are delivered by it; with PostgreSQL gone, close
    returns within its grace, says what is pending, and the next feeder delivers it."""
    feeder = feeder_of(tmp_path, postgres.dsn, interval=30)
    feeder.start()
    await _until(lambda: feeder.statistics().up, "the first pass")
    spool(tmp_path, numbered(0, 20))
    await feeder.close()
    assert len(central_uuids(postgres)) == 20

    later = feeder_of(tmp_path, postgres.dsn, interval=30)
    later.start()
    await _until(lambda: later.statistics().up, "the first pass")
    await asyncio.to_thread(stop_fast, postgres)
    spool(tmp_path, numbered(20, 5))
    started = time.monotonic()
    with capture_logs() as logs:
        await later.close(grace=1.0)
    assert time.monotonic() - started < 3.0
    [pending] = events_named(logs, "cdr.central_pending_at_close")
    assert pending["records"] == 5
    await asyncio.to_thread(postgres.start)
    last = feeder_of(tmp_path, postgres.dsn)
    await last.deliver(wait=20)
    await last.close()
    assert sorted(central_uuids(postgres)) == sorted(f"u{n}" for n in range(25))


async def test_the_lines_are_parsed_in_a_worker_that_is_replaced_when_killed(
    postgres: Postgres, tmp_path: Path
) -> None:
    """The rows are made in a worker process; SIGKILL of it fails one pass (logged, nothing
    checkpointed), and the next pass starts another and delivers everything once."""
    others = set(multiprocessing.active_children())
    spool(tmp_path, numbered(0, 10))
    feeder = feeder_of(tmp_path, postgres.dsn)
    await feeder.deliver(wait=20)
    [worker] = set(multiprocessing.active_children()) - others
    assert worker.pid not in (None, os.getpid())
    os.kill(worker.pid, signal.SIGKILL)
    await asyncio.to_thread(worker.join, 10)
    spool(tmp_path, numbered(10, 10))
    with capture_logs() as logs:
        await feeder.deliver(wait=20)
        [failed] = events_named(logs, "cdr.central_failed")
        assert failed["error_type"] == "BrokenProcessPool"
        await asyncio.sleep(1.1)  # the retry's wait
        await feeder.deliver(wait=20)
    [replacement] = set(multiprocessing.active_children()) - others
    await feeder.close()
    assert replacement.pid != worker.pid
    assert sorted(central_uuids(postgres)) == sorted(f"u{n}" for n in range(20))
    assert feeder.statistics().delivered == 20


async def test_a_user_that_may_only_select_and_insert_feeds_and_reads(
    postgres: Postgres, tmp_path: Path
) -> None:
    """Once the first node made the tables, a database user with SELECT and INSERT on them
    and no CREATE (PostgreSQL 15 gives none on the public schema) feeds and reads."""
    first, second = tmp_path / "a", tmp_path / "b"
    spool(first, numbered(0, 3))
    feeder = feeder_of(first, postgres.dsn)
    await feeder.deliver(wait=20)
    await feeder.close()
    postgres.query("CREATE ROLE clerk LOGIN; GRANT SELECT, INSERT ON cdr, cdr_mark TO clerk")
    clerk = postgres.dsn.replace("//callserver@", "//clerk@")
    spool(second, numbered(3, 2))
    limited = feeder_of(second, clerk)
    await limited.deliver(wait=20)
    await limited.close()
    assert limited.statistics().delivered == 2
    read = await asyncio.to_thread(
        read_central, clerk, lambda rows: [r.uuid for r in rows.records()]
    )
    assert read == [f"u{n}" for n in range(5)]
