"""bench/queue_load: 500 callers waiting in a call-centre queue, 50 agents answering, one core.

A fresh `callserver run`, pinned to one core (taskset), with a generated config: a customer
with --agents agent licences and as many Centrex phones (bench/register's files), and a
dialplan number whose plan is one ``queue`` step of all the phones (longest idle first, music
on hold, position and wait announced every --announce-every s, --wrap-up s of wrap-up). On the
other core:

- the agents: SIPp registers every phone once (bench/uac-register-digest.xml, all on one
  contact port), each logs in over the control channel (``agents.login``), then one SIPp on
  that port plays all the phones (bench/uas-agent-answers-talks-hangs-up.xml): a queue call
  rings 0.5-1.5 s, is answered, talks 2-5 s, and the agent hangs up; the caller is then hung
  up by the server (the plan's end);
- the callers: bench/rtp_load (through bench/rtp_window) calls the queue number at --rate a
  second until --callers + --agents calls are up, each sending 20 ms PCMU; every caller the
  server ends is replaced (``--churn``), so about --callers keep waiting while up to --agents
  others ring or talk to an agent.

After --settle s it measures for --duration s and prints one line:

- waiting: callers in the queue at the window's end (the queue event log's joins less its
  answers, abandons, leaves and timeouts); agents: logged in; answered: the log's answers in
  the window; ended: the callers the server hung up in the window;
- jitter50/jitter99/max, lost: the send-interval jitter of the server's RTP toward the
  callers, from the kernel's receive stamps (bench/rtp_window; the callers waiting hear music
  and announcements; one talking to an agent hears the agent, who sends nothing), and the
  sequence gaps (a caller answered or replaced in the window is not loss);
- cpu%, others%, waited%, tick99, late99: the server's CPU as a share of one core, what else
  ran on it, how long its loop was ready to run but waited for the core (its run-queue wait,
  /proc/<pid>/schedstat: the other work's share of the server's stalls), the media clock's
  tick p99 and lateness p99 (its last ``media.statistics`` line);
- decision50/decision99/max: how long every call into the call centre took inside the
  server in the window (its control channel's ``centre.timings``, µs), and a line per entry
  point under it.

    .venv/bin/python bench/queue_load.py                      # 500 callers, 50 agents, 20 s
    .venv/bin/python bench/queue_load.py --callers 250 --duration 10
    .venv/bin/python bench/queue_load.py --profile /tmp/queue.prof   # pstats: what costs
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import HOST, ROOT, Server, free_port, run_delay, start_server
from media_capacity import _machine
from register import SCENARIO, Phones, _number, answering, register_all, write_phones
from rtp_window import Load, Row, measure
from sipp_uac import _rows

from callserver.process.control import request

TARGET_JITTER_MS = 5.0
TARGET_DECISION_US = 1000.0
QUEUE_NUMBER = _number(9999)[1:]  # in the phones' block, no phone's
AGENT_SCENARIO = Path(__file__).resolve().parent / "uas-agent-answers-talks-hangs-up.xml"
WAIT_ENDS = ("answer", "abandon", "leave", "timeout")


def _plan(agents: int, announce_every: float, wrap_up: float) -> str:
    members = "".join(f"      '{_number(i)}': {{}}\n" for i in range(agents))
    return (
        "description: bench/queue_load's queue of every phone\nlanguage: en\nsteps:\n"
        "  wait:\n    queue: bench\n    agents:\n"
        f"{members}    ring_timeout: 15s\n    wrap_up: {wrap_up:g}s\n"
        f"    announce_every: {announce_every:g}s\n"
    )


def _settings(workdir: Path, port: int, calls: int) -> str:
    return (
        f"sip: {{listen: ['udp:{HOST}:{port}']}}\n"
        f"media: {{rtp_port_min: 30000, rtp_port_max: {30000 + max(4000, 8 * calls)}, "
        f"statistics_interval: 5, prompts_dir: '{ROOT / 'prompts'}'}}\n"
        "calls: {max_calls: 100000, drain_timeout: 1}\n"
        f"trunks: '{workdir / 'trunks.yaml'}'\ncentrex: '{workdir / 'centrex.yaml'}'\n"
        "registrar: {register_burst: 20}\n"
        f"dialplans: '{workdir / 'dialplans'}'\ndata_dir: '{workdir / 'var'}'\n"
        "log_level: info\nlog_format: json\n"
    )


def queue_log(data_dir: Path) -> Counter[str]:
    """The queue event log's lines so far, counted by kind."""
    kinds: Counter[str] = Counter()
    for path in sorted((data_dir / "queue-events").glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            kinds[json.loads(line)["kind"]] += 1
    return kinds


@dataclass
class Decisions:
    """The window's edges as the server's call centre sees them (bench/rtp_window's
    ``During``): its timings cleared at the start and read at the end, its event log counted
    at both."""

    data_dir: Path
    agents_csv: Path  # the agents' SIPp statistics
    pid: int  # the server's
    waited: float = float("nan")  # its loop's run-queue wait in the window, s
    seconds: float = float("nan")  # the window's length, s
    timings: dict[str, Any] = field(default_factory=dict)
    agents_start: tuple[int, int] = (0, 0)
    agents_end: tuple[int, int] = (0, 0)
    log_start: Counter[str] = field(default_factory=Counter)
    log_end: Counter[str] = field(default_factory=Counter)

    def start(self) -> None:
        """Clear the centre's timings; count the log."""
        request(self.data_dir, {"command": "centre.timings", "clear": True})
        self.waited, self.seconds = run_delay(self.pid), time.monotonic()
        self.log_start = queue_log(self.data_dir)
        self.agents_start = agents_calls(self.agents_csv)

    def stop(self) -> None:
        """Read the centre's timings; count the log."""
        answer = request(self.data_dir, {"command": "centre.timings"})
        self.waited, self.seconds = (
            run_delay(self.pid) - self.waited,
            time.monotonic() - self.seconds,
        )
        assert isinstance(answer, dict)
        self.timings = answer
        time.sleep(0.2)  # the log's group commit
        self.log_end = queue_log(self.data_dir)
        time.sleep(1.0)  # the agents' SIPp writes its statistics once a second
        self.agents_end = agents_calls(self.agents_csv)

    def waiting(self) -> int:
        """Callers in the queue at the window's end."""
        return self.log_end["join"] - sum(self.log_end[kind] for kind in WAIT_ENDS)

    def answered(self) -> int:
        """Callers answered in the window."""
        return self.log_end["answer"] - self.log_start["answer"]

    def agents_window(self) -> tuple[int, int]:
        """The agents' SIPp's calls completed and failed in the window (give or take the
        second of its statistics)."""
        return (
            self.agents_end[0] - self.agents_start[0],
            self.agents_end[1] - self.agents_start[1],
        )


def log_in(server: Server, agents: int) -> int:
    """Log every phone in over the control channel; how many are logged in."""
    outcomes: Counter[str] = Counter()
    for i in range(agents):
        answer = request(server.data_dir, {"command": "agents.login", "agent": _number(i)})
        outcomes[str(answer["outcome"]) if isinstance(answer, dict) else repr(answer)] += 1
    if outcomes["logged_in"] != agents:
        raise RuntimeError(f"agents' logins: {dict(outcomes)}")
    return agents


def _register(sipp: str, server: Server, phones: Phones, core: str, workdir: Path) -> None:
    directory = workdir / "register"
    directory.mkdir()
    figures = register_all(sipp, server, phones, max(10, phones.count), core, directory)
    if figures.succeeded != phones.count:
        raise RuntimeError(
            f"{figures.succeeded} of {phones.count} phones registered ({SCENARIO.name}: "
            f"{dict(figures.codes)})"
        )


def agents_calls(path: Path) -> tuple[int, int]:
    """The agents' SIPp: calls it completed and failed so far (its last statistics row)."""
    rows = _rows(path)
    last = rows[-1] if rows else {}
    return int(last.get("SuccessfulCall(C)", "0")), int(last.get("FailedCall(C)", "0"))


def run(sipp: str, args: argparse.Namespace, workdir: Path) -> tuple[Row, Decisions, int]:
    """One run: server, agents registered and logged in, the window; the row, the centre's
    figures and the agents logged in."""
    phones = write_phones(workdir, args.agents, licences=args.agents)
    (workdir / "dialplans").mkdir()
    plan = _plan(args.agents, args.announce_every, args.wrap_up)
    (workdir / "dialplans" / f"{QUEUE_NUMBER}.yaml").write_text(plan)
    port = free_port()
    settings = _settings(workdir, port, args.callers + args.agents)
    server = start_server(workdir, settings, port, args.server_core, profile=args.profile)
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the agents' RTP: never read
    try:
        sink.bind((HOST, 0))
        _register(sipp, server, phones, args.load_core, workdir)
        logged_in = log_in(server, args.agents)
        scenario = ["-sf", str(AGENT_SCENARIO), "-key", "rtp_port", str(sink.getsockname()[1])]
        scenario += ["-trace_stat", "-stf", "agents.csv", "-fd", "1", "-trace_err"]
        decisions = Decisions(server.data_dir, workdir / "agents.csv", server.proc.pid)
        load = Load(
            calls=args.callers + args.agents,  # the agents' callers besides those waiting
            rate=args.rate,
            settle=args.settle,
            duration=args.duration,
            server_core=args.server_core,
            load_core=args.load_core,
            generator_args=("--numbers", QUEUE_NUMBER, "--linger", "4"),
            churn=int(args.agents * (args.callers / args.rate + args.settle + args.duration + 60)),
        )
        with answering(sipp, phones, args.load_core, workdir, scenario):
            row = measure(server, load, workdir, [decisions])
    finally:
        sink.close()
        server.stop()
    return row, decisions, logged_in


def _us(figures: dict[str, Any], key: str) -> str:
    return f"{figures.get(key, float('nan')):.0f}"


def line(row: Row, decisions: Decisions, agents: int) -> list[str]:
    """The run's line, then one per entry point of the centre."""
    every = decisions.timings.get("all", {})
    completed, failed = decisions.agents_window()
    lines = [
        f"waiting {decisions.waiting()}  agents {agents}  answered {decisions.answered()}  "
        f"ended {row.ended}  calls up {row.up}  jitter50 {row.jitter_p50:.2f}  "
        f"jitter99 {row.jitter_p99:.2f}  max {row.jitter_max:.1f}  lost {row.lost}  "
        f"cpu% {100 * row.server_cpu:.0f}  others% {100 * row.others:.0f}  "
        f"waited% {100 * decisions.waited / decisions.seconds:.0f}  "
        f"tick99 {row.tick_p99:.2f}  late99 {row.lateness_p99:.2f}  "
        f"decision50 {_us(every, 'p50_us')}  decision99 {_us(every, 'p99_us')}  "
        f"max {_us(every, 'max_us')} (µs, {every.get('calls', 0)} calls)",
        f"  agents' phones (SIPp) in the window: {completed} calls completed, {failed} failed; "
        "callers' "
        f"generator: {row.attempted} INVITEs in the ramp, failed {row.failed or 'none'}",
    ]
    for name, figures in decisions.timings.get("entry_points", {}).items():
        lines.append(
            f"  {name:12s} calls {figures['calls']:6d}  p50 {figures['p50_us']:7.1f} µs  "
            f"p99 {figures['p99_us']:7.1f} µs  max {figures['max_us']:8.1f} µs"
        )
    return lines


def passed(row: Row, decisions: Decisions) -> bool:
    """Jitter p99 and decision p99 within their targets, no packet lost, calls answered."""
    decision99 = float(decisions.timings.get("all", {}).get("p99_us", float("inf")))
    ok = row.jitter_p99 <= TARGET_JITTER_MS and decision99 <= TARGET_DECISION_US
    return ok and row.lost == 0 and decisions.answered() > 0


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=500, help="callers kept in the queue")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window, s")
    parser.add_argument("--settle", type=float, default=5.0, help="wait after the ramp, s")
    parser.add_argument("--rate", type=float, default=100.0, help="new callers per second")
    parser.add_argument("--announce-every", type=float, default=10.0, help="s, the queue's")
    parser.add_argument("--wrap-up", type=float, default=1.0, help="s, the queue's")
    parser.add_argument("--profile", type=Path, help="cProfile the server into this file")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    args = parser.parse_args()
    if args.callers < 1 or not 1 <= args.agents <= 9999 or args.rate <= 0:
        parser.error("--callers 1 or more, --agents 1 to 9999, --rate above 0")
    args.sipp = shutil.which("sipp")
    if args.sipp is None:
        parser.error("sipp not found: apt-get install sip-tester (or make sipp)")
    return args


def main() -> int:
    """One run; its line, the entry points' lines, the verdict."""
    args = _arguments()
    print(_machine())
    print(
        f"server on core {args.server_core}, load (callers, agents' SIPp) on core "
        f"{args.load_core}; {args.callers} callers, {args.agents} agents, announcements every "
        f"{args.announce_every:g} s, wrap-up {args.wrap_up:g} s; {args.duration:g} s window; "
        "jitter in ms (see the module docstring for each figure)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="queue-load-") as tmp:
        row, decisions, agents = run(args.sipp, args, Path(tmp))
        print(*line(row, decisions, agents), sep="\n")
    print(
        f"{'PASS' if passed(row, decisions) else 'FAIL'} vs target (send jitter p99 <= "
        f"{TARGET_JITTER_MS:g} ms for the waiting callers, zero loss, queue decisions p99 <= "
        f"{TARGET_DECISION_US / 1000:g} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
