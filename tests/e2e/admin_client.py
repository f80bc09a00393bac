"""Requests to the admin API of a `callserver run` (its ``admin.listening`` port), with the
tokens of tests/admin/tokens.py in its settings (``ADMIN``), and the two customers most of
those tests call as (``TRUNKS``: acme's PBX calls the operator's ``CALLED``; globex has none)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.admin.tokens import TOKEN_SETTINGS
from tests.e2e.conftest import HOST, ServerProcess

ADMIN: dict[str, object] = {"tokens": TOKEN_SETTINGS}
CALLED = "38733100200"
TRUNKS: dict[str, object] = {
    "customers": {"acme": {}, "globex": {}},
    "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme"}},
    "numbers": {CALLED: {}},  # the operator's: a call to it is not routed out
}


def api(
    server: ServerProcess, method: str, path: str, token: str | None = None, body: object = None
) -> tuple[int, Any]:
    """The status and JSON answer of one request; ``body`` is sent as JSON."""
    port = server.wait_for("admin.listening")["port"]
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
