"""bench/rtp_window: N calls with RTP in progress on a running server, and their figures.

bench/rtp_load, pinned to its own core, sets up N calls against the server (ramp at --rate),
lets them settle, then records for a window every packet the server sends them; meanwhile
this module samples both processes at the window's edges and starts and stops what else
should happen during the window (a SIPp load, dialplan reloads). Then it hangs the calls up
and measures (see bench/media_capacity for every figure of a ``Row``):

- jitter: |arrival interval - 20 ms| between packets of a stream with consecutive sequence
  numbers (RFC 3550 §5.1), from the kernel's receive stamps, so the server's send intervals;
- lost/stopped/skipped: sequence gaps, silent streams, RTP timestamp jumps (skipped ticks);
- the server's CPU, what else ran on its core, its memory, its clock's figures and resyncs.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt
from harness import HOST, ROOT, Server, core_busy, cpu_seconds, pinned, rss_bytes, udp_drops

PERIOD_NS = 20_000_000
RECORD = np.dtype("<i8,<i8,u1,u1,>u2,>u4,>u4")  # what bench/rtp_load keeps of a packet:
RECORD.names = ("sec", "nsec", "b0", "b1", "seq", "ts", "ssrc")  # kernel stamp, RTP header


@dataclass
class Row:
    """The figures of one window."""

    calls: int
    up: int = 0
    attempted: int = 0  # the generator's INVITEs (failed calls are replaced)
    ended: int = 0  # calls the server ended (its BYE) in the window
    jitter_p50: float = float("nan")
    jitter_p99: float = float("nan")
    jitter_max: float = float("nan")
    lost: int = 0
    stopped: int = 0
    skipped: int = 0  # 20 ms frames the server never sent: RTP timestamp jumps at a resync
    span_p50: float = float("nan")
    span_p99: float = float("nan")
    server_cpu: float = float("nan")
    others: float = float("nan")  # what else ran on the server's core (incl. steal, softirq)
    tick_p50: float = float("nan")
    tick_p99: float = float("nan")
    lateness_p99: float = float("nan")
    resyncs: int = 0
    late_max: float = float("nan")  # the latest tick of the window's tick_late lines, ms
    bytes_per_call: float = float("nan")
    rss_start: int = 0  # the server's resident memory at the window's start and end
    rss_end: int = 0
    load_cpu: float = float("nan")
    load_drops: int = 0
    failed: dict[str, int] = field(default_factory=dict)


class During(Protocol):
    """Work that runs during the window: started at its start, stopped at its end."""

    def start(self) -> None:
        """The window has started."""

    def stop(self) -> None:
        """The window has ended."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Load:
    """The generator's calls, its ramp and the window, and the cores of both processes."""

    calls: int
    rate: float = 200.0  # new calls a second during the ramp
    settle: float = 3.0
    duration: float = 20.0
    server_core: str = "0"
    load_core: str = "1"
    generator_args: tuple[str, ...] = ()  # more of bench/rtp_load's options (--numbers ...)
    churn: int = 0  # calls the server ends replaced, up to this many (rtp_load --churn)


def measure(server: Server, load: Load, workdir: Path, during: Sequence[During] = ()) -> Row:
    """Ramp, settle, window (with ``during``), hang-up and analysis on a running server."""
    row = Row(load.calls)
    time.sleep(1)
    baseline = rss_bytes(server.proc.pid)
    record = workdir / "arrivals.npy"
    window, wall = _drive_load(server, row, baseline, record, load, during)
    _statistics_figures(server, row, *window)
    if not record.exists():
        return row  # the generator failed before the window: the row says so (up = 0)
    records = np.load(record).view(RECORD)[:, 0]
    record.unlink()
    for name, value in analyse(records, row.up, wall, churn=load.churn > 0).items():
        setattr(row, name, value)
    return row


def _statistics_figures(server: Server, row: Row, start: float, end: float) -> None:
    """Tick figures from the last statistics line in the window; its resyncs (tick_late lines)."""
    inside = [s for t, s in server.statistics if start <= t <= end + 0.5]
    late = [ms for t, ms in server.tick_late if start <= t <= end]
    row.resyncs, row.late_max = len(late), max(late, default=float("nan"))
    if not inside:
        return
    last = inside[-1]
    row.tick_p50 = float(last["tick_p50_ms"])
    row.tick_p99 = float(last["tick_p99_ms"])
    row.lateness_p99 = float(last["lateness_p99_ms"])


