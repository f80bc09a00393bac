"""``/api/whoami``: the token's own entry (name, role, customer), so a page can say who is
logged in and what it will see."""

from __future__ import annotations

from aiohttp import web

from callserver.admin.auth import request_token
from callserver.admin.params import check_known

__all__ = ["SessionApi"]


class SessionApi:
    """The handler of ``GET /api/whoami``."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET the request's token."""
        router.add_get("/api/whoami", self.whoami)

    async def whoami(self, request: web.Request) -> web.Response:
        """The token's name, role and customer (null for an operator)."""
        check_known(request, ())
        token = request_token()
        return web.json_response(
            {"name": token.name, "role": token.role, "customer": token.customer}
        )
