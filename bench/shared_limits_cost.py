"""bench/shared_limits_cost: what sharing the limits through Redis costs a call, on one node.

One `callserver run` pinned to a core (SIPp and redis-server on the other) takes SIPp's
built-in uac calls (INVITE, 200, ACK, BYE) at --rate for --duration seconds, alternately
without and with `cluster.redis` (--pairs times each). Both runs use the same trunks file: the
trunk of 127.0.0.1 with a call rate and a customer with a channel limit, so a call takes three
pools (trunk, customer, number), one limited, and its trunk's bucket; neither limit is ever
reached. For each run it prints the calls (failed ones by SIP code, overload episodes by
reason), the server's CPU per call, INVITE->200 p50/p99 and, with Redis: the round trips a
call (INFO commandstats: EVALSHA of the acquire and release scripts, the lease's SET; the
commands the scripts ran inside Redis apart), redis-server's own CPU per call, and the round
trip of the acquire as the node measured it (callserver_cluster_acquire_seconds from
/metrics: its mean, and the histogram buckets holding the median and the 99th percentile).

    .venv/bin/python bench/shared_limits_cost.py --rate 300 --duration 20 --pairs 2
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from harness import HOST, ROOT, cpu_seconds, free_port, pinned, start_server
from sipp_uac import run_uac

TRUNKS = """\
customers:
  bench: {channels: 100000}
trunks:
  test: {match: [127.0.0.1], customer: bench, cps: 100000}
"""


def _settings(workdir: Path, port: int, admin: int, redis_url: str | None) -> str:
    cluster = f"cluster: {{node: bench, redis: '{redis_url}'}}\n" if redis_url else ""
    return (
        f"sip:\n  listen: ['udp:{HOST}:{port}']\n"
        f"calls: {{max_calls: 100000}}\ndialplans: '{ROOT / 'dialplans'}'\n"
        f"trunks: '{workdir / 'trunks.yaml'}'\ncentrex: '{workdir / 'centrex.yaml'}'\n"
        f"admin: {{listen: '{HOST}:{admin}'}}\n"
        f"data_dir: {workdir / 'var'}\nlog_level: warning\nlog_format: json\n{cluster}"
    )


def _redis(workdir: Path, core: str) -> tuple[subprocess.Popen[bytes], int]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server (make redis)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(pinned(command, core), stdout=subprocess.DEVNULL, cwd=workdir)
    for _ in range(100):
        if _redis_cli(port, "PING").strip() == "PONG":
            return proc, port
        time.sleep(0.05)
    raise SystemExit("redis-server did not answer")


def _redis_cli(port: int, *command: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *command], capture_output=True, text=True, check=False
    )
    return done.stdout


# What a node sends itself; every other command counted is one a script ran inside Redis.
_ROUND_TRIPS = ("evalsha", "eval", "script", "set", "del")


def _commands(port: int) -> tuple[int, int]:
    """(round trips, commands run inside scripts) since Redis started (INFO commandstats)."""
    trips = inside = 0
    for line in _redis_cli(port, "INFO", "commandstats").splitlines():
        if not line.startswith("cmdstat_"):
            continue
        name = line[len("cmdstat_") :].split(":", 1)[0]
        calls = int(line.split("calls=", 1)[1].split(",", 1)[0])
        if name in _ROUND_TRIPS:
            trips += calls
        elif name not in ("info", "ping"):
            inside += calls
    return trips, inside


def _acquire_histogram(admin: int) -> tuple[float, float, list[tuple[str, float]]]:
    """(count, sum, [(le, cumulative count)]) of callserver_cluster_acquire_seconds."""
    with urllib.request.urlopen(f"http://{HOST}:{admin}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    count = total = 0.0
    buckets = []
    for line in text.splitlines():
        if line.startswith("callserver_cluster_acquire_seconds_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((le, float(line.rsplit(" ", 1)[1])))
        elif line.startswith("callserver_cluster_acquire_seconds_count"):
            count = float(line.rsplit(" ", 1)[1])
        elif line.startswith("callserver_cluster_acquire_seconds_sum"):
            total = float(line.rsplit(" ", 1)[1])
    return count, total, buckets


def _quantile(buckets: list[tuple[str, float]], count: float, q: float) -> str:
    """The bound of the first histogram bucket holding the ``q`` quantile."""
    return next((le for le, n in buckets if n >= q * count), "+Inf")


def _run(
    sipp: str, args: argparse.Namespace, workdir: Path, redis_port: int | None, pid: int
) -> str:
    """One run at the rate: the server without (``redis_port`` None) or with Redis."""
    workdir.mkdir(parents=True)
    (workdir / "trunks.yaml").write_text(TRUNKS)
    port, admin = free_port(), free_port()
    url = None if redis_port is None else f"redis://{HOST}:{redis_port}/0"
    server = start_server(workdir, _settings(workdir, port, admin, url), port, args.server_core)
    try:
        commands = (0, 0) if redis_port is None else _commands(redis_port)
        redis_cpu = cpu_seconds(pid)
        figures = run_uac(
            sipp,
            port,
            args.rate,
            args.duration,
            args.sipp_core,
            workdir,
            lambda: cpu_seconds(server.proc.pid),
        )
        mode = "redis " if url else "single"
        line = (
            f"{mode}  calls {figures.succeeded:5d}/{figures.attempted:5d}  "
            f"cpu {figures.cpu_per_call_us:6.0f} us/call  INVITE->200 p50 "
            f"{figures.rtt_percentile(0.5):5.2f} ms p99 {figures.rtt_percentile(0.99):6.2f} ms"
            f"  failed {figures.failed} (no answer {figures.timeouts}, {dict(figures.codes)})"
        )
        if server.overloads:
            reasons = sorted({reason for _, reason in server.overloads})
            line += f"  overload episodes {len(server.overloads)} ({', '.join(reasons)})"
        if redis_port is not None:
            calls = max(1, figures.succeeded)
            trips, inside = _commands(redis_port)
            per_call = (trips - commands[0]) / calls
            in_scripts = (inside - commands[1]) / calls
            redis_us = 1e6 * (cpu_seconds(pid) - redis_cpu) / calls
            count, total, buckets = _acquire_histogram(admin)
            mean = 1e3 * total / max(1.0, count)
            p50, p99 = (_quantile(buckets, count, q) for q in (0.5, 0.99))
            line += (
                f"\n        round trips {per_call:.2f}/call (in scripts {in_scripts:.1f} commands)"
                f", redis-server cpu {redis_us:.0f} us/call, acquire round trip mean "
                f"{mean:.3f} ms over {count:.0f}, p50 <= {p50} s, p99 <= {p99} s"
            )
        return line
    finally:
        server.stop()


def main() -> None:
    """Alternate runs without and with Redis; print a line (two with Redis) each."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=300)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--sipp-core", default="1", help="SIPp's and redis-server's core")
    args = parser.parse_args()
    sipp = shutil.which("sipp")
    if sipp is None:
        raise SystemExit("sipp not found: apt-get install sip-tester (make sipp)")
    with tempfile.TemporaryDirectory(prefix="limits-") as tmp, contextlib.ExitStack() as stack:
        workdir = Path(tmp)
        redis, redis_port = _redis(workdir, args.sipp_core)
        stack.callback(redis.terminate)
        for pair in range(args.pairs):
            for mode, port in (("single", None), ("redis", redis_port)):
                print(_run(sipp, args, workdir / f"{mode}-{pair}", port, redis.pid), flush=True)
                time.sleep(2)


if __name__ == "__main__":
    main()
