"""bench/harness: what the benchmarks share about the processes they run and watch.

A process pinned to one core (taskset), its CPU seconds, run-queue wait and resident memory
(/proc), a core's busy time (/proc/stat), a UDP socket's receive-buffer drops
(/proc/net/udp); `callserver run` started on a settings file with its JSON log read by a
thread as it comes; the records the server wrote to its CDR spool (data_dir/cdr/*.jsonl, one
JSON line a leg) since a mark; and the looped default plan of the benchmarks whose calls hear
RTP throughout.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[1]
LOOPED_DEFAULT_PLAN = """\
description: The shipped default plan with the greeting looped and BYE after an hour
steps:
  welcome:
    play: greeting
    barge_in: true
    loop: true
  goodbye:
    hangup:
    after: 1h
"""


def write_looped_default_plan(directory: Path) -> Path:
    """``LOOPED_DEFAULT_PLAN`` as ``directory/default.yaml``: every call SIPp places (to a
    number without a plan of its own) hears the greeting over and over until its BYE."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "default.yaml"
    path.write_text(LOOPED_DEFAULT_PLAN, encoding="utf-8")
    return path


def free_port() -> int:
    """A UDP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (/proc/<pid>/stat utime, stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU seconds of every live process of session ``sid`` (a forking server)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        if int(fields[3]) == sid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_delay(pid: int) -> float:
    """Seconds the main thread of process ``pid`` was ready to run but waited for a CPU
    (/proc/<pid>/schedstat, the scheduler's run-queue wait): the time other work took."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def rss_bytes(pid: int) -> int:
    """Resident memory of process ``pid`` (/proc/<pid>/status VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def core_busy(core: str) -> float:
    """Seconds core ``core`` was busy since boot (/proc/stat: all but idle and iowait)."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(x) for x in line.split()[1:9]]
            return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return float("nan")  # not a single core


def pinned(cmd: list[str], core: str) -> list[str]:
    """``cmd`` run on core ``core`` when taskset is there."""
    return ["taskset", "-c", core, *cmd] if shutil.which("taskset") else cmd


def udp_drops(port: int) -> int:
    """The kernel's receive-buffer drop count of the UDP socket on 127.0.0.1:``port``."""
    wanted = f"0100007F:{port:04X}"
    for line in Path("/proc/net/udp").read_text().splitlines():
        fields = line.split()
        if len(fields) > 12 and fields[1] == wanted:
            return int(fields[-1])
    return 0


def options_answered(port: int, timeout: float = 0.2) -> bool:
    """Whether a SIP server on 127.0.0.1:``port`` answers an OPTIONS with 200 (RFC 3261 §11)."""
    stamp = time.monotonic_ns()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        request = (
            f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{probe.getsockname()[1]};branch=z9hG4bK-bench-{stamp}\r\n"
            f"From: <sip:bench@{HOST}>;tag=1\r\nTo: <sip:ping@{HOST}>\r\n"
            f"Call-ID: bench-{stamp}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            "Content-Length: 0\r\n\r\n"
        ).encode()
        probe.settimeout(timeout)
        probe.sendto(request, (HOST, port))
        try:
            return probe.recv(2048).startswith(b"SIP/2.0 200")
        except OSError:
            return False


def wait_answering(port: int, seconds: float, what: str) -> None:
    """Wait until ``what`` on ``port`` answers OPTIONS; RuntimeError after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if options_answered(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer OPTIONS on udp:{HOST}:{port} within {seconds:g} s")


@dataclass
class Server:
    """A running `callserver run` whose JSON log lines a thread reads as they come.

    Kept, with their arrival time (monotonic s): ``media.statistics`` lines, the lateness of
    each ``media.tick_late`` line, each ``dialplan.loaded`` line (a reload done), and the
    reason of each ``overload.started`` line (which signal made the server refuse calls)."""

    proc: subprocess.Popen[str]
    port: int
    data_dir: Path
    statistics: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    tick_late: list[tuple[float, float]] = field(default_factory=list)  # (arrival, late_ms)
    loaded: list[float] = field(default_factory=list)
    overloads: list[tuple[float, str]] = field(default_factory=list)  # (arrival, reason)

    def read(self) -> None:
        """Keep the lines named in the class docstring until the log ends."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if '"media.statistics"' in line:
                self.statistics.append((time.monotonic(), json.loads(line)))
            elif '"media.tick_late"' in line:
                late = float(json.loads(line).get("late_ms", "nan"))
                self.tick_late.append((time.monotonic(), late))
            elif '"dialplan.loaded"' in line:
                self.loaded.append(time.monotonic())
            elif '"overload.started"' in line:
                reason = str(json.loads(line).get("reason", "?"))
                self.overloads.append((time.monotonic(), reason))

    def stop(self) -> None:
        """SIGTERM, then wait for the drain (its length is the settings' drain_timeout)."""
        self.proc.send_signal(signal.SIGTERM)  # nothing if it has exited
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_server(
    workdir: Path,
    settings: str,
    port: int,
    core: str,
    *,
    no_uvloop: bool = False,
    profile: Path | None = None,
) -> Server:
    """`callserver run` on ``settings`` (YAML text listening on udp:HOST:``port``, data_dir
    workdir/var), pinned to ``core``, once it answers OPTIONS; under cProfile when
    ``profile`` names where its figures go (written when it stops)."""
    path = workdir / "callserver.yaml"
    path.write_text(settings)
    profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
    cmd = [sys.executable, *profiler, "-m", "callserver", "run", "--config", str(path)]
    if no_uvloop:
        cmd.append("--no-uvloop")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLSERVER_")}
    proc = subprocess.Popen(
        pinned(cmd, core),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
    )
    server = Server(proc, port, workdir / "var")
    threading.Thread(target=server.read, daemon=True).start()
    try:
        wait_answering(port, 30, "callserver")
    except RuntimeError:
        server.stop()
        raise
    return server


class CdrSpool:
    """The CDR records a server wrote to ``data_dir/cdr/*.jsonl`` since the last ``mark``."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = data_dir / "cdr"
        self.offsets: dict[Path, int] = {}

    def mark(self) -> None:
        """Count from the current end of every spool file on."""
        self.offsets = {path: path.stat().st_size for path in self.directory.glob("*.jsonl")}

    def since(self) -> Counter[str]:
        """``records``: complete lines since the mark; ``sip_<code>``: those with that sip_code."""
        counts: Counter[str] = Counter()
        for path in sorted(self.directory.glob("*.jsonl")):
            with path.open("rb") as spool:
                spool.seek(self.offsets.get(path, 0))
                for line in spool:
                    if line.endswith(b"\n"):
                        counts["records"] += 1
                        counts[f"sip_{json.loads(line).get('sip_code')}"] += 1
        return counts


class StandInSocket:
    """Stands in for the server's UDP socket in the in-process benchmarks (bench/call_path,
    bench/register_path): keeps the datagrams sent; nothing waits in a kernel buffer."""

    local_address = ("127.0.0.1", 5060)

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, data: bytes, peer: object) -> None:
        """Keep ``data``."""
        self.sent.append(data)

    def receive_backlog(self) -> int:
        """Nothing waits: every datagram is fed in by hand."""
        return 0

    def close(self) -> None:
        """Forget what was sent."""
        self.sent.clear()
