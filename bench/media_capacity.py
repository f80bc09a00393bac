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

Cases with more than media in the window (N = 250 unless --calls says otherwise):

- --mixed: SIPp's uac scenario makes --new-rate new calls a second (100) for the window, on
  the generator's core; a line of their own gives those made, completed and failed (503s
  among them) and their INVITE->200 p50/p99;
- --reload N: N copies of the shipped company plan in the dialplans directory, and a SIGHUP
  (reload everything) a second into the window, then every --reload-every s; a line gives
  each reload's time to its ``dialplan.loaded`` line and the window's late ticks;
- --soak SECONDS: a mixed window that long, then a line with the lateness p99 of the last
  statistics line, the server's memory at the window's start and end, and its CDR records
  against the calls made (the generator's and SIPp's: one record each).

    .venv/bin/python bench/media_capacity.py --calls 250,500,750,1000 --duration 20
    .venv/bin/python bench/media_capacity.py --mixed --reload 300 --duration 20
    .venv/bin/python bench/media_capacity.py --soak 600
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from dialplan_load import write_plans
from harness import HOST, CdrSpool, free_port, start_server, write_looped_default_plan
from reloads import Reloads
from rtp_window import Load, Row, measure
from sipp_uac import NewCalls, UacFigures

ROOT = Path(__file__).resolve().parents[1]
TARGET_CALLS = 1000
TARGET_JITTER_MS = 5.0
MIXED_CALLS = 250  # calls in progress of the mixed case, unless --calls says otherwise


def passed(row: Row) -> bool:
    """Every call up, jitter p99 within the target and no packet lost."""
    ok = row.up == row.calls and row.lost == 0 and row.stopped == 0
    return ok and row.jitter_p99 <= TARGET_JITTER_MS


def _settings(workdir: Path, port: int, calls: int) -> str:
    return (
        f"sip: {{listen: ['udp:{HOST}:{port}']}}\n"
        f"media: {{rtp_port_min: 20000, rtp_port_max: {20000 + max(4000, 4 * calls)}, "
        f"statistics_interval: 5, prompts_dir: '{ROOT / 'prompts'}'}}\n"
        "calls: {max_calls: 100000, drain_timeout: 1}\n"
        f"dialplans: '{workdir / 'dialplans'}'\ndata_dir: '{workdir / 'var'}'\n"
        "log_level: info\nlog_format: json\n"
    )


def run_calls(calls: int, args: argparse.Namespace) -> tuple[Row, list[str]]:
    """One N: fresh server, generator ramp, settle, window (with the new calls and reloads of
    the case), hang-up, analysis; the row and the case's own lines."""
    with tempfile.TemporaryDirectory(prefix="media-capacity-") as tmp:
        workdir = Path(tmp)
        (workdir / "dialplans").mkdir()
        write_plans(workdir / "dialplans", args.reload)
        write_looped_default_plan(workdir / "dialplans")  # every call hears the greeting
        port = free_port()
        settings = _settings(workdir, port, calls)
        server = start_server(workdir, settings, port, args.server_core, no_uvloop=args.no_uvloop)
        new_calls = None
        if args.mixed:
            rate, seconds = args.new_rate, args.duration
            new_calls = NewCalls(args.sipp, port, rate, seconds, args.load_core, workdir)
        reloads = Reloads(server, args.reload_every) if args.reload else None
        during = [work for work in (new_calls, reloads) if work]
        try:
            row = measure(server, _load(calls, args), workdir, during)
            uac = new_calls.figures() if new_calls else None
        finally:
            if new_calls:
                new_calls.end()
            server.stop()
        return row, _notes(args, row, uac, reloads, CdrSpool(server.data_dir))


def _load(calls: int, args: argparse.Namespace) -> Load:
    return Load(
        calls=calls,
        rate=args.rate,
        settle=args.settle,
        duration=args.duration,
        server_core=args.server_core,
        load_core=args.load_core,
    )


def _notes(
    args: argparse.Namespace,
    row: Row,
    uac: UacFigures | None,
    reloads: Reloads | None,
    spool: CdrSpool,
) -> list[str]:
    """The lines of the case: new calls, reloads, the soak's end."""
    notes = [] if uac is None else [new_calls_line(uac)]
    if reloads:
        notes.append(reloads.line(args.reload))
    if args.soak:
        calls_made = row.attempted + (uac.attempted if uac else 0)
        notes.append(_soak_line(row, spool.since()["records"], calls_made))
    return notes


