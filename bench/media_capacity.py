"""bench/media_capacity: how many concurrent calls the media engine serves on one core.

For each N in --calls a fresh `callserver run`, pinned to one core (taskset), answers N calls
from bench/rtp_load, pinned to another: real SIP and RTP over 127.0.0.1, every call hearing the
greeting prompt in a loop and sending 20 ms PCMU packets back. Once all N are up and --settle
seconds have passed, it measures for --duration seconds:

- jitter50/jitter99/max: send-interval jitter at the receiver, |arrival interval - 20 ms|
  between consecutive packets of each server stream (kernel receive stamps), over all streams;
- lost/stopped: sequence gaps, plus the packets of streams that stopped or never came;
  skipped: frames never sent (the clock skips late ticks: the timestamp jumps, seq does not);
- cpu%: the server's CPU as a share of one core (/proc/<pid>/stat); others%: what everything
  else took of that core meanwhile (/proc/stat), to tell a disturbed row; load%: the generator;
- tick50/tick99/late99: the media clock's tick duration and lateness from the server's last
  ``media.statistics`` line in the window (over its last 3000 ticks, 60 s, so they include the
  ramp); resyncs: its ``media.tick_late`` lines (a tick a period or more late) in the window;
- span50/span99: how long each tick's burst of packets took to arrive, first to last, measured
  at the receiver over the window only (not given when the bursts cannot be told apart);
- KiB/call: (VmRSS with N calls - VmRSS of the idle server) / N; drops: the generator's own
  receive-buffer drops (loss that is not the server's).

A fresh server per N keeps the runs independent: the previous N's transactions linger 32 s
(RFC 3261 Timer J) and its heap would keep the high-water mark.

    .venv/bin/python bench/media_capacity.py --calls 250,500,750,1000 --duration 20
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
TARGET_CALLS = 750
TARGET_JITTER_MS = 5.0
PERIOD_NS = 20_000_000
RECORD = np.dtype("<i8,<i8,u1,u1,>u2,>u4,>u4")  # what bench/rtp_load keeps of a packet:
RECORD.names = ("sec", "nsec", "b0", "b1", "seq", "ts", "ssrc")  # kernel stamp, RTP header


@dataclass
class Row:
    """The figures for one N."""

    calls: int
    up: int = 0
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
    bytes_per_call: float = float("nan")
    load_cpu: float = float("nan")
    load_drops: int = 0
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Every call up, jitter p99 within the target and no packet lost."""
        ok = self.up == self.calls and self.lost == 0 and self.stopped == 0
        return ok and self.jitter_p99 <= TARGET_JITTER_MS


@dataclass
class Server:
    """A running `callserver run` whose JSON log lines a thread reads as they come."""

    proc: subprocess.Popen[str]
    port: int
    statistics: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    tick_late: list[float] = field(default_factory=list)  # arrival times of media.tick_late
    listening: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        """Keep ``media.statistics`` lines with their arrival time (monotonic)."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if '"media.statistics"' in line:
                self.statistics.append((time.monotonic(), json.loads(line)))
            elif '"media.tick_late"' in line:
                self.tick_late.append(time.monotonic())
            elif '"server.listening"' in line:
                self.listening.set()

    def stop(self) -> None:
        """SIGTERM, then wait (the calls are already gone, so the drain is short)."""
        self.proc.send_signal(signal.SIGTERM)  # nothing if it has exited
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _core_busy(core: str) -> float:
    """Seconds core ``core`` was busy since boot (/proc/stat: all but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:9]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return float("nan")  # not a single core


def _pinned(cmd: list[str], core: str) -> list[str]:
    return ["taskset", "-c", core, *cmd] if shutil.which("taskset") else cmd


