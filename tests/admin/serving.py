"""An admin server on a free loopback port serving some resources, and a client of it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from callserver.admin.server import AdminServer, Resource
from tests.admin.tokens import OPERATOR, TOKENS


@dataclass(frozen=True)
class Answer:
    """One answer: status, body, headers; ``json`` is the body parsed when it is JSON."""

    status: int
    body: bytes
    headers: CIMultiDictProxy[str]

    @property
    def json(self) -> Any:
        """The JSON body."""
        assert self.headers["Content-Type"].startswith("application/json"), self.headers
        return json.loads(self.body)


@dataclass(frozen=True)
class Client:
    """Requests to the server at ``url`` with a token (the operator's unless told)."""

    url: str
    session: aiohttp.ClientSession

    async def request(self, method: str, path: str, token: str | None = OPERATOR) -> Answer:
        """The answer to ``method path``."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, self.url + path, headers=headers) as response:
            return Answer(response.status, await response.read(), response.headers)

    async def get(self, path: str, token: str | None = OPERATOR) -> Answer:
        """The answer to ``GET path``."""
        return await self.request("GET", path, token)

    async def json(
        self, method: str, path: str, token: str = OPERATOR, body: object = None
    ) -> tuple[int, Any]:
        """The status and JSON answer to ``method path`` with ``body`` sent as JSON."""
        headers = {"Authorization": f"Bearer {token}"}
        data = None if body is None else json.dumps(body)
        async with self.session.request(
            method, self.url + path, headers=headers, data=data
        ) as response:
            return response.status, json.loads(await response.read())


@contextlib.asynccontextmanager
async def serving(*resources: Resource) -> AsyncIterator[Client]:
    """An ``AdminServer`` of ``resources`` on a free port, with ``TOKENS``, for the block."""

    async def ready() -> list[str]:
        return []

    server = AdminServer(tokens=lambda: TOKENS, ready=ready, resources=resources)
    assert await server.start("127.0.0.1", 0)
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(f"http://127.0.0.1:{server.port}", session)
    finally:
        await server.close()
