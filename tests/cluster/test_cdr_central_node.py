"""``callserver run`` with ``cluster.postgres``: SIPp's calls reach the central store, each
once, through a 60 s PostgreSQL outage under load and through a kill -9 with calls up; and
``callserver cdr export`` reads the central store."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.cluster.central_cdrs import NODE, central_uuids, stop_fast
from tests.cluster.peers import Postgres
from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    start_server,
)
from tests.e2e.test_admin_api import _scraped, _total
from tests.e2e.test_cdr_durability import (
    CALLS,
    HANGUP_AFTER,
    _answered_call_ids,
    _hold_calls,
    _wait_answers_journalled,
)

RATE, LOAD_CALLS = 10, 750  # SIPp's calls: 10 a second for 75 s
OUTAGE = 60.0  # seconds PostgreSQL is down under that load (the figure)
BACKLOG = "callserver_cdr_central_backlog_records"


def _env(postgres: Postgres) -> dict[str, str]:
    return {"CALLSERVER_CLUSTER__POSTGRES": postgres.dsn, "CALLSERVER_CLUSTER__NODE": NODE}


def _wait(condition: Callable[[], bool], what: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        time.sleep(0.2)


def _steady_callers(sipp: str, tmp_path: Path, port: int) -> subprocess.Popen[str]:
    """SIPp's built-in uac: ``LOAD_CALLS`` calls at ``RATE`` a second, each hung up after the
    answer; its statistics in ``sipp-load.csv``."""
    cmd = [
        sipp,
        f"{HOST}:{port}",
        *("-i", HOST, "-p", str(free_port()), "-mp", str(media_port()), "-t", "u1"),
        *("-sn", "uac", "-m", str(LOAD_CALLS), "-r", str(RATE), "-nostdin"),
        *("-timeout", "150s", "-timeout_error", "-trace_stat", "-stf", "sipp-load.csv"),
    ]
    output = (tmp_path / "sipp-load.log").open("w")
    return subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)


def _sipp_counts(tmp_path: Path) -> tuple[int, int]:
    """SIPp's successful and failed calls, from the last row of its statistics."""
    rows = [r.split(";") for r in (tmp_path / "sipp-load.csv").read_text().splitlines() if r]
    header, last = rows[0], rows[-1]
    return int(last[header.index("SuccessfulCall(C)")]), int(last[header.index("FailedCall(C)")])


def _cli_export(server: ServerProcess, postgres: Postgres, *flags: str) -> str:
    """``callserver cdr export`` with the node's settings and ``cluster.postgres``."""
    command = [sys.executable, "-m", "callserver", "cdr", "export", "--format", "csv"]
    config = server.data_dir.parent / "callserver.yaml"
    done = subprocess.run(
        [*command, "--config", str(config), *flags],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **_env(postgres)},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_postgres_down_60_s_under_load_every_cdr_arrives_once(sipp: str, tmp_path: Path) -> None:
    """SIPp places calls steadily; PostgreSQL is stopped for 60 s and started again: the
    backlog metric rises while it is down and returns to 0, and every call's CDR (SIPp's
    count, the node's own SQLite export) is in PostgreSQL once."""
    with Postgres() as postgres:
        server = start_server(tmp_path, env=_env(postgres))
        try:
            callers = _steady_callers(sipp, tmp_path, server.port)
            _wait(lambda: len(central_uuids(postgres)) >= 20, "CDRs in PostgreSQL", 30)
            stop_fast(postgres)
            stopped, backlog, lag, size = time.monotonic(), [], [], 0.0
            while time.monotonic() - stopped < OUTAGE:
                samples = _scraped(server)
                backlog.append(_total(samples, BACKLOG))
                size = _total(samples, "callserver_cdr_central_backlog_bytes")
                lag.append(_total(samples, "callserver_cdr_central_lag_seconds"))
                assert _total(samples, "callserver_cdr_central_up") == 0 or len(backlog) < 3
                time.sleep(2.0)
            postgres.start()
            started = time.monotonic()
            resumed = server.wait_for("cdr.central_resumed", timeout=45)  # everything sent
            drained = time.monotonic() - started
            assert callers.wait(timeout=120) == 0, (tmp_path / "sipp-load.log").read_text()
            _wait(lambda: _total(_scraped(server), BACKLOG) == 0, "an empty backlog", 20)
        finally:
            assert server.stop() == 0
        succeeded, failed = _sipp_counts(tmp_path)
        uuids = central_uuids(postgres)
        local = exported_cdrs(server.data_dir)
        assert (failed, len(uuids), len(set(uuids))) == (0, succeeded, succeeded)
        assert sorted(uuids) == sorted(str(cdr["uuid"]) for cdr in local)
        assert max(backlog) >= RATE * OUTAGE * 0.8 and backlog[-1] >= backlog[0]
        assert max(lag) >= OUTAGE * 0.8
        assert resumed["delivered"] >= max(backlog) and drained < 45
        assert len(server.events("cdr.central_unavailable")) == 1
        print(f"\noutage {OUTAGE:.0f} s: {max(backlog):.0f} CDRs, {size:.0f} bytes queued", end="")
        print(f" ({max(lag):.0f} s behind);")
        print(f"cdr.central_resumed {resumed}, {drained:.1f} s after PostgreSQL started")


def test_a_node_killed_with_calls_up_ships_its_aborted_cdrs_once(sipp: str, tmp_path: Path) -> None:
    """kill -9 with 5 calls up: the restarted node writes 5 ABORTED CDRs and ships them; a
    third start ships nothing again; ``callserver cdr export`` with ``cluster.postgres``
    reads them from PostgreSQL, in the bytes of this node's own export (``--local``)."""
    with Postgres() as postgres:
        first = start_server(tmp_path, hangup_after=HANGUP_AFTER, env=_env(postgres))
        callers = _hold_calls(sipp, tmp_path, first.port)
        try:
            call_ids = _answered_call_ids(first)
            _wait_answers_journalled(first, call_ids)
        finally:
            first.proc.kill()
            first.proc.wait(timeout=10)
            callers.kill()
            callers.wait(timeout=10)
        assert central_uuids(postgres) == []

        second = start_server(tmp_path, hangup_after=HANGUP_AFTER, env=_env(postgres))
        try:
            assert second.wait_for("cdr.recovered_aborted")["records"] == CALLS
            _wait(lambda: len(central_uuids(postgres)) == CALLS, "the ABORTED CDRs", 20)
        finally:
            assert second.stop() == 0
        third = start_server(tmp_path, hangup_after=HANGUP_AFTER, env=_env(postgres))
        try:
            _wait(lambda: _total(_scraped(third), "callserver_cdr_central_up") == 1, "a pass", 20)
            central = _cli_export(third, postgres)
        finally:
            assert third.stop() == 0
        rows = postgres.query("SELECT call_id, status, disposition, node FROM cdr")
        assert sorted(rows) == sorted([c, "aborted", "ANSWERED", NODE] for c in call_ids)
        assert len(central_uuids(postgres)) == CALLS
        assert central == _cli_export(third, postgres, "--local")
        assert central.count("\n") == CALLS + 1