def new_calls_line(uac: UacFigures) -> str:
    """The new calls' figures: made, completed, failed (503s), INVITE->200."""
    return (
        f"new calls (SIPp uac {uac.rate}/s for {uac.seconds:g} s): {uac.attempted} made, "
        f"{uac.succeeded} completed, {uac.failed} failed ({uac.refused} answered 503), "
        f"{uac.retransmissions} retransmissions; INVITE->200 p50 {uac.rtt_percentile(0.5):.1f} "
        f"ms, p99 {uac.rtt_percentile(0.99):.1f} ms ({uac.slow} >= 20 ms)"
    )


def _soak_line(row: Row, records: int, calls: int) -> str:
    mib = 1 / (1 << 20)
    verdict = "equal" if records == calls else "MISMATCH"
    return (
        f"soak: lateness p99 at the end {row.lateness_p99:.2f} ms; server memory "
        f"{row.rss_start * mib:.1f} MiB at the start, {row.rss_end * mib:.1f} MiB at the end; "
        f"{records} CDRs for {calls} calls ({verdict})"
    )


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


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--calls",
        help="comma-separated N (default 250,500,750,1000; 250 for --mixed, --reload and --soak)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="measurement window, s")
    parser.add_argument("--settle", type=float, default=3.0, help="wait after the ramp, s")
    parser.add_argument("--rate", type=float, default=200.0, help="ramp: new calls per second")
    parser.add_argument("--mixed", action="store_true", help="new calls from SIPp in the window")
    parser.add_argument("--new-rate", type=int, default=100, help="--mixed: new calls/s")
    parser.add_argument(
        "--reload",
        type=int,
        default=0,
        metavar="N",
        help="N dialplan files, reloaded by SIGHUP during the window",
    )
    parser.add_argument("--reload-every", type=float, default=5.0, help="s between SIGHUPs")
    parser.add_argument(
        "--soak",
        type=float,
        metavar="SECONDS",
        help="a mixed window this long; lateness, memory and CDRs at the end",
    )
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--load-core", default="1")
    parser.add_argument("--no-uvloop", action="store_true", help="server on plain asyncio")
    args = parser.parse_args()
    if args.soak:
        args.mixed, args.duration = True, args.soak
    case = args.mixed or args.reload
    args.calls = args.calls or (str(MIXED_CALLS) if case else "250,500,750,1000")
    args.sipp = shutil.which("sipp")
    if args.mixed and args.sipp is None:
        parser.error("sipp not found: apt-get install sip-tester (or make sipp)")
    if args.reload < 0 or args.reload_every <= 0 or args.new_rate <= 0:
        parser.error("--reload must be 0 (none) or more; --reload-every and --new-rate above 0")
    return args


def _case(args: argparse.Namespace) -> str:
    parts = [f"{args.new_rate} new calls/s (SIPp uac)"] if args.mixed else []
    if args.reload:
        parts.append(f"{args.reload} dialplans reloaded by SIGHUP every {args.reload_every:g} s")
    if args.soak:
        parts.append("soak")
    return f"; during the window: {', '.join(parts)}" if parts else ""


def main() -> int:
    """Run every N, print one row each (and the case's lines), then the verdict."""
    args = _arguments()
    print(_machine())
    print(
        f"server on core {args.server_core}, load on core {args.load_core}; {args.duration:g} s "
        f"windows{_case(args)}; times in ms (see the module docstring for each column)"
    )
    print(_line([title for title, _ in COLUMNS]), flush=True)
    rows = []
    for calls in (int(n) for n in args.calls.split(",")):
        row, notes = run_calls(calls, args)
        rows.append(row)
        print(_format(row), *notes, sep="\n", flush=True)
    best = max((row.calls for row in rows if passed(row)), default=0)
    strict = max((row.calls for row in rows if passed(row) and not row.skipped), default=0)
    if _case(args):
        print(
            f"{'PASS' if best else 'FAIL'} vs target (jitter p99 <= {TARGET_JITTER_MS:g} ms, "
            "zero loss for the calls in progress)"
        )
        return 0
    print(
        f"{'PASS' if best >= TARGET_CALLS else 'FAIL'} vs target (jitter p99 <= "
        f"{TARGET_JITTER_MS:g} ms, zero loss, >= {TARGET_CALLS} calls on one core): highest "
        f"passing N = {best} (with no skipped frame either: {strict})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
