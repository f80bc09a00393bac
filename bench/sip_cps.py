"""bench/sip_cps: the highest call rate `callserver run` completes with zero failed calls.

SIPp's built-in uac scenario (INVITE, 200, ACK, BYE, 200) runs against the server at rising
rates, each for --duration seconds; the server is pinned to one core (taskset) and SIPp to
another. For each rate it prints calls attempted/succeeded/failed, the INVITE->200 latency
p50/p99 from SIPp's -trace_rtt, and the server's CPU seconds per call. The highest rate with
zero failures is the figure for bench/RESULTS.md.

    .venv/bin/python bench/sip_cps.py --rates 200,400,600,800,1000,1200 --duration 60
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"


@dataclass
class RateResult:
    rate: int
    attempted: int
    succeeded: int
    failed: int
    p50_ms: float
    p99_ms: float
    slow: int
    cpu_per_call_us: float
    cpu_share: float


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_server(workdir: Path, port: int, core: str) -> subprocess.Popen[bytes]:
    config = workdir / "callserver.yaml"
    config.write_text(
        f"sip:\n  listen: ['udp:{HOST}:{port}']\n"
        "calls:\n  answer_hangup_after: 30\n  max_calls: 100000\n"
        f"data_dir: {workdir / 'var'}\nlog_level: warning\nlog_format: json\n"
    )
    cmd = [sys.executable, "-m", "callserver", "run", "--config", str(config)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", core, *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.settimeout(0.2)
            probe.sendto(_options(port), (HOST, port))
            try:
                if probe.recv(2048).startswith(b"SIP/2.0 200"):
                    return proc
            except OSError:
                time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not answer OPTIONS within 10 s")


def _options(port: int) -> bytes:
    return (
        f"OPTIONS sip:ping@{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:9;branch=z9hG4bK-bench-{time.monotonic_ns()}\r\n"
        "From: <sip:bench@127.0.0.1>;tag=1\r\nTo: <sip:ping@127.0.0.1>\r\n"
        f"Call-ID: bench-{time.monotonic_ns()}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _read_rtt(workdir: Path) -> list[float]:
    out: list[float] = []
    for path in workdir.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    out.append(float(parts[1]))
                except ValueError:
                    continue
        path.unlink()
    return out


def _slow_count(rtt_rows: list[float]) -> int:
    """How many INVITE->200 times reached 20 ms (the p99 target)."""
    return sum(1 for value in rtt_rows if value >= 20)


def _read_stats(path: Path) -> dict[str, str]:
    rows = [line.split(";") for line in path.read_text().strip().splitlines()]
    return dict(zip(rows[0], rows[-1], strict=False))


def run_rate(
    sipp: str, port: int, server_pid: int, rate: int, duration: int, core: str, workdir: Path
) -> RateResult:
    """Run SIPp's uac at ``rate`` calls/s for ``duration`` seconds and collect the figures."""
    calls = rate * duration
    stat_file = workdir / f"stat-{rate}.csv"
    cmd = [
        sipp,
        f"{HOST}:{port}",
        "-sn",
        "uac",
        "-i",
        HOST,
        "-p",
        str(_free_port()),
        "-mp",
        str(_free_port()),
        "-r",
        str(rate),
        "-m",
        str(calls),
        "-l",
        str(rate * 4),
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        "-trace_rtt",
        "-rtt_freq",
        "100",
        "-timeout",
        f"{duration * 3 + 30}s",
        "-timeout_error",
        "-max_socket",
        "65000",
        "-recv_timeout",
        "10000",
    ]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", core, *cmd]
    cpu0 = _cpu_seconds(server_pid)
    subprocess.run(
        cmd,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=duration * 3 + 60,
        check=False,
    )
    cpu = _cpu_seconds(server_pid) - cpu0
    stats = _read_stats(stat_file)
    rtt = _read_rtt(workdir)
    succeeded = int(stats.get("SuccessfulCall(C)", "0"))
    failed = int(stats.get("FailedCall(C)", "0"))
    elapsed = max(1e-9, duration)
    return RateResult(
        rate=rate,
        attempted=int(stats.get("TotalCallCreated", "0")),
        succeeded=succeeded,
        failed=failed,
        p50_ms=_percentile(rtt, 0.5),
        p99_ms=_percentile(rtt, 0.99),
        slow=_slow_count(rtt),
        cpu_per_call_us=1e6 * cpu / max(1, succeeded),
        cpu_share=cpu / elapsed,
    )


def main() -> int:
    """Run the rates, print one line each, then the best zero-failure rate."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,400,600,800,1000,1200")
    parser.add_argument("--duration", type=int, default=60)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--sipp-core", default="1")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp not found: apt-get install sip-tester", file=sys.stderr)
        return 2
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )
    best = 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        port = _free_port()
        server = _start_server(workdir, port, args.server_core)
        try:
            for rate in (int(r) for r in args.rates.split(",")):
                res = run_rate(sipp, port, server.pid, rate, args.duration, args.sipp_core, workdir)
                print(
                    f"rate {res.rate:5d}/s  calls {res.attempted:6d}  ok {res.succeeded:6d}  "
                    f"failed {res.failed:4d}  INVITE->200 p50 {res.p50_ms:6.2f} ms  "
                    f"p99 {res.p99_ms:6.2f} ms  (>=20 ms: {res.slow})  "
                    f"server cpu {res.cpu_per_call_us:6.0f} us/call "
                    f"({100 * res.cpu_share:3.0f}% of a core)",
                    flush=True,
                )
                if res.failed == 0 and res.succeeded == res.attempted > 0:
                    best = max(best, rate)
                time.sleep(2)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    print(f"highest rate with zero failed calls: {best}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
