"""bench/sip_cps: the highest call rate `callserver run` completes with zero failed calls.

SIPp's built-in uac scenario (INVITE, 200, ACK, BYE, 200) runs against the server at rising
rates, each for --duration seconds; the server (shipped defaults: every call answered by the
built-in behaviour, RTP port pair, greeting, CDR) is pinned to one core (taskset) and SIPp to
another. In the same run, at each rate, the same load goes to a Kamailio stateless responder
(bench/kamailio_responder) pinned to the server's core, for reference. For each rate and peer
it prints calls attempted/succeeded/failed, SIPp's retransmissions, INVITE->200 p50/p99 from
SIPp's -trace_rtt, and the peer's CPU per call (Kamailio: all its processes); then the ratio
callserver/Kamailio of succeeded calls and of CPU per call. The highest rate with zero
failures is the figure for bench/RESULTS.md.

--overload R (the sustainable rate) adds the overload rows: for each factor in
--overload-factors (2, 5), a fresh server with --overload-calls calls in progress, each with
RTP (bench/rtp_load, as bench/media_capacity runs it), while SIPp offers factor x R calls/s for
--overload-duration seconds. Each row gives the calls offered and completed (goodput: completed
calls / seconds of load, also as % of R; SIPp's whole run, with the calls that wait for a
response, is longer), the failed calls: answered 503 and not answered within 10 s (SIPp counts
a 503 only when it comes before it gave up on the call), the server's CDRs with sip_code 503
(all its refusals, however late), SIPp's retransmissions, INVITE->200 p99, and the send jitter
and loss of the calls in progress, measured as bench/media_capacity measures them. The server
keeps the shipped defaults except that its answer loops the greeting and lasts an hour, so the
calls in progress hear RTP throughout, and that it drains for 1 s at the end, not 10.

    .venv/bin/python bench/sip_cps.py --rates 200,400,600,800,1000,1200 --duration 60
    .venv/bin/python bench/sip_cps.py --rates '' --overload 300 --overload-duration 30
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from harness import (
    HOST,
    ROOT,
    CdrSpool,
    Server,
    cpu_seconds,
    free_port,
    start_server,
    write_looped_default_plan,
)
from kamailio_responder import start_kamailio
from rtp_window import Load, Row, measure
from sipp_uac import RECV_TIMEOUT_S, NewCalls, UacFigures, run_uac


def _server_settings(workdir: Path, port: int, overload: bool) -> str:
    """The shipped defaults and dialplans (default.yaml: the greeting, BYE 30 s after the
    answer); for the overload rows the default plan loops the greeting for an hour (the calls
    in progress hear RTP throughout) and the drain at the end is 1 s, not 10."""
    calls, plans = "max_calls: 100000", ROOT / "dialplans"
    if overload:
        calls += ", drain_timeout: 1"
        plans = write_looped_default_plan(workdir / "dialplans").parent
    return (
        f"sip:\n  listen: ['udp:{HOST}:{port}']\n"
        f"calls: {{{calls}}}\ndialplans: '{plans}'\n"
        f"data_dir: {workdir / 'var'}\nlog_level: warning\nlog_format: json\n"
    )


def _start(workdir: Path, core: str, overload: bool = False) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return start_server(workdir, _server_settings(workdir, port, overload), port, core)


def _uac_line(peer: str, res: UacFigures) -> str:
    return (
        f"{peer:10s} calls {res.attempted:6d}  ok {res.succeeded:6d}  failed {res.failed:5d}  "
        f"retrans {res.retransmissions:6d}  INVITE->200 p50 {res.rtt_percentile(0.5):6.2f} ms  "
        f"p99 {res.rtt_percentile(0.99):7.2f} ms  (>=20 ms: {res.slow})  "
        f"cpu {res.cpu_per_call_us:6.0f} us/call ({100 * res.cpu_share:3.0f}% of a core)"
    )


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}" if theirs else "-"


def _rate_lines(rate: int, ours: UacFigures, theirs: UacFigures) -> str:
    return (
        f"rate {rate:5d}/s  {_uac_line('callserver', ours)}\n"
        f"{'':13s}{_uac_line('kamailio', theirs)}\n{'':13s}callserver/kamailio: "
        f"ok {_ratio(ours.succeeded, theirs.succeeded)}, "
        f"cpu per call {_ratio(ours.cpu_per_call_us, theirs.cpu_per_call_us)}"
    )


Peer = tuple[int, Callable[[], float]]  # its SIP port, its CPU seconds so far


def run_rates(sipp: str, args: argparse.Namespace, workdir: Path) -> int:
    """Each rate against the server, then Kamailio; the highest rate without a failed call."""
    best = 0
    with contextlib.ExitStack() as running:
        kamailio = start_kamailio(workdir / "kamailio", args.server_core)
        running.callback(kamailio.stop)
        server = _start(workdir / "callserver", args.server_core)
        running.callback(server.stop)
        ours: Peer = (server.port, lambda: cpu_seconds(server.proc.pid))
        theirs: Peer = (kamailio.port, kamailio.cpu_seconds)
        for rate in (int(r) for r in args.rates.split(",")):
            figures = [_run_rate(sipp, args, workdir, rate, peer) for peer in (ours, theirs)]
            print(_rate_lines(rate, *figures), flush=True)
            if figures[0].failed == 0 and figures[0].succeeded == figures[0].attempted > 0:
                best = max(best, rate)
    return best


def _run_rate(
    sipp: str, args: argparse.Namespace, workdir: Path, rate: int, peer: Peer
) -> UacFigures:
    port, cpu = peer
    figures = run_uac(sipp, port, rate, args.duration, args.sipp_core, workdir, cpu)
    time.sleep(2)  # a pause before the next run, which its CPU figure does not count
    return figures


def run_overload(sipp: str, args: argparse.Namespace, workdir: Path, factor: int) -> str:
    """factor x R offered to a fresh server with calls in progress; the row as a line."""
    rate, seconds = factor * args.overload, args.overload_duration
    directory = workdir / f"overload-{factor}"
    server = _start(directory, args.server_core, overload=True)
    load = Load(
        calls=args.overload_calls,
        settle=2.0,
        duration=seconds,
        server_core=args.server_core,
        load_core=args.sipp_core,
    )
    # SIPp keeps offering its rate while calls wait for an answer (up to RECV_TIMEOUT_S)
    limit = rate * (RECV_TIMEOUT_S + 5)
    offered = NewCalls(sipp, server.port, rate, seconds, args.sipp_core, directory, limit)
    try:
        row = measure(server, load, directory, [offered])
        uac = offered.figures()
    finally:
        offered.end()
        server.stop()
    return _overload_line(factor, args, uac, row, CdrSpool(server.data_dir).since()["sip_503"])


def _overload_line(
    factor: int, args: argparse.Namespace, uac: UacFigures, row: Row, cdr_503: int
) -> str:
    seconds, sustainable = args.overload_duration, args.overload
    goodput = uac.succeeded / seconds
    return (
        f"overload {factor}x R = {uac.rate}/s for {seconds:g} s: offered {uac.attempted} calls "
        f"in {uac.creating:.0f} s, completed {uac.succeeded}: goodput "
        f"{goodput:.1f}/s = {100 * goodput / sustainable:.0f} % of R (SIPp ran {uac.elapsed:.1f}"
        f" s); failed {uac.failed}: 503 {uac.refused}, no answer {uac.timeouts}; "
        f"{cdr_503} CDRs with 503; retrans {uac.retransmissions}, INVITE->200 p99 "
        f"{uac.rtt_percentile(0.99):.0f} ms\n"
        f"{'':13s}calls in progress: {row.up} of {row.calls} up, send jitter p50 "
        f"{row.jitter_p50:.2f} ms, p99 {row.jitter_p99:.2f} ms, max {row.jitter_max:.1f} ms, "
        f"lost {row.lost}, stopped {row.stopped}, skipped {row.skipped}, resyncs {row.resyncs}; "
        f"server cpu {100 * row.server_cpu:.0f}% (others {100 * row.others:.0f}%)"
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="200,400,600,800,1000,1200", help="'' for none")
    parser.add_argument("--duration", type=int, default=60, help="seconds at each rate")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--sipp-core", default="1", help="SIPp's (and rtp_load's) core")
    parser.add_argument("--overload", type=int, default=0, metavar="R", help="sustainable rate")
    parser.add_argument("--overload-factors", default="2,5", help="offered = factor x R")
    parser.add_argument("--overload-calls", type=int, default=100, help="calls in progress")
    parser.add_argument("--overload-duration", type=float, default=30.0, help="s of load")
    args = parser.parse_args()
    try:
        args.factors = [int(f) for f in args.overload_factors.split(",")]
        rates = [int(r) for r in args.rates.split(",") if r.strip()]
    except ValueError as exc:
        parser.error(f"--rates and --overload-factors are comma-separated integers ({exc})")
    if min([args.duration, args.overload_calls, args.overload_duration, *rates]) <= 0:
        parser.error("rates, durations and --overload-calls must be positive")
    if args.overload < 0 or min(args.factors) <= 0:
        parser.error("--overload and its factors must be positive")
    args.rates = ",".join(str(rate) for rate in rates)
    return args


def main() -> int:
    """Run the rates (one line each, then the best zero-failure rate), then the overload rows."""
    args = _arguments()
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp not found: apt-get install sip-tester", file=sys.stderr)
        return 2
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    with tempfile.TemporaryDirectory(prefix="sip-cps-") as tmp:
        if args.rates:
            try:
                best = run_rates(sipp, args, Path(tmp))
            except RuntimeError as exc:
                print(exc, file=sys.stderr)
                return 2
            print(f"highest rate with zero failed calls: {best}/s", flush=True)
        if args.overload:
            print(
                f"overload: sustainable rate R = {args.overload}/s, {args.overload_calls} calls "
                "with RTP in progress during the load",
                flush=True,
            )
        for factor in args.factors if args.overload else []:
            print(run_overload(sipp, args, Path(tmp), factor), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
