"""bench/register: the highest rate of authenticated REGISTERs `callserver run` answers with
zero failures on one core, and the memory each binding costs.

The script writes, in a temp dir, a config/centrex.yaml of --subscribers distinct phones (groups
of 10 000 numbers, each phone with its own username and password, stored as the MD5 HA1 the
script computes: SIPp 3.6 answers MD5 only, so the server offers MD5 alone), a trunks.yaml
whose digest offers MD5 and names the groups' customer, and SIPp's injection file (username,
password) of the same phones. The server (`callserver run`, pinned to one core) keeps its
registrar defaults except the REGISTER rate per AOR: each phone sends two REGISTERs a step
(the one challenged and the one with credentials), so a burst of 20 lets every phone through
ten steps even without a refill, and nothing is throttled.

At each of --rates, SIPp (bench/uac-register-digest.xml, pinned to another core) registers
every phone once, each a distinct subscriber: REGISTER, 401, REGISTER with credentials, 200
(RFC 3261 §10.3, §22). SIPp's SIP port stays the same across the steps, so the contacts are the
same and a phone registering again refreshes its binding (the AOR keeps one binding). For each
rate: registrations attempted, ok and failed (with the unexpected status codes), SIPp's
retransmissions, REGISTER->200 p50 and p99 over the whole exchange (SIPp counts whole
milliseconds), and the server's CPU per registration (µs) and as a share of one core over the
step; then the highest rate reached without a failure (at it or any rate before it).

Memory per binding: the server's VmRSS after it started (no binding) and after the first step
(every phone bound), divided by the phones. That growth holds the step's transactions too:
each registration leaves two non-INVITE server transactions for Timer J (64 x T1 = 32 s on
UDP, RFC 3261 §17.2.2), and the allocator keeps their memory once they end. The VmRSS after the
last step (every binding refreshed, no new one, as many transactions) shows how much of it
was reused; bench/register_path --memory counts what the bindings themselves hold.

Calls per second to registered phones, after the rates, on the same server and the bindings
the last step left: SIPp's built-in uas on ``Phones.contact_port`` (every contact's host and
port) plays all the phones, and at each of --call-rates a SIPp uac (bench/uac-call-phone.xml,
from the trunk the script's trunks.yaml names for 127.0.0.1) calls the phones' numbers in turn
for --call-duration seconds: INVITE, the server rings the phone's contact, 200 from the
phone, ACK, BYE at once. The calls start once the last REGISTER step's transactions have
ended (Timer J): phones refresh their bindings now and then, not all in the same half-minute,
and those transactions' ends would otherwise be counted in the calls' CPU. For each rate:
calls attempted, ok and failed, retransmissions, INVITE->200 p50 and p99 (through the server
and the phone), the server's CPU per call; then the highest call rate reached without a
failure.

    .venv/bin/python bench/register.py --rates 500,1000,1500,2000,3000 --call-rates 200,400,600
    .venv/bin/python bench/register.py --rates 500,1000 --subscribers 2000 --call-rates ''
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import HOST, Server, cpu_seconds, free_port, pinned, rss_bytes, start_server
from sipp_uac import UacFigures, run_uac

from callserver.sip.auth import password_ha1

SCENARIO = Path(__file__).resolve().parent / "uac-register-digest.xml"
CALL_SCENARIO = Path(__file__).resolve().parent / "uac-call-phone.xml"
REALM = "callserver"
CUSTOMER = "bench"
GROUP_SIZE = 10_000  # numbers in one group's block
TIMER_J = 32.0  # 64 x T1: a REGISTER's transaction on UDP lives this long after its final


@dataclass(frozen=True, slots=True, kw_only=True)
class Phones:
    """The subscribers SIPp registers as: its injection file (username;password a line) and
    the SIP port of its contacts, the same in every step."""

    count: int
    injection: Path
    contact_port: int

    def scenario(self) -> list[str]:
        """SIPp's arguments: the scenario, its injection file, credentials from its fields."""
        fields = ["-au", "[field0]", "-ap", "[field1]"]
        return ["-sf", str(SCENARIO), "-inf", str(self.injection), *fields]


def _number(index: int) -> str:
    """The E.164 number of phone ``index``: group ``index // GROUP_SIZE``'s block."""
    return f"+38733{400 + index // GROUP_SIZE}{index % GROUP_SIZE:04d}"


