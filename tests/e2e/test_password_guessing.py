"""Password guessing against a digest trunk: svcrack (sipvicious) and SIPp against the server.

svcrack sends its INVITEs without SDP: a late offer (RFC 3261 §13.2.1) the server accepts, so
every guess reaches the password check and a right password is answered with 200 (our offer in
it), which svcrack reports.

The trunk offers MD5 alone: svcrack 0.3.3 cannot answer a SHA-256 challenge. T1 is 0.1 s so
that the answers svcrack never ACKs stop being retransmitted after 6.4 s.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import (
    HOST,
    ServerProcess,
    exported_cdrs,
    free_port,
    run_scenario,
    start_server,
    stopped_on_exit,
)

PASSWORD = "s3cret"
RIGHT_AT = 190  # the right word's place in svcrack's 200-word list, counted from 1


@pytest.fixture(scope="session")
def svcrack() -> str:
    """Path of svcrack (Debian sipvicious; newer packages call it sipvicious_svcrack)."""
    path = shutil.which("svcrack") or shutil.which("sipvicious_svcrack")
    if path is None:
        pytest.fail(
            "svcrack not found: run `make e2e` (installs sipvicious) or apt-get install sipvicious"
        )
    return path


@dataclass
class Guessing:
    """What a svcrack run printed, and whether it ended by itself within its bound."""

    output: str
    ended: bool


def run_svcrack(svcrack: str, tmp_path: Path, port: int, *, bound: float) -> Guessing:
    """svcrack against 127.0.0.1:``port`` for user branch7 with a 200-word list whose word
    number :data:`RIGHT_AT` is the password; killed after ``bound`` seconds."""
    words = [f"guess{n:03d}" for n in range(1, 201)]
    words[RIGHT_AT - 1] = PASSWORD
    wordlist = tmp_path / "words.txt"
    wordlist.write_text("\n".join(words) + "\n")
    local = str(free_port(both=False))
    args = ["-u", "branch7", "-d", str(wordlist), "-m", "INVITE", "-v"]
    args += ["-P", local, "-b", HOST, "-x", HOST, "--maximumtime", "3"]
    with subprocess.Popen(
        [svcrack, *args, f"udp://{HOST}:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        cwd=tmp_path,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=bound)
            return Guessing(output=output, ended=True)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
            return Guessing(output=output, ended=False)


@contextmanager
def digest_server(tmp_path: Path, **lockout: object) -> Iterator[ServerProcess]:
    """`callserver run` whose only trunk is branch7's, MD5 only, with ``lockout`` settings."""
    trunks = {
        "digest": {"algorithms": ["MD5"], "lockout": lockout},
        "trunks": {"branch": {"digest": {"username": "branch7", "password": PASSWORD}}},
    }
    with stopped_on_exit(start_server(tmp_path, trunks=trunks, t1=0.1)) as server:
        yield server


def test_svcrack_finds_the_password_when_nothing_stops_it(svcrack: str, tmp_path: Path) -> None:
    """With thresholds above the list's length, svcrack finds word 190 and its call is answered."""
    with digest_server(tmp_path, slow_after=1000, refuse_after=1000) as server:
        guessing = run_svcrack(svcrack, tmp_path, server.port, bound=60)
    log = "\n".join(server.raw[-30:])
    assert f"The password for branch7 is {PASSWORD}" in guessing.output, guessing.output[-2000:]
    # Every wrong word was checked; svcrack sends a word again as a new request when its answer
    # is slow to come (a loaded machine), and that guess is checked, and counted, once more.
    assert len(server.events("call.auth_failed")) >= RIGHT_AT - 1, log
    assert [e["trunk"] for e in server.events("call.answered")] == ["branch"], log
    assert not server.events("auth.penalty_started"), log