def _drive_load(
    server: Server, row: Row, baseline: int, record: Path, load: Load, during: Sequence[During]
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Run bench/rtp_load, sampling both processes at the window's edges.

    Returns the window in monotonic s and in CLOCK_REALTIME ns (the kernel stamps' clock)."""
    cmd = [sys.executable, str(ROOT / "bench" / "rtp_load.py"), "--server", f"{HOST}:{server.port}"]
    cmd += ["--calls", str(row.calls), "--rate", str(load.rate), "--record", str(record)]
    cmd += ["--settle", str(load.settle), "--duration", str(load.duration)]
    cmd += [*load.generator_args, "--churn", str(load.churn)]
    generator = subprocess.Popen(pinned(cmd, load.load_core), stdout=subprocess.PIPE, text=True)
    limit = row.calls / load.rate + load.settle + load.duration + 90
    watchdog = threading.Timer(limit, generator.kill)
    watchdog.start()
    pids = (server.proc.pid, generator.pid)
    start = end = 0.0
    cpu0, wall = (0.0, 0.0, 0.0), [0, 0]
    assert generator.stdout is not None
    try:
        for line in generator.stdout:
            event = json.loads(line)
            if event["event"] == "calls_up":
                row.attempted = event["attempted"]
            elif event["event"] == "window_start":
                start, wall[0] = time.monotonic(), event["wall_ns"]
                cpu0 = (cpu_seconds(pids[0]), cpu_seconds(pids[1]), core_busy(load.server_core))
                row.up, rtp_port = event["calls"], event["rtp_port"]
                row.rss_start = rss_bytes(pids[0])
                row.bytes_per_call = (row.rss_start - baseline) / max(1, row.up)
                drops0 = udp_drops(rtp_port)
                for work in during:
                    work.start()
            elif event["event"] == "window_end":
                end, wall[1] = time.monotonic(), event["wall_ns"]
                row.ended = event["ended"]
                row.server_cpu = (cpu_seconds(pids[0]) - cpu0[0]) / (end - start)
                row.load_cpu = (cpu_seconds(pids[1]) - cpu0[1]) / (end - start)
                busy = (core_busy(load.server_core) - cpu0[2]) / (end - start)
                row.others = max(0.0, busy - row.server_cpu)
                row.rss_end = rss_bytes(pids[0])
                row.load_drops = udp_drops(rtp_port) - drops0
                for work in during:
                    work.stop()
            elif event["event"] == "result":
                row.failed = event["failed"]
    finally:
        watchdog.cancel()
        generator.wait()
    return (start, end), (wall[0], wall[1])


def analyse(
    records: npt.NDArray[np.void], calls_up: int, window: tuple[int, int], *, churn: bool = False
) -> dict[str, float]:
    """Send-interval jitter and loss over the window, from the generator's recorded arrivals.

    Jitter is |arrival interval - 20 ms| between packets with consecutive sequence numbers of
    one SSRC (RFC 3550 §5.1). Loss is the sequence gaps, plus the packets of streams silent for
    more than a second at the start or end of the window, or missing from it altogether.
    ``window`` is its start and end in the clock of the stamps (CLOCK_REALTIME ns). With
    ``churn`` calls end and new ones start in the window by design (queue callers answered
    and replaced): only the sequence gaps are loss, and no stream counts as stopped.
    """
    first, last = window
    seconds = (last - first) / 1e9
    if records.size < 2:
        return {"lost": int(calls_up * seconds * 50), "stopped": calls_up}
    arrival = records["sec"] * 1_000_000_000 + records["nsec"]
    order = np.lexsort((arrival, records["ssrc"]))
    t, ssrc, seq = arrival[order], records["ssrc"][order], records["seq"][order].astype(np.int64)
    same = ssrc[1:] == ssrc[:-1]
    dseq = (seq[1:] - seq[:-1]) & 0xFFFF
    ts = records["ts"][order].astype(np.int64)
    dts = (ts[1:] - ts[:-1]) & 0xFFFFFFFF  # 160 a packet (PCMU at 20 ms)
    jitter = np.abs(np.diff(t)[same & (dseq == 1)] - PERIOD_NS) / 1e6
    starts = np.concatenate(([0], np.flatnonzero(~same) + 1))
    ends = np.concatenate((starts[1:] - 1, [t.size - 1]))
    late_start = np.maximum(0, t[starts] - first - 1_000_000_000) // PERIOD_NS
    early_end = np.maximum(0, last - t[ends] - 1_000_000_000) // PERIOD_NS
    missing = max(0, calls_up - starts.size)
    gaps = dseq[same & (dseq > 1) & (dseq < 0x8000)] - 1
    p50, p99 = np.percentile(jitter, [50, 99]) if jitter.size else (np.nan, np.nan)
    if churn:
        late_start, early_end, missing = late_start[:0], early_end[:0], 0
    return {
        "jitter_p50": float(p50),
        "jitter_p99": float(p99),
        "jitter_max": float(jitter.max()) if jitter.size else np.nan,
        "lost": int(gaps.sum() + late_start.sum() + early_end.sum()) + missing * int(seconds * 50),
        "stopped": int(np.count_nonzero(late_start) + np.count_nonzero(early_end)) + missing,
        "skipped": int(np.clip(dts[same & (dseq == 1)] // 160 - 1, 0, None).sum()),
        **_tick_spans(np.sort(arrival)),
    }


def _tick_spans(t: npt.NDArray[np.int64]) -> dict[str, float]:
    """How long each tick's burst of packets took to go out, from its first packet to its last.

    A tick sends every stream back to back, so its burst is set apart by the rest of the
    period: a gap over 2 ms starts a new one. The window cuts the first and last burst, so they
    are left out. When fewer than 90 % of the bursts hold the usual number of packets (bursts
    that merge near 18 ms, or a stall in the middle of one), no figure is given.
    """
    cut = np.flatnonzero(np.diff(t) > 2_000_000) + 1
    starts, ends = cut[:-1], cut[1:] - 1
    sizes = ends - starts + 1
    if sizes.size < 10 or np.mean(sizes == np.bincount(sizes).argmax()) < 0.9:
        return {}
    p50, p99 = np.percentile((t[ends] - t[starts]) / 1e6, [50, 99])
    return {"span_p50": float(p50), "span_p99": float(p99)}
