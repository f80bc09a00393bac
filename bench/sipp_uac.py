"""bench/sipp_uac: a SIPp uac scenario at a call rate, and the figures it leaves.

The scenario is SIPp's built-in uac unless a run names its own: INVITE, 200, ACK, BYE, 200
(RFC 3261 §13, §15); a final response other than 200 to the INVITE is "unexpected": SIPp ACKs
it, counts the call failed and, with -trace_error_codes, lists its status code. Each run gets a
directory of its own for SIPp's files: -trace_stat's CSV (its last row: calls created,
successful and failed, SIPp's own retransmissions), -trace_rtt (the response time of every
call, ms: INVITE->200 in the built-in uac, what the scenario's start_rtd/rtd mark in others)
and the error codes.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import HOST, free_port, pinned

RECV_TIMEOUT_S = 10  # a call without the response it waits for fails after this long


@dataclass
class UacFigures:
    """What one run of the uac scenario did, and the CPU its peer spent meanwhile."""

    rate: int
    seconds: float  # the load's length: calls = rate * seconds
    attempted: int = 0
    succeeded: int = 0
    failed: int = 0
    retransmissions: int = 0  # SIPp's, of requests that got no response in time
    timeouts: int = 0  # failed calls whose request got no response (in RECV_TIMEOUT_S)
    elapsed: float = float("nan")  # from SIPp's start to its end, s
    creating: float = float("nan")  # from SIPp's start to the statistics row with every call made
    codes: Counter[str] = field(default_factory=Counter)  # unexpected final responses
    rtt: list[float] = field(default_factory=list)  # INVITE->200 of each call, ms
    cpu: float = float("nan")  # the peer's CPU seconds over the run

    @property
    def refused(self) -> int:
        """Calls answered 503 (RFC 3261 §21.5.4)."""
        return self.codes["503"]

    def rtt_percentile(self, q: float) -> float:
        """INVITE->200 at quantile ``q`` (0..1), ms; nan without answers."""
        if not self.rtt:
            return float("nan")
        ordered = sorted(self.rtt)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def slow(self) -> int:
        """How many INVITE->200 times reached 20 ms (the p99 target)."""
        return sum(1 for value in self.rtt if value >= 20)

    @property
    def cpu_per_call_us(self) -> float:
        """The peer's CPU per successful call, µs."""
        return 1e6 * self.cpu / max(1, self.succeeded)

    @property
    def cpu_share(self) -> float:
        """The peer's CPU as a share of one core over the load's length."""
        return self.cpu / max(1e-9, self.seconds)


class UacRun:
    """One SIPp uac run against 127.0.0.1:``port``, started at once; ``wait`` collects it.

    ``limit`` caps the calls in progress (SIPp's -l; default 4 s of calls): a run meant to
    offer its whole rate to a server that cannot answer needs RECV_TIMEOUT_S of calls and more.
    ``scenario`` is SIPp's arguments naming the scenario (default the built-in uac) and
    ``local_port`` SIPp's own SIP port (default a free one).
    """

    def __init__(
        self,
        sipp: str,
        port: int,
        rate: int,
        seconds: float,
        core: str,
        workdir: Path,
        limit: int | None = None,
        *,
        scenario: Sequence[str] = ("-sn", "uac"),
        local_port: int | None = None,
    ) -> None:
        self.figures = UacFigures(rate=rate, seconds=seconds)
        self.directory = Path(tempfile.mkdtemp(prefix=f"uac-{rate}-", dir=workdir))
        self.timeout = seconds * 3 + 60
        self.started = time.monotonic()
        cmd = [sipp, f"{HOST}:{port}", *scenario, "-i", HOST]
        cmd += ["-p", str(local_port or free_port()), "-mp", str(free_port())]
        cmd += ["-r", str(rate), "-m", str(round(rate * seconds))]
        cmd += ["-l", str(limit or rate * 4), "-nostdin", "-max_socket", "65000"]
        cmd += ["-trace_stat", "-stf", str(self.directory / "stat.csv"), "-fd", "1"]
        cmd += ["-trace_rtt", "-rtt_freq", "100", "-trace_error_codes"]
        cmd += ["-timeout", f"{round(seconds * 3 + 30)}s", "-timeout_error"]
        cmd += ["-recv_timeout", str(RECV_TIMEOUT_S * 1000)]
        self.proc = subprocess.Popen(
            pinned(cmd, core),
            cwd=self.directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self) -> UacFigures:
        """Wait for SIPp to end (killed at 3 times the load's length + 60 s); read its files."""
        try:
            self.proc.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        figures = self.figures
        if math.isnan(figures.elapsed):
            figures.elapsed = time.monotonic() - self.started
        rows = _rows(self.directory / "stat.csv")
        stats = rows[-1] if rows else {}
        figures.creating = _creating(rows)
        figures.attempted = int(stats.get("TotalCallCreated", "0"))
        figures.succeeded = int(stats.get("SuccessfulCall(C)", "0"))
        figures.failed = int(stats.get("FailedCall(C)", "0"))
        figures.retransmissions = int(stats.get("Retransmissions(C)", "0"))
        timeouts = ("FailedTimeoutOnRecv(C)", "FailedMaxUDPRetrans(C)")
        figures.timeouts = sum(int(stats.get(name, "0")) for name in timeouts)
        figures.rtt = _rtt(self.directory)
        figures.codes = _error_codes(self.directory)
        return figures


