"""The admin server on a real port: bearer tokens, role scoping, JSON errors and the audit log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import structlog
from multidict import CIMultiDictProxy

from callserver.admin.calls_api import CallsApi
from callserver.admin.server import AdminServer
from callserver.calls.call import Call
from callserver.calls.phase import CallPhase
from callserver.calls.reporting import CallFacts
from tests.admin.routes import METHODS, served_routes
from tests.admin.tokens import ACME, GLOBEX, OPERATOR, TOKENS

NOW = 1000.0


def _call(call_id: str, customer: str, offered_at: float, answered_at: float | None) -> Call:
    facts = CallFacts(call_id=call_id, caller="+38761000001", called="+38733100200", offered_at=0)
    facts.customer, facts.trunk = customer, f"{customer}-pbx"
    call = Call(call_id=call_id, key=None, offered_at=offered_at, facts=facts)
    call.phase = CallPhase.ANSWERED if answered_at is not None else CallPhase.RINGING
    call.answered_at = answered_at
    return call


@dataclass
class FakeCalls:
    """The calls the API reads, and the hang-ups it asked for."""

    calls: list[Call]
    hung_up: list[str] = field(default_factory=list)

    def hang_up_by_admin(self, call: Call) -> bool:
        if call.call_id in self.hung_up:
            return False
        self.hung_up.append(call.call_id)
        return True


@dataclass
class Admin:
    server: AdminServer
    url: str
    calls: FakeCalls
    session: aiohttp.ClientSession
    ready: list[str]

    async def request(
        self, method: str, path: str, token: str | None = OPERATOR
    ) -> tuple[int, Any, CIMultiDictProxy[str]]:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.url + path, headers=headers) as response:
            body = await response.read()
            data = json.loads(body) if response.content_type == "application/json" else {}
            return response.status, data, response.headers


@pytest.fixture
async def admin() -> AsyncIterator[Admin]:
    """An admin server on a free loopback port with two acme calls and one of globex."""
    calls = FakeCalls(
        [
            _call("acme-1@pbx", "acme", 900.0, 910.0),
            _call("globex-1@pbx", "globex", 950.0, None),
            _call("acme/2@pbx", "acme", 990.0, None),
        ]
    )
    ready: list[str] = []

    async def not_ready() -> list[str]:
        return list(ready)

    server = AdminServer(
        tokens=lambda: TOKENS, ready=not_ready, resources=[CallsApi(calls, lambda: NOW)]
    )
    assert await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield Admin(server, f"http://127.0.0.1:{server.port}", calls, session, ready)
    await server.close()


async def test_without_a_token_the_api_answers_401_with_a_bearer_challenge(admin: Admin) -> None:
    """No Authorization header: 401, a Bearer challenge and a JSON error saying what to send."""
    status, data, headers = await admin.request("GET", "/api/calls", token=None)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "Authorization: Bearer" in str(data["error"])


async def test_an_unknown_token_is_401(admin: Admin) -> None:
    """A token whose digest is not among the settings' is refused as invalid_token."""
    status, data, headers = await admin.request("GET", "/api/calls", token="guessed")
    assert status == 401
    assert 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert "admin.tokens" in str(data["error"])


async def test_an_operator_sees_every_call_oldest_first(admin: Admin) -> None:
    """The operator's list holds every customer's calls with their times on the calls' clock."""
    status, data, _ = await admin.request("GET", "/api/calls")
    assert status == 200
    calls = data["calls"]
    assert isinstance(calls, list)
    assert [c["id"] for c in calls] == ["acme-1@pbx", "globex-1@pbx", "acme/2@pbx"]
    first = calls[0]
    assert (first["customer"], first["trunk"], first["state"]) == ("acme", "acme-pbx", "answered")
    assert (first["answered"], first["duration"], first["talk_time"]) == (True, 100.0, 90.0)
    assert (calls[1]["answered"], calls[1]["talk_time"]) == (False, None)


async def test_a_customer_sees_only_its_own_calls(admin: Admin) -> None:
    """A customer token lists its customer's calls and none of another customer's."""
    _, data, _ = await admin.request("GET", "/api/calls", token=ACME)
    assert [c["id"] for c in data["calls"]] == ["acme-1@pbx", "acme/2@pbx"]
    _, data, _ = await admin.request("GET", "/api/calls", token=GLOBEX)
    assert [c["id"] for c in data["calls"]] == ["globex-1@pbx"]