def write_phones(directory: Path, count: int, licences: int = 0) -> Phones:
    """centrex.yaml (with HA1 values), trunks.yaml and SIPp's injection file of ``count``
    phones in ``directory``; the customer has ``licences`` call-centre agent licences."""
    groups, injection = [], ["SEQUENTIAL"]
    for first in range(0, count, GROUP_SIZE):
        block = _number(first)
        groups += [
            f"  bench-{first // GROUP_SIZE}:",
            f"    customer: {CUSTOMER}",
            f"    numbers: ['{block[:-4]}0000-9999']",
            f"    realm: {REALM}",
            "    extensions: {digits: 4}",
            "    subscribers:",
        ]
        for index in range(first, min(count, first + GROUP_SIZE)):
            number = _number(index)
            username, password = number[1:], f"bench-{number[1:]}"
            ha1 = password_ha1(username, REALM, password, "MD5")
            groups.append(f"      '{number}': {{username: '{username}', ha1_md5: {ha1}}}")
            injection.append(f"{username};{password}")
    (directory / "centrex.yaml").write_text("groups:\n" + "\n".join(groups) + "\n")
    (directory / "trunks.yaml").write_text(
        f"digest: {{realm: {REALM}, algorithms: [MD5]}}\n"
        f"trunks: {{callers: {{match: ['{HOST}']}}}}\n"
        f"customers: {{{CUSTOMER}: {{{f'agents: {licences}' if licences else ''}}}}}\n"
    )
    (directory / "phones.csv").write_text("\n".join(injection) + "\n")
    return Phones(count=count, injection=directory / "phones.csv", contact_port=free_port())


def _server_settings(directory: Path, port: int) -> str:
    """Shipped defaults but for the phones' files and a REGISTER burst of 20 per AOR."""
    (directory / "dialplans").mkdir(exist_ok=True)
    return (
        f"sip:\n  listen: ['udp:{HOST}:{port}']\n"
        f"trunks: '{directory / 'trunks.yaml'}'\ncentrex: '{directory / 'centrex.yaml'}'\n"
        f"dialplans: '{directory / 'dialplans'}'\nregistrar: {{register_burst: 20}}\n"
        f"data_dir: '{directory / 'var'}'\nlog_level: warning\nlog_format: json\n"
    )


def start(directory: Path, count: int, core: str) -> tuple[Server, Phones]:
    """The phones' files and the server that knows them, answering OPTIONS."""
    directory.mkdir(parents=True, exist_ok=True)
    phones = write_phones(directory, count)
    port = free_port()
    return start_server(directory, _server_settings(directory, port), port, core), phones


def register_all(
    sipp: str, server: Server, phones: Phones, rate: int, core: str, workdir: Path
) -> UacFigures:
    """Every phone registers once at ``rate`` a second; the server's CPU over it."""
    figures = run_uac(
        sipp,
        server.port,
        rate,
        phones.count / rate,
        core,
        workdir,
        lambda: cpu_seconds(server.proc.pid),
        scenario=phones.scenario(),
        local_port=phones.contact_port,
    )
    return figures


def call_phones(
    sipp: str, server: Server, phones: Phones, rate: int, seconds: float, workdir: Path, core: str
) -> UacFigures:
    """Calls to the phones' numbers, in turn, at ``rate`` a second for ``seconds``; the
    server's CPU over them (the phones answer from ``answering``)."""
    scenario = ["-sf", str(CALL_SCENARIO), "-inf", str(phones.injection)]
    return run_uac(
        sipp,
        server.port,
        rate,
        seconds,
        core,
        workdir,
        lambda: cpu_seconds(server.proc.pid),
        scenario=scenario,
    )


