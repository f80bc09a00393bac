"""The admin API of a real `callserver run`: a SIPp call in progress is listed, scoped by the
token's customer, and hung up (SIPp gets the BYE, the CDR says admin); health answers."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.e2e.admin_client import ADMIN, CALLED, TRUNKS, api
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    popen_sipp,
    start_server,
    stopped_on_exit,
)


def _hold_call(
    sipp: str, server: ServerProcess, cwd: Path, scenario: str = "uac-expect-server-bye.xml"
) -> subprocess.Popen[str]:
    """SIPp placing one call of ``scenario``: by default answered until the server's BYE."""
    cmd = [
        sipp,
        f"{HOST}:{server.port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(SCENARIOS / scenario), "-s", CALLED, "-m", "1"),
        *("-nostdin", "-timeout", "40s", "-timeout_error"),
    ]
    return popen_sipp(cmd, cwd)


def _listed(
    server: ServerProcess, wanted: Callable[[dict[str, object]], bool], timeout: float = 10.0
) -> dict[str, object]:
    """The only call of the operator's list, once it is as ``wanted``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, data = api(server, "GET", "/api/calls", OPERATOR)
        assert status == 200
        calls: list[dict[str, object]] = data["calls"]
        if len(calls) == 1 and wanted(calls[0]):
            return calls[0]
        time.sleep(0.05)
    raise AssertionError("no such call listed; server output:\n" + "\n".join(server.raw[-30:]))


def test_a_call_in_progress_is_listed_scoped_and_hung_up_by_the_admin(
    sipp: str, tmp_path: Path
) -> None:
    """Operator and acme see SIPp's call, globex does not (404); DELETE sends SIPp the BYE."""
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, hangup_after=60.0)
    with stopped_on_exit(server):
        assert api(server, "GET", "/healthz") == (200, {"status": "ok"})
        assert api(server, "GET", "/readyz") == (200, {"status": "ready"})
        assert api(server, "GET", "/api/calls")[0] == 401
        caller = _hold_call(sipp, server, tmp_path)
        try:
            call = _listed(server, lambda call: call["answered"] is True)
            assert (call["called"], call["trunk"], call["customer"]) == (CALLED, "acme-pbx", "acme")
            assert (call["direction"], call["state"]) == ("inbound", "answered")
            path = "/api/calls/" + urllib.parse.quote(str(call["id"]), safe="@")
            acme = api(server, "GET", "/api/calls", ACME)[1]["calls"]
            assert [c["id"] for c in acme] == [call["id"]]
            assert api(server, "GET", "/api/calls", GLOBEX) == (200, {"calls": []})
            assert api(server, "GET", path, GLOBEX)[0] == 404
            assert api(server, "DELETE", path, GLOBEX)[0] == 404
            status, data = api(server, "DELETE", path, OPERATOR)
            assert (status, data["hung_up"]["id"]) == (202, call["id"])
            assert caller.wait(timeout=30) == 0, caller.communicate()[0]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        deadline = time.monotonic() + 10  # the server's output reaches us line by line
        while len(server.events("admin.audit")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [(a["token"], a["status"]) for a in server.events("admin.audit")] == [
            ("globex-portal", 404),
            ("noc", 202),
        ]
    (cdr,) = exported_cdrs(tmp_path / "var")
    assert (cdr["hangup_by"], cdr["end_reason"], cdr["disposition"]) == (
        "admin",
        "admin",
        "ANSWERED",
    )


def test_a_ringing_call_hung_up_by_the_admin_gets_487(sipp: str, tmp_path: Path) -> None:
    """A call still ringing is answered 487 on DELETE; its CDR: unanswered, by admin."""
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, ring=60.0)
    with stopped_on_exit(server):
        caller = _hold_call(sipp, server, tmp_path, "uac-rings-expect-487.xml")
        try:
            call = _listed(server, lambda call: call["state"] == "ringing")
            path = "/api/calls/" + urllib.parse.quote(str(call["id"]), safe="@")
            assert api(server, "DELETE", path, ACME)[0] == 202
            assert caller.wait(timeout=30) == 0, caller.communicate()[0]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        assert api(server, "GET", "/api/calls", OPERATOR) == (200, {"calls": []})
    (cdr,) = exported_cdrs(tmp_path / "var")
    assert (cdr["hangup_by"], cdr["end_reason"], cdr["sip_code"]) == ("admin", "admin", 487)
    assert (cdr["disposition"], cdr["answer_stamp"]) == ("FAILED", None)


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scraped(server: ServerProcess) -> Samples:
    """The server's /metrics, parsed: each sample's value by its name and labels."""
    port = server.wait_for("admin.listening")["port"]
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the ``name`` samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def _scraped_until(
    server: ServerProcess, name: str, value: float, timeout: float = 10.0, **labels: str
) -> Samples:
    """Scrapes until the ``name`` samples with ``labels`` add up to ``value``; the last one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        samples = _scraped(server)
        if _total(samples, name, **labels) == value:
            return samples
        time.sleep(0.05)
    raise AssertionError(f"{name}{labels} never {value}: {_total(samples, name, **labels)}")


def test_the_metrics_of_a_running_server_follow_a_sipp_call(sipp: str, tmp_path: Path) -> None:
    """/metrics shows SIPp's call in progress on its trunk and pool, then as ended by our BYE."""
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, hangup_after=3.0)
    with stopped_on_exit(server):
        idle = _scraped(server)
        assert idle[("callserver_call_attempts_total", frozenset())] == 0
        caller = _hold_call(sipp, server, tmp_path)
        try:
            during = _scraped_until(
                server,
                "callserver_calls_in_progress",
                1,
                trunk="acme-pbx",
                customer="acme",
                direction="inbound",
            )
            pool = frozenset({("kind", "trunk"), ("pool", "acme-pbx")})
            assert during[("callserver_channels_in_use", pool)] == 1
            assert during[("callserver_media_streams", frozenset())] == 1
            assert caller.wait(timeout=30) == 0, caller.communicate()[0]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        after = _scraped_until(
            server, "callserver_call_legs_ended_total", 1, leg="a", reason="bye_sent"
        )
        assert _total(after, "callserver_calls_in_progress") == 0
        assert after[("callserver_channels_in_use", pool)] == 0
        assert after[("callserver_call_attempts_total", frozenset())] == 1