@pytest.mark.parametrize("answer", ["drop", 403])
def test_svcrack_is_refused_after_five_failures_and_never_reaches_the_password(
    svcrack: str, tmp_path: Path, answer: str | int
) -> None:
    """Five wrong words start the source's penalty: nothing after them is checked or answered
    with anything but silence or 403, so word 190 is never found; logged once, no CDR more."""
    lockout = {"slow_after": 2, "refuse_after": 5, "delay": 0.5, "penalty": 600, "answer": answer}
    with digest_server(tmp_path, **lockout) as server:
        guessing = run_svcrack(svcrack, tmp_path, server.port, bound=40 if answer == "drop" else 12)
    log = "\n".join(server.raw[-30:])
    assert PASSWORD not in guessing.output, guessing.output[-2000:]
    if answer == "drop":  # silence: svcrack gives up by itself, having sent every word
        assert guessing.ended, guessing.output[-2000:]
        assert "found nothing" in guessing.output, guessing.output[-2000:]
    failed = server.events("call.auth_failed")
    assert [(f["cause"], f["source"]) for f in failed] == [("wrong_password", HOST)] * 5, log
    started = [e for e in server.events("auth.penalty_started") if e["scope"] == "source"]
    assert [(e["source"], e["username"], e["failures"]) for e in started] == [
        (HOST, "branch7", 5)
    ], log
    assert not server.events("call.answered"), log
    stopped = server.wait_for("server.stopped")
    assert stopped["auth_failures"] == 5, stopped
    assert stopped["auth_refused"]["source"] > 0, stopped  # type: ignore[index]
    assert (stopped["auth_unanswered"] > 0) == (answer == "drop"), stopped  # type: ignore[operator]
    cdrs = exported_cdrs(server.data_dir)  # the five failures; refusals in the penalty leave none
    assert [(c["disposition"], c["end_reason"]) for c in cdrs] == [("REJECTED", "unauthorized")] * 5


@pytest.mark.parametrize(
    ("scenario", "status", "event"),
    [
        ("uac-digest-unusable-offer-expect-488.xml", 488, "call.offer_refused"),
        ("uac-digest-blacklisted-expect-603.xml", 603, "call.blacklisted"),
    ],
)
def test_a_request_refused_anyway_gets_the_same_answer_with_a_right_or_a_wrong_password(
    sipp: str, tmp_path: Path, scenario: str, status: int, event: str
) -> None:
    """A G.729-only offer (488) or a blacklisted caller (603) gets its refusal with the right
    password and with a wrong one alike; the password is not checked, nothing counts."""
    blacklist = tmp_path / "blacklist.txt"
    blacklist.write_text("+38761234567\n")
    trunks = {
        "digest": {"algorithms": ["MD5"]},
        "trunks": {"branch": {"digest": {"username": "branch7", "password": PASSWORD}}},
    }
    with stopped_on_exit(start_server(tmp_path, trunks=trunks, blacklist=blacklist)) as server:
        auth = ("-au", "branch7", "-auth_uri", f"service@{HOST}:{server.port}")
        runs = [
            run_scenario(
                sipp,
                tmp_path,
                server,
                scenario,
                *("-m", "1", "-key", "caller", "061234567", *auth, "-ap", password),
                timeout=20,
            )
            for password in (PASSWORD, "guess")
        ]
    log = "\n".join(server.raw[-30:])
    assert [run.returncode for run in runs] == [0, 0], runs[0].output[-2000:] + log
    assert len(server.events(event)) == 2, log
    assert not server.events("call.auth_failed"), log
    assert server.wait_for("server.stopped")["auth_failures"] == 0, log
    cdrs = exported_cdrs(server.data_dir)
    assert [(c["sip_code"], c["trunk"]) for c in cdrs] == [(status, None)] * 2, log


def test_answers_to_a_failing_source_are_held(sipp: str, tmp_path: Path) -> None:
    """After one failure the source's 407 and 403 are held past 200 ms: a 100 comes first."""
    with digest_server(tmp_path, slow_after=1, delay=0.5) as server:
        auth = ("-au", "branch7", "-ap", "guess", "-auth_uri", f"service@{HOST}:{server.port}")
        runs = [
            run_scenario(sipp, tmp_path, server, scenario, "-m", "1", *auth, timeout=20)
            for scenario in ("uac-digest-expect-403.xml", "uac-digest-held-expect-100-then-403.xml")
        ]
    log = "\n".join(server.raw[-30:])
    assert [run.returncode for run in runs] == [0, 0], runs[1].output[-2000:] + log
    assert len(server.events("call.auth_failed")) == 2, log