@contextlib.contextmanager
def answering(
    sipp: str,
    phones: Phones,
    core: str,
    workdir: Path,
    scenario: Sequence[str] = ("-sn", "uas"),
) -> Iterator[None]:
    """SIPp on the contacts' port, answering every call as all the phones: its built-in uas
    or ``scenario`` (SIPp's arguments)."""
    cmd = [sipp, *scenario, "-i", HOST, "-p", str(phones.contact_port), "-nostdin"]
    proc = subprocess.Popen(
        pinned(cmd, core), cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(0.5)  # its socket is bound
        if proc.poll() is not None:
            raise RuntimeError(f"SIPp as the phones exited at once (port {phones.contact_port})")
        yield
    finally:
        proc.kill()
        proc.wait()


def _rate_line(res: UacFigures) -> str:
    codes = ", ".join(f"{code} x{n}" for code, n in sorted(res.codes.items()))
    return (
        f"rate {res.rate:5d}/s  registrations {res.attempted:6d}  ok {res.succeeded:6d}  "
        f"failed {res.failed:5d}{f' ({codes})' if codes else ''}  "
        f"retrans {res.retransmissions:5d}  REGISTER->200 p50 {res.rtt_percentile(0.5):4.0f} ms"
        f"  p99 {res.rtt_percentile(0.99):5.0f} ms  server cpu {res.cpu_per_call_us:5.0f} "
        f"us/registration ({100 * res.cpu_share:3.0f}% of a core)"
    )


def _call_line(res: UacFigures) -> str:
    codes = ", ".join(f"{code} x{n}" for code, n in sorted(res.codes.items()))
    return (
        f"calls {res.rate:5d}/s  calls {res.attempted:6d}  ok {res.succeeded:6d}  "
        f"failed {res.failed:5d}{f' ({codes})' if codes else ''}  "
        f"retrans {res.retransmissions:5d}  INVITE->200 p50 {res.rtt_percentile(0.5):4.0f} ms"
        f"  p99 {res.rtt_percentile(0.99):5.0f} ms  server cpu {res.cpu_per_call_us:5.0f} "
        f"us/call ({100 * res.cpu_share:3.0f}% of a core)"
    )


def _memory_line(before: int, after: int, count: int) -> str:
    return (
        f"memory: VmRSS {before / 2**20:.1f} MiB without bindings, {after / 2**20:.1f} MiB "
        f"with {count}: {(after - before) / count / 1024:.2f} KiB per binding (with the "
        "transactions of the step)"
    )


def run(sipp: str, args: argparse.Namespace, workdir: Path) -> tuple[int, int]:
    """Registrations, then calls to the phones, on one server; the best rate of each."""
    with contextlib.ExitStack() as running:
        server, phones = start(workdir / "callserver", args.subscribers, args.server_core)
        running.callback(server.stop)
        best = run_rates(sipp, args, server, phones, workdir)
        calls = run_calls(sipp, args, server, phones, workdir) if args.call_rates else 0
    return best, calls


def run_calls(
    sipp: str, args: argparse.Namespace, server: Server, phones: Phones, workdir: Path
) -> int:
    """Each call rate, one line each; the last rate before the first with a failed call."""
    best, failed = 0, False
    time.sleep(TIMER_J + 1)  # the last REGISTER step's transactions have ended
    with answering(sipp, phones, args.sipp_core, workdir):
        for rate in args.call_rates:
            seconds = args.call_duration
            episodes = len(server.overloads)
            figures = call_phones(sipp, server, phones, rate, seconds, workdir, args.sipp_core)
            print(_call_line(figures), flush=True)
            reasons = Counter(reason for _, reason in server.overloads[episodes:])
            if reasons:  # which signal of overload control refused calls, episodes of each
                print("  overload episodes: " + ", ".join(f"{r} x{n}" for r, n in reasons.items()))
            failed = failed or figures.failed > 0 or not 0 < figures.succeeded == figures.attempted
            best = best if failed else rate
            time.sleep(2)
    return best


def run_rates(
    sipp: str, args: argparse.Namespace, server: Server, phones: Phones, workdir: Path
) -> int:
    """The rates, one line each, and the memory lines; the last rate before the first with a
    failed registration."""
    best, failed = 0, False
    time.sleep(1)  # the start-up's allocations settle
    before = rss_bytes(server.proc.pid)
    for step, rate in enumerate(args.rates):
        figures = register_all(sipp, server, phones, rate, args.sipp_core, workdir)
        print(_rate_line(figures), flush=True)
        failed = failed or figures.failed > 0 or figures.succeeded < phones.count
        best = best if failed else rate
        if step == 0:
            bound = rss_bytes(server.proc.pid)
            print(_memory_line(before, bound, phones.count), flush=True)
        time.sleep(2)  # a pause before the next step, which no CPU figure counts
    if len(args.rates) > 1:
        last = rss_bytes(server.proc.pid)
        print(
            f"memory: VmRSS {last / 2**20:.1f} MiB after the last step (bindings refreshed): "
            f"{(last - bound) / phones.count / 1024:+.2f} KiB per binding since the first",
            flush=True,
        )
    return best


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="500,1000,1500,2000,3000", help="REGISTERs/s")
    parser.add_argument("--subscribers", type=int, default=20_000, help="phones, each once a step")
    parser.add_argument("--call-rates", default="200,400,600", help="calls/s; '' for none")
    parser.add_argument("--call-duration", type=float, default=10.0, help="s at each")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--sipp-core", default="1")
    args = parser.parse_args()
    try:
        args.rates = [int(r) for r in args.rates.split(",") if r.strip()]
        args.call_rates = [int(r) for r in args.call_rates.split(",") if r.strip()]
    except ValueError as exc:
        parser.error(f"--rates and --call-rates are comma-separated integers ({exc})")
    if not args.rates or min(args.rates + args.call_rates) <= 0 or args.call_duration <= 0:
        parser.error("--rates needs one or more positive rates; call rates, duration positive")
    if not 0 < args.subscribers <= 10 * GROUP_SIZE:
        parser.error(f"--subscribers is 1 to {10 * GROUP_SIZE}")
    return args


def main() -> int:
    """Run the rates (one line each, the memory line, then the best zero-failure rate)."""
    args = _arguments()
    sipp = shutil.which("sipp")
    if sipp is None:
        print("sipp not found: apt-get install sip-tester", file=sys.stderr)
        return 2
    print(
        f"machine: {platform.node()} {platform.machine()} {os.cpu_count()} cores, "
        f"python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}; "
        f"{args.subscribers} subscribers, MD5 digest"
    )
    with tempfile.TemporaryDirectory(prefix="register-") as tmp:
        try:
            best, calls = run(sipp, args, Path(tmp))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
    print(f"highest rate reached with zero failed registrations: {best}/s", flush=True)
    if args.call_rates:
        print(f"highest rate of calls to phones reached with zero failed calls: {calls}/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
