"""bench/cdr_feeder: CDR records per second the feeder ships to PostgreSQL, and what it costs
the event loop.

A spool of ``--records`` rated legs (``cdr_throughput.make_records``, ~1.3 KB of JSON each,
written by a real ``CdrSpool``) is shipped by one ``CdrFeeder`` pass into a PostgreSQL of the
bench's own (initdb in a temp dir, loopback, fsync off: the figure is the feeder's, not a
disk's), ``--runs`` times, each into an empty table, with ``--batch`` records a batch. The
lines are parsed in the feeder's worker process; the loop sends. Figures: records/s and the
loop's CPU per batch (the main thread's CPU time over the pass, over the batches committed);
in a second pass, the CPU time of each callback the loop ran (how long the feeder holds the
loop in one go), p99 and maximum; in a third, a probe on the same loop sleeps 1 ms at a time
and records how late it wakes (the same, plus the machine's scheduling: PostgreSQL and the
worker share its cores), and the last row is the probe alone on an idle loop.

    .venv/bin/python bench/cdr_feeder.py [--records 20000] [--batch 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg
from cdr_throughput import make_records

from callserver.cdr.feeder import CHECKPOINT, CdrFeeder
from callserver.cdr.spool import CdrSpool
from callserver.process.gctuning import tune_gc

HOST = "127.0.0.1"


def start_postgres(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """initdb and start PostgreSQL (as the postgres user under root) on ``port``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise SystemExit("PostgreSQL not found: apt-get install postgresql (make postgresql)")
    bin_dir = Path(found[-1]).parent
    data = workdir / "data"
    data.mkdir()
    owner: dict[str, object] = {}
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
        shutil.chown(data, "postgres", "postgres")
        owner = {"user": "postgres", "group": "postgres", "extra_groups": []}
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "callserver", "-A", "trust"]
    subprocess.run([*initdb, "--no-sync"], check=True, capture_output=True, **owner)  # type: ignore[call-overload]
    command = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data)]
    command += ["-c", f"listen_addresses={HOST}", "-c", "fsync=off"]
    log = (workdir / "postgres.log").open("ab")
    server: subprocess.Popen[bytes] = subprocess.Popen(  # type: ignore[call-overload]
        command, stdout=log, stderr=subprocess.STDOUT, **owner
    )
    ready = [str(bin_dir / "pg_isready"), "-h", HOST, "-p", str(port), "-q"]
    for _ in range(200):
        if subprocess.run(ready, check=False).returncode == 0:
            break
        time.sleep(0.05)
    psql = [str(bin_dir / "psql"), "-h", HOST, "-p", str(port), "-U", "callserver", "-d"]
    subprocess.run([*psql, "postgres", "-c", "CREATE DATABASE callserver"], check=True)
    return server


async def probe(lateness: list[float], stop: asyncio.Event) -> None:
    """Sleep 1 ms at a time until ``stop``, noting how late each wake-up came."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        due = loop.time() + 0.001
        await asyncio.sleep(0.001)
        lateness.append(loop.time() - due)


@contextlib.contextmanager
def timed_steps(steps: list[float]) -> Iterator[None]:
    """Note the CPU time of every callback the loop runs (a task's step, a protocol's
    data_received): how long the loop is held in one go, without the machine's scheduling."""
    run = asyncio.events.Handle._run

    def timed(handle: asyncio.events.Handle) -> None:
        started = time.thread_time()
        run(handle)
        steps.append(time.thread_time() - started)

    asyncio.events.Handle._run = timed  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        asyncio.events.Handle._run = run  # type: ignore[method-assign]


async def one_pass(
    spool_dir: Path, dsn: str, batch: int, lateness: list[float] | None
) -> tuple[int, int, float, float]:
    """One feeder pass over ``spool_dir`` into an empty table, with the probe when
    ``lateness`` is given: records, batches, seconds, the loop's CPU seconds."""
    checkpoint = spool_dir.parent / CHECKPOINT
    checkpoint.unlink(missing_ok=True)
    connection = await asyncpg.connect(dsn)
    await connection.execute("DROP TABLE IF EXISTS cdr")  # every pass inserts afresh
    await connection.close()
    feeder = CdrFeeder(spool_dir, dsn, "bench", checkpoint=checkpoint, batch=batch)
    stop = asyncio.Event()
    watcher = asyncio.create_task(probe(lateness, stop)) if lateness is not None else None
    started, cpu = time.perf_counter(), time.thread_time()
    await feeder.deliver(wait=600)
    seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
    stop.set()
    if watcher is not None:
        await watcher
    figures = feeder.statistics()
    await feeder.close()
    return figures.delivered, figures.batches, seconds, cpu


async def probe_alone(seconds: float) -> list[float]:
    """The probe's lateness on an idle loop for ``seconds``: the machine's own noise."""
    lateness: list[float] = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(probe(lateness, stop))
    await asyncio.sleep(seconds)
    stop.set()
    await watcher
    return sorted(lateness)


def ship(spool_dir: Path, dsn: str, batch: int, run: int) -> str:
    """A pass without the probe (records/s, the loop's CPU) and one with it (the loop's
    stalls); the figures as a table row."""
    shipped, batches, seconds, cpu = asyncio.run(one_pass(spool_dir, dsn, batch, None))
    steps: list[float] = []
    with timed_steps(steps):
        asyncio.run(one_pass(spool_dir, dsn, batch, None))
    lateness: list[float] = []
    asyncio.run(one_pass(spool_dir, dsn, batch, lateness))
    return (
        f"| {run} | {shipped} | {seconds:.2f} | {shipped / seconds:,.0f} | {batches}"
        f" | {cpu / batches * 1000:.2f} | {_ms(steps, 0.99)} / {_ms(steps, 1.0)}"
        f" | {_ms(lateness, 0.99)} / {_ms(lateness, 1.0)} |"
    )


def _ms(values: list[float], quantile: float) -> str:
    ordered = sorted(values)
    return f"{ordered[min(len(ordered) - 1, int(len(ordered) * quantile))] * 1000:.2f}"


def main() -> None:
    """Write the spool, start PostgreSQL, ship ``--runs`` times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="cdr-feeder-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="cdr-feeder-pg-"))
    port = 20000 + os.getpid() % 20000
    server = start_postgres(pg_dir, port)
    try:
        with CdrSpool(workdir / "cdr") as spool:
            futures = [spool.write(record) for record in make_records(args.records)]
            assert all(future.result() for future in futures)
        print(f"{args.records} records, batch {args.batch}, {platform.python_version()}")
        print("| run | records | seconds | records/s | batches | loop CPU ms/batch", end="")
        print(" | loop step CPU ms p99 / max | probe late ms p99 / max |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        dsn = f"postgresql://callserver@{HOST}:{port}/callserver"
        tune_gc()  # as the server: no full collection on the way (process.gctuning)
        for run in range(1, args.runs + 1):
            print(ship(workdir / "cdr", dsn, args.batch, run))
        idle = asyncio.run(probe_alone(3.0))
        print(f"| the probe alone, 3 s | | | | | | | {_ms(idle, 0.99)} / {_ms(idle, 1.0)} |")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(30)
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(pg_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
