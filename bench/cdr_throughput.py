"""bench/cdr_throughput: CDR records per second written durably by the spool.

Three runs over the same pre-built records (rated answered legs, ~900 bytes of JSON each),
each in a fresh spool directory, from ``--writers`` asyncio tasks that each await their
record's future (``asyncio.wrap_future``) before writing the next, as call teardown does:

- ``fsync per record``: ``CdrSpool(group_commit=False)``, one fsync for every record;
- ``group commit``: the default spool, records queued together share one fsync;
- ``group commit, open + record``: each call also journals its ``open_call`` first (awaited),
  so the journal's fsyncs are in the figure: the whole durable cost of a call's CDR.

Every run stops taking new records after ``--max-seconds`` so the bench is bounded in time on
a slow disk; the figures are for the records written. Latency is from ``write`` to the future
resolving (the record on disk). The directory must be on a real disk: on tmpfs fsync costs
nothing and the figures mean nothing (the file system type is printed). Target: at least
5 000 records/s with group commit.

    .venv/bin/python bench/cdr_throughput.py [--records 20000] [--writers 64] [--max-seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callserver.cdr.record import CdrRecord, Disposition, EndReason
from callserver.cdr.spool import CdrSpool


@dataclass(frozen=True, slots=True)
class Result:
    """One run's figures."""

    mode: str
    records: int
    seconds: float
    fsyncs: int
    latencies: list[float]


def make_records(count: int) -> list[CdrRecord]:
    """``count`` distinct answered, rated legs of one day."""
    return [
        CdrRecord(
            uuid=f"5f0c6a2e-0000-4000-8000-{n:012d}",
            call_id=f"{n:019d}@pbx.example.net",
            direction="inbound",
            trunk="pbx-1",
            customer="acme",
            caller_raw=f"06{n % 10_000_000:07d}",
            caller_e164=f"3876{n % 10_000_000:07d}",
            caller_country="BA",
            called_raw="033123456",
            called_e164="38733123456",
            dialplan="38733123456.yaml",
            dialplan_version="3",
            start_stamp="2026-11-22T10:00:00.000Z",
            answer_stamp="2026-11-22T10:00:02.120Z",
            end_stamp=f"2026-11-22T10:{1 + n % 58:02d}:07.480Z",
            disposition=Disposition.ANSWERED,
            hangup_cause="NORMAL_CLEARING",
            q850_cause=16,
            sip_code=200,
            hangup_by="caller",
            end_reason=EndReason.NORMAL,
            language="bs",
            steps=("welcome", "hours", "menu", "forward"),
            digits="2",
            number_class="geographic",
            tariff="local",
            billed_units=61,
            billed_seconds=61,
            payer="caller",
            cost=Decimal("0.0508"),
            vat=Decimal("0.0086"),
            currency="BAM",
        )
        for n in range(count)
    ]


async def run(
    mode: str,
    directory: Path,
    records: list[CdrRecord],
    writers: int,
    budget: float,
    *,
    group_commit: bool,
    with_open: bool = False,
) -> Result:
    """Write ``records`` from ``writers`` tasks into a fresh spool; stop after ``budget`` s."""
    spool = CdrSpool(directory, group_commit=group_commit)
    before = spool.statistics().fsyncs
    queue: Iterator[CdrRecord] = iter(records)
    latencies: list[float] = []
    start = time.perf_counter()
    deadline = start + budget

    async def writer() -> None:
        for record in queue:
            if time.perf_counter() > deadline:
                return
            if with_open:
                await asyncio.wrap_future(spool.open_call(record.call_id, {"uuid": record.uuid}))
            begun = time.perf_counter()
            if not await asyncio.wrap_future(spool.write(record)):
                raise SystemExit(f"{mode}: a write failed: {spool.statistics()}")
            latencies.append(time.perf_counter() - begun)

    async with asyncio.TaskGroup() as group:
        for _ in range(writers):
            group.create_task(writer())
    seconds = time.perf_counter() - start
    fsyncs = spool.statistics().fsyncs - before
    spool.close()
    return Result(mode, len(latencies), seconds, fsyncs, latencies)


def file_system(path: Path) -> str:
    """The type of the file system holding ``path`` (from /proc/mounts), or '?'."""
    best, kind = "", "?"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        parts = line.split()
        if len(parts) > 2 and resolved.startswith(parts[1]) and len(parts[1]) > len(best):
            best, kind = parts[1], parts[2]
    return kind


def machine() -> str:
    """nproc, CPU model, Python version and today's date, for bench/RESULTS.md."""
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"nproc {os.cpu_count()}, {model}, {python}, {datetime.now(UTC).date()}"


def report(result: Result) -> str:
    """One table row."""
    rate = result.records / result.seconds if result.seconds else 0.0
    per_fsync = result.records / result.fsyncs if result.fsyncs else 0.0
    ms = sorted(x * 1000 for x in result.latencies) or [0.0]
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return (
        f"| {result.mode} | {result.records} | {result.seconds:.2f} | {rate:,.0f} | "
        f"{result.fsyncs} | {per_fsync:.1f} | {statistics.median(ms):.2f} | {p99:.2f} |"
    )


async def main_async(args: argparse.Namespace) -> None:
    """Run the three modes and print a Markdown table."""
    records = make_records(args.records)
    root = Path(tempfile.mkdtemp(prefix="cdr-bench-", dir=args.dir))
    print(f"bench/cdr_throughput: {args.records} records, {args.writers} writers, {root}")
    print(f"file system: {file_system(root)}; machine: {machine()}")
    print()
    print("| mode | records | seconds | records/s | fsyncs | records/fsync | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    modes = [
        ("fsync per record", False, False),
        ("group commit", True, False),
        ("group commit, open + record", True, True),
    ]
    try:
        for n, (mode, group, with_open) in enumerate(modes):
            result = await run(
                mode,
                root / str(n),
                records,
                args.writers,
                args.max_seconds,
                group_commit=group,
                with_open=with_open,
            )
            print(report(result), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--writers", type=int, default=64)
    parser.add_argument("--max-seconds", type=float, default=60.0, help="per run")
    parser.add_argument(
        "--dir", type=Path, default=Path("var"), help="parent of the temporary spool (var/)"
    )
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