def _start_server(workdir: Path, calls: int, args: argparse.Namespace) -> Server:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # a free port for SIP
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    (workdir / "dialplans").mkdir()
    path = workdir / "callserver.yaml"
    path.write_text(
        f"sip: {{listen: ['udp:{HOST}:{port}']}}\n"
        f"media: {{rtp_port_min: 20000, rtp_port_max: {20000 + max(4000, 4 * calls)}, "
        f"statistics_interval: 5, prompts_dir: '{ROOT / 'prompts'}'}}\n"
        "calls: {answer_prompt: greeting, answer_prompt_loop: true, answer_hangup_after: 3600, "
        "max_calls: 100000, drain_timeout: 1}\n"
        f"dialplans: '{workdir / 'dialplans'}'\ndata_dir: '{workdir / 'var'}'\n"
        "log_level: info\nlog_format: json\n"
    )
    cmd = [sys.executable, "-m", "callserver", "run", "--config", str(path)]
    if args.no_uvloop:
        cmd.append("--no-uvloop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
    proc = subprocess.Popen(
        _pinned(cmd, args.server_core),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    server = Server(proc, port)
    threading.Thread(target=server.read, daemon=True).start()
    if not server.listening.wait(15):
        server.stop()
        raise RuntimeError("callserver did not log server.listening within 15 s")
    return server


def _statistics_figures(server: Server, row: Row, start: float, end: float) -> None:
    """Tick figures from the last statistics line in the window; its resyncs (tick_late lines)."""
    inside = [s for t, s in server.statistics if start <= t <= end + 0.5]
    row.resyncs = sum(start <= t <= end for t in server.tick_late)
    if not inside:
        return
    last = inside[-1]
    row.tick_p50 = float(last["tick_p50_ms"])
    row.tick_p99 = float(last["tick_p99_ms"])
    row.lateness_p99 = float(last["lateness_p99_ms"])


def run_calls(calls: int, args: argparse.Namespace) -> Row:
    """One N: fresh server, generator ramp, settle, measurement window, hang-up, analysis."""
    row = Row(calls)
    with tempfile.TemporaryDirectory(prefix="media-capacity-") as tmp:
        server = _start_server(Path(tmp), calls, args)
        try:
            time.sleep(1)
            baseline = _rss_bytes(server.proc.pid)
            window, wall = _drive_load(server, row, baseline, Path(tmp) / "arrivals.npy", args)
        finally:
            server.stop()
        _statistics_figures(server, row, *window)
        if not (Path(tmp) / "arrivals.npy").exists():
            return row  # the generator failed before the window: the row says so (up = 0)
        records = np.load(Path(tmp) / "arrivals.npy").view(RECORD)[:, 0]
    for name, value in analyse(records, row.up, wall).items():
        setattr(row, name, value)
    return row


def _drive_load(
    server: Server, row: Row, baseline: int, record: Path, args: argparse.Namespace
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Run bench/rtp_load, sampling both processes at the window's edges.

    Returns the window in monotonic s and in CLOCK_REALTIME ns (the kernel stamps' clock)."""
    cmd = [sys.executable, str(ROOT / "bench" / "rtp_load.py"), "--server", f"{HOST}:{server.port}"]
    cmd += ["--calls", str(row.calls), "--rate", str(args.rate), "--record", str(record)]
    cmd += ["--settle", str(args.settle), "--duration", str(args.duration)]
    load = subprocess.Popen(_pinned(cmd, args.load_core), stdout=subprocess.PIPE, text=True)
    watchdog = threading.Timer(row.calls / args.rate + args.settle + args.duration + 90, load.kill)
    watchdog.start()
    pids = (server.proc.pid, load.pid)
    start = end = 0.0
    cpu0, wall = (0.0, 0.0, 0.0), [0, 0]
    assert load.stdout is not None
    try:
        for line in load.stdout:
            event = json.loads(line)
            if event["event"] == "window_start":
                start, wall[0] = time.monotonic(), event["wall_ns"]
                cpu0 = (_cpu_seconds(pids[0]), _cpu_seconds(pids[1]), _core_busy(args.server_core))
                row.up, rtp_port = event["calls"], event["rtp_port"]
                row.bytes_per_call = (_rss_bytes(pids[0]) - baseline) / max(1, row.up)
                drops0 = _udp_drops(rtp_port)
            elif event["event"] == "window_end":
                end, wall[1] = time.monotonic(), event["wall_ns"]
                row.server_cpu = (_cpu_seconds(pids[0]) - cpu0[0]) / (end - start)
                row.load_cpu = (_cpu_seconds(pids[1]) - cpu0[1]) / (end - start)
                busy = (_core_busy(args.server_core) - cpu0[2]) / (end - start)
                row.others = max(0.0, busy - row.server_cpu)
                row.load_drops = _udp_drops(rtp_port) - drops0
            elif event["event"] == "result":
                row.failed = event["failed"]
    finally:
        watchdog.cancel()
        load.wait()
    return (start, end), (wall[0], wall[1])


def _udp_drops(port: int) -> int:
    """The kernel's receive-buffer drop count of the UDP socket on 127.0.0.1:``port``."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines():
        fields = line.split()
        if len(fields) > 12 and fields[1] == wanted:
            return int(fields[-1])
    return 0


def analyse(
    records: npt.NDArray[np.void], calls_up: int, window: tuple[int, int]
) -> dict[str, float]:
    """Send-interval jitter and loss over the window, from the generator's recorded arrivals.

    Jitter is |arrival interval - 20 ms| between packets with consecutive sequence numbers of
    one SSRC (RFC 3550 §5.1). Loss is the sequence gaps, plus the packets of streams silent for
    more than a second at the start or end of the window, or missing from it altogether.
    ``window`` is its start and end in the clock of the stamps (CLOCK_REALTIME ns).
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


COLUMNS: tuple[tuple[str, Callable[[Row], str]], ...] = (  # title, value; times in ms
    ("calls", lambda r: f"{r.calls}"),
    ("up", lambda r: f"{r.up}"),
    ("jitter50", lambda r: f"{r.jitter_p50:.2f}"),
    ("jitter99", lambda r: f"{r.jitter_p99:.2f}"),
    ("max", lambda r: f"{r.jitter_max:.1f}"),
    ("lost", lambda r: f"{r.lost}"),
    ("stopped", lambda r: f"{r.stopped}"),
    ("skipped", lambda r: f"{r.skipped}"),
    ("cpu%", lambda r: f"{100 * r.server_cpu:.0f}"),
    ("others%", lambda r: f"{100 * r.others:.0f}"),
    ("tick50", lambda r: f"{r.tick_p50:.2f}"),
    ("tick99", lambda r: f"{r.tick_p99:.2f}"),
    ("late99", lambda r: f"{r.lateness_p99:.2f}"),
    ("resyncs", lambda r: f"{r.resyncs}"),
    ("span50", lambda r: f"{r.span_p50:.2f}"),
    ("span99", lambda r: f"{r.span_p99:.2f}"),
    ("KiB/call", lambda r: f"{r.bytes_per_call / 1024:.1f}"),
    ("load%", lambda r: f"{100 * r.load_cpu:.0f}"),
    ("drops", lambda r: f"{r.load_drops}"),
)


def _line(cells: list[str]) -> str:
    return " ".join(f"{cell:>8}" for cell in cells)


def _format(row: Row) -> str:
    failed = f"  failed: {row.failed}" if row.failed else ""
    return _line([value(row) for _, value in COLUMNS]) + failed


def _machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line), "")
    try:
        loop = f"uvloop {importlib.metadata.version('uvloop')}"
    except importlib.metadata.PackageNotFoundError:
        loop = "no uvloop"
    return (
        f"machine: {platform.node()}, {os.cpu_count()} cores, {model}, "
        f"python {platform.python_version()}, {loop}, {time.strftime('%Y-%m-%d %H:%M')}"
    )


def main() -> int:
    """Run every N, print one row each, then the verdict against the target."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", default="250,500,750,1000", help="comma-separated N")
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window, s")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after the ramp, s")
    parser.add_argument("--rate", type=float, default=200.0, help="new calls per second")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--no-uvloop", action="store_true", help="server on plain asyncio")
    args = parser.parse_args()
    print(_machine())
    print(
        f"server on core {args.server_core}, load on core {args.load_core}; {args.duration:g} s "
        "windows; times in ms (see the module docstring for each column)"
    )
    print(_line([title for title, _ in COLUMNS]), flush=True)
    rows = []
    for calls in (int(n) for n in args.calls.split(",")):
        rows.append(run_calls(calls, args))
        print(_format(rows[-1]), flush=True)
    best = max((row.calls for row in rows if row.passed), default=0)
    strict = max((row.calls for row in rows if row.passed and not row.skipped), default=0)
    print(
        f"{'PASS' if best >= TARGET_CALLS else 'FAIL'} vs target (jitter p99 <= "
        f"{TARGET_JITTER_MS:g} ms, zero loss, >= {TARGET_CALLS} calls on one core): highest "
        f"passing N = {best} (with no skipped frame either: {strict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