class NewCalls:
    """A uac run started when a measurement window starts (bench/rtp_window's ``During``)."""

    def __init__(
        self,
        sipp: str,
        port: int,
        rate: int,
        seconds: float,
        core: str,
        workdir: Path,
        limit: int | None = None,
    ) -> None:
        self.args = (sipp, port, rate, seconds, core, workdir)
        self.limit = limit
        self.run: UacRun | None = None

    def start(self) -> None:
        """Start SIPp."""
        self.run = UacRun(*self.args, limit=self.limit)

    def stop(self) -> None:
        """Nothing: SIPp ends when its calls have; ``figures`` waits for that."""

    def figures(self) -> UacFigures:
        """SIPp's figures once it has ended (all zero if the window never started)."""
        if self.run is None:
            return UacFigures(rate=self.args[2], seconds=self.args[3])
        return self.run.wait()

    def end(self) -> None:
        """Kill SIPp if it is still running (the measurement failed)."""
        if self.run is not None and self.run.proc.poll() is None:
            self.run.proc.kill()
            self.run.proc.wait()


def run_uac(
    sipp: str,
    port: int,
    rate: int,
    seconds: float,
    core: str,
    workdir: Path,
    cpu: Callable[[], float],
    *,
    scenario: Sequence[str] = ("-sn", "uac"),
    local_port: int | None = None,
) -> UacFigures:
    """One run to its end, with the CPU seconds ``cpu()`` counted over it (the peer's);
    ``scenario`` and ``local_port`` as :class:`UacRun` takes them."""
    before = cpu()
    run = UacRun(sipp, port, rate, seconds, core, workdir, scenario=scenario, local_port=local_port)
    figures = run.wait()
    figures.cpu = cpu() - before
    return figures


def _rows(path: Path) -> list[dict[str, str]]:
    """The rows of SIPp's -trace_stat CSV, one a second (-fd 1) and one at the end."""
    if not path.exists():
        return []
    rows = [line.split(";") for line in path.read_text().strip().splitlines()]
    return [dict(zip(rows[0], row, strict=False)) for row in rows[1:]]


def _creating(rows: list[dict[str, str]]) -> float:
    """Seconds from the start to the first row where every call had been made (1 s steps)."""
    if not rows:
        return float("nan")
    made = rows[-1].get("TotalCallCreated")
    first = next(row for row in rows if row.get("TotalCallCreated") == made)
    return _epoch(first["CurrentTime"]) - _epoch(first["StartTime"])


def _epoch(stamp: str) -> float:
    """SIPp writes a time as 'date<TAB>time<TAB>epoch.micro'."""
    return float(stamp.split()[-1])


def _rtt(directory: Path) -> list[float]:
    out: list[float] = []
    for path in directory.glob("*_rtt.csv"):
        for line in path.read_text().splitlines()[1:]:
            parts = line.split(";")
            if len(parts) >= 2:
                try:
                    out.append(float(parts[1]))
                except ValueError:
                    continue
    return out


def _error_codes(directory: Path) -> Counter[str]:
    """Status codes of the unexpected responses: each dump line ends with "code,code,...,"."""
    codes: Counter[str] = Counter()
    for path in directory.glob("*_error_codes.csv"):
        for line in path.read_text().splitlines():
            codes.update(code for code in line.rpartition(";")[2].split(",") if code)
    return codes
