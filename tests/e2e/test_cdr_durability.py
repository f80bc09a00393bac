"""CDR durability end to end: kill -9 with calls up, then restarts on the same data directory.

Five SIPp calls are answered and held; the server is killed with SIGKILL (no drain, no CDR
written); the next server on the same data directory must report the five legs as ABORTED
records, once, in the spool export and in ``cdr.sqlite`` (fed by the server itself), and a
third start must add nothing.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from callserver.cdr.journal import JOURNAL_NAME, JournalState
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    start_server,
)

CALLS = 5
HOLD_MS = 60_000  # the callers hang up long after the test is over
HANGUP_AFTER = 60  # the server would hang up only then


def _hold_calls(sipp: str, tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    """SIPp placing ``CALLS`` calls at once, each answered and held ``HOLD_MS``."""
    cmd = [
        sipp,
        f"{HOST}:{port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(SCENARIOS / "uac-hears-greeting.xml"), "-m", str(CALLS), "-r", "50"),
        *("-set", "rtp_port", str(free_port(both=False)), "-set", "codec", "0"),
        *("-d", str(HOLD_MS), "-nostdin", "-timeout", "120s"),
    ]
    with (tmp_path / "sipp-holders.log").open("w") as output:
        return subprocess.Popen(cmd, stdout=output, stderr=subprocess.STDOUT, cwd=tmp_path)


def _wait(condition: Callable[[], bool], what: str, server: ServerProcess) -> None:
    """Poll ``condition``; fail with the server's last lines if it is not met within 20 s."""
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"no {what}:\n" + "\n".join(server.raw[-30:])
        time.sleep(0.05)


def _answered_call_ids(server: ServerProcess) -> set[str]:
    """The Call-IDs of the ``CALLS`` answered calls, from the server's call.answered lines."""
    _wait(lambda: len(server.events("call.answered")) >= CALLS, "5 calls up", server)
    return {str(line["call_id"]) for line in server.events("call.answered")}


def _wait_answers_journalled(server: ServerProcess, call_ids: set[str]) -> None:
    """Wait until the journal holds each call's answer (journalled at the ACK, after the 200)."""
    journal = server.data_dir / "cdr" / JOURNAL_NAME

    def answered() -> set[str]:
        state = JournalState("probe")
        state.load(journal.read_bytes() if journal.exists() else b"")
        return {c for c, call in state.calls.items() if call.known.get("answer_stamp")}

    _wait(lambda: answered() >= call_ids, "answers in the journal", server)


def _sqlite_rows(data_dir: Path) -> list[tuple[str, str, str, str]]:
    """(uuid, call_id, status, disposition) of every row of cdr.sqlite, opened read-only."""
    db = sqlite3.connect(f"file:{data_dir / 'cdr.sqlite'}?mode=ro", uri=True)
    try:
        query = "SELECT uuid, call_id, status, disposition FROM cdr ORDER BY id"
        return [(str(a), str(b), str(c), str(d)) for a, b, c, d in db.execute(query)]
    finally:
        db.close()


def _crash_with_calls_up(sipp: str, tmp_path: Path) -> set[str]:
    """Start a server, put ``CALLS`` calls up, SIGKILL it; return the calls' Call-IDs."""
    server = start_server(tmp_path, hangup_after=HANGUP_AFTER)
    callers = _hold_calls(sipp, tmp_path, server.port)
    try:
        call_ids = _answered_call_ids(server)
        _wait_answers_journalled(server, call_ids)
    finally:
        server.proc.kill()
        server.proc.wait(timeout=10)
        callers.kill()
        callers.wait(timeout=10)
    assert len(call_ids) == CALLS
    assert server.events("call.ended") == []  # none of them ended before the kill
    return call_ids


def _check_aborted(cdrs: list[dict[str, object]], call_ids: set[str]) -> None:
    assert len(cdrs) == CALLS, cdrs
    assert {c["call_id"] for c in cdrs} == call_ids
    assert len({c["uuid"] for c in cdrs}) == CALLS
    for cdr in cdrs:
        assert (cdr["status"], cdr["end_reason"], cdr["hangup_cause"]) == (
            "aborted",
            "aborted",
            "CRASH",
        )
        assert (cdr["disposition"], cdr["trunk"]) == ("ANSWERED", "test")
        assert isinstance(cdr["answer_stamp"], str)
        assert str(cdr["start_stamp"]) <= cdr["answer_stamp"] <= str(cdr["end_stamp"])


def test_kill_9_with_five_calls_up_leaves_five_aborted_records_once(
    sipp: str, tmp_path: Path
) -> None:
    """After kill -9 with 5 calls up, the next start writes and ingests 5 ABORTED records (with
    answer time and trunk), and neither it nor a third start duplicates any."""
    call_ids = _crash_with_calls_up(sipp, tmp_path)

    second = start_server(tmp_path, hangup_after=HANGUP_AFTER)
    try:
        assert second.wait_for("cdr.recovered_aborted")["records"] == CALLS
        assert second.wait_for("cdr.ingested")["inserted"] == CALLS  # the server's own ingest
        rows = _sqlite_rows(second.data_dir)
    finally:
        assert second.stop() == 0
    assert {(r[1], r[2], r[3]) for r in rows} == {(c, "aborted", "ANSWERED") for c in call_ids}
    assert len(rows) == CALLS
    cdrs = exported_cdrs(second.data_dir)
    _check_aborted(cdrs, call_ids)
    assert sorted(r[0] for r in rows) == sorted(str(c["uuid"]) for c in cdrs)

    third = start_server(tmp_path, hangup_after=HANGUP_AFTER)
    assert third.stop() == 0
    assert third.events("cdr.recovered_aborted") == []
    assert third.events("cdr.ingested") == []
    assert exported_cdrs(third.data_dir) == cdrs
    assert _sqlite_rows(third.data_dir) == rows