def _download(server: ServerProcess, path: str, token: str) -> tuple[int, bytes, str]:
    """The status, body and Content-Disposition of one GET to the server's admin port."""
    port = server.wait_for("admin.listening")["port"]
    request = urllib.request.Request(f"http://{HOST}:{port}{path}")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read(), response.headers["Content-Disposition"]


def _cdr_listed(server: ServerProcess, timeout: float = 10.0) -> dict[str, Any]:
    """The operator's /api/cdrs once it holds a record (the call's, written at its end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, data = api(server, "GET", "/api/cdrs", OPERATOR)
        assert status == 200, data
        if data["total"]:
            return dict(data)
        time.sleep(0.1)
    raise AssertionError("no CDR listed; server output:\n" + "\n".join(server.raw[-30:]))


def test_a_sipp_calls_cdr_is_listed_scoped_and_exported_as_the_command_does(
    sipp: str, tmp_path: Path
) -> None:
    """SIPp's call ends; /api/cdrs lists its CDR (acme's: globex sees none), totals count it,
    and the CSV export is byte for byte `callserver cdr export --format csv`."""
    server = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, hangup_after=1.0)
    with stopped_on_exit(server):
        caller = _hold_call(sipp, server, tmp_path)
        try:
            assert caller.wait(timeout=30) == 0, caller.communicate()[0]
        finally:
            if caller.poll() is None:
                caller.kill()
                caller.wait()
        data = _cdr_listed(server)
        (cdr,) = data["cdrs"]
        assert (cdr["customer"], cdr["trunk"], cdr["called_raw"]) == ("acme", "acme-pbx", CALLED)
        assert (cdr["disposition"], data["total"]) == ("ANSWERED", 1)
        assert api(server, "GET", f"/api/cdrs?number={CALLED}", ACME)[1]["total"] == 1
        assert api(server, "GET", "/api/cdrs", GLOBEX)[1] == {
            "cdrs": [],
            "total": 0,
            "offset": 0,
        }
        assert api(server, "GET", "/api/cdrs?customer=acme", GLOBEX)[0] == 404
        totals = api(server, "GET", "/api/cdrs/totals", ACME)[1]["totals"]
        assert [(t["customer"], t["calls"], t["answered"]) for t in totals] == [("acme", 1, 1)]
        status, body, disposition = _download(server, "/api/cdrs/export?format=csv", OPERATOR)
        assert (status, disposition) == (200, 'attachment; filename="cdrs.csv"')
        command = subprocess.run(
            [
                *(sys.executable, "-m", "callserver", "cdr", "export", "--format", "csv"),
                *("--data-dir", str(tmp_path / "var")),
            ],
            capture_output=True,
            timeout=60,
        )
        assert command.returncode == 0, command.stderr
        assert body == command.stdout
        assert body.count(b"\n") == 2  # the header and the call's leg
    assert exported_cdrs(tmp_path / "var") == data["cdrs"]