async def test_another_customers_call_is_404_as_a_missing_one(admin: Admin) -> None:
    """GET and DELETE of globex's call with acme's token are 404 and hang nothing up."""
    for method in ("GET", "DELETE"):
        status, data, _ = await admin.request(method, "/api/calls/globex-1@pbx", token=ACME)
        assert status == 404
        assert data == {"error": "no call in progress with id globex-1@pbx"}
    assert admin.calls.hung_up == []


async def test_a_call_id_with_a_slash_is_found(admin: Admin) -> None:
    """A Call-ID holding '/' (RFC 3261 §25.1 word) is one path parameter, URL-encoded."""
    status, data, _ = await admin.request("GET", "/api/calls/acme%2F2@pbx", token=ACME)
    assert (status, data["id"]) == (200, "acme/2@pbx")


async def test_delete_hangs_up_and_is_audited_with_the_tokens_name(admin: Admin) -> None:
    """DELETE asks the calls to hang up (202), a second DELETE is 409, and both are audited."""
    with structlog.testing.capture_logs() as logs:
        status, data, _ = await admin.request("DELETE", "/api/calls/acme-1@pbx", token=ACME)
        again, _, _ = await admin.request("DELETE", "/api/calls/acme-1@pbx", token=ACME)
    assert (status, again) == (202, 409)
    assert data["hung_up"]["id"] == "acme-1@pbx"
    assert admin.calls.hung_up == ["acme-1@pbx"]
    audits = [
        (e["token"], e["method"], e["path"], e["status"])
        for e in logs
        if e["event"] == "admin.audit"
    ]
    assert audits == [
        ("acme-portal", "DELETE", "/api/calls/acme-1@pbx", 202),
        ("acme-portal", "DELETE", "/api/calls/acme-1@pbx", 409),
    ]


async def test_reads_are_not_audited(admin: Admin) -> None:
    """A GET changes nothing and leaves no audit line."""
    with structlog.testing.capture_logs() as logs:
        await admin.request("GET", "/api/calls")
    assert [e for e in logs if e["event"] == "admin.audit"] == []


async def test_unknown_paths_and_methods_are_json_errors(admin: Admin) -> None:
    """404 for a path that is not a resource, 405 with Allow for a method it does not take."""
    status, data, _ = await admin.request("GET", "/api/nothing")
    assert status == 404
    assert data == {"error": "no such resource: /api/nothing (see /api/openapi.json)"}
    status, data, headers = await admin.request("POST", "/api/calls")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert data == {"error": "POST is not allowed on /api/calls; use GET, HEAD"}


async def test_health_and_metrics_need_no_token(admin: Admin) -> None:
    """/healthz, /readyz and /metrics answer without a token; /readyz says why not ready."""
    status, data, _ = await admin.request("GET", "/healthz", token=None)
    assert (status, data) == (200, {"status": "ok"})
    status, data, _ = await admin.request("GET", "/readyz", token=None)
    assert (status, data) == (200, {"status": "ready"})
    admin.ready.append("the server is draining to stop")
    status, data, _ = await admin.request("GET", "/readyz", token=None)
    assert status == 503
    assert data == {"status": "not ready", "reasons": ["the server is draining to stop"]}
    async with admin.session.get(admin.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        assert "process_cpu_seconds_total" in await response.text()


async def test_the_openapi_document_names_every_route(admin: Admin) -> None:
    """The served OpenAPI 3.1 document describes exactly the routes the server has, with
    their methods."""
    status, data, _ = await admin.request("GET", "/api/openapi.json", token=GLOBEX)
    assert status == 200
    assert data["openapi"] == "3.1.0"
    assert "/api/calls/{id}" in data["paths"]
    documented = {
        (path, method)
        for path, item in data["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served_routes(admin.server.app) <= documented


async def test_a_port_in_use_is_logged_and_not_raised(admin: Admin) -> None:
    """A second server on the same port logs admin.unavailable and reports False."""
    port = int(admin.url.rpartition(":")[2])

    async def ready() -> list[str]:
        return []

    other = AdminServer(tokens=lambda: TOKENS, ready=ready)
    with structlog.testing.capture_logs() as logs:
        assert not await other.start("127.0.0.1", port)
    assert [e["event"] for e in logs] == ["admin.unavailable"]
