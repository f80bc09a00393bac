"""``AdminServer``: the aiohttp application of the admin API on the server's running loop.

Every request but ``/healthz``, ``/readyz``, ``/metrics`` and the web portal's pages and files
(``portal``: they hold no data) needs a bearer token of the settings (``auth``); the token's
entry is ``auth.holder`` while the request is handled. Every error is JSON,
``{"error": "..."}``, saying what to do about it. Every change (a method other than
GET or HEAD) is logged as ``admin.audit`` with the token's name, the method, the path and the
status. Handlers read the server's state and never wait on I/O on the loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, runtime_checkable

import structlog
from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from callserver.admin.auth import bearer_token, find_token, holder
from callserver.admin.calls_api import CallsApi
from callserver.admin.cdrs_api import CdrsApi
from callserver.admin.centre_resources import centre_resources
from callserver.admin.centre_view import PlanQueues, memberships
from callserver.admin.dialplans_api import DialplansApi, number_owners
from callserver.admin.openapi_document import openapi_document
from callserver.admin.params import check_known
from callserver.admin.portal import PortalResource, is_public
from callserver.admin.readiness import ServerState, not_ready
from callserver.admin.recordings_api import RecordingsApi
from callserver.admin.session_api import SessionApi
from callserver.admin.softphone_api import SoftphoneApi
from callserver.admin.state_resources import StateServer, state_resources
from callserver.admin.voicemail_api import VoicemailApi, box_customer
from callserver.config.admin import AdminToken
from callserver.sip.events import Peer

__all__ = ["AdminServer", "Resource", "error", "open_admin", "process_registry"]

log = structlog.get_logger("callserver.admin")
audit = structlog.get_logger("admin.audit")

# /api/softphone is a WebSocket, to which a browser cannot give a header: its token comes in
# its first message (admin.softphone_api).
_PUBLIC = frozenset({"/healthz", "/readyz", "/metrics", "/api/softphone"})
_READ_ONLY = frozenset({"GET", "HEAD", "OPTIONS"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Resource(Protocol):
    """One part of the API (``CallsApi``, ...): its handlers on the router."""

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """Add the routes this part serves (its ``openapi/*.json`` fragment describes them)."""


@runtime_checkable
class Closing(Protocol):
    """A resource with work of its own to end when the server closes (calls it placed, the
    softphones' WebSockets)."""

    async def close(self) -> None:
        """End that work."""


def process_registry() -> CollectorRegistry:
    """A registry with the process collector alone (CPU, memory, open files)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


class _Server(ServerState, StateServer, Protocol):
    """What ``open_admin`` reads of the running server."""


async def open_admin(
    server: _Server, registry: CollectorRegistry | None = None
) -> AdminServer | None:
    """The admin API of ``server`` listening on ``admin.listen``, or None when it is disabled
    or cannot listen (logged). Its tokens are read at each request (a SIGHUP applies them)."""
    if not server.settings.admin.enabled:
        return None
    loop_time = asyncio.get_running_loop().time
    admin = AdminServer(
        tokens=lambda: server.settings.admin.tokens,
        ready=lambda: not_ready(server),
        registry=registry,
        resources=[
            CallsApi(server.calls, loop_time),
            DialplansApi(
                server.routing.dialplans,
                lambda: number_owners(server.admission.table.config.customers),
            ),
            *state_resources(server, loop_time),
            CdrsApi(
                lambda: server.settings.data_dir / "cdr.sqlite",
                _cdr_feed(server),
                central=server.central.reads if server.central is not None else None,
            ),
            RecordingsApi(lambda: server.settings.data_dir),
            VoicemailApi(
                server.phones.voicemail,
                lambda: server.settings.data_dir / "voicemail",
                lambda box: box_customer(server.centrex, box),
            ),
            *centre_resources(server),
            softphone_api(server),
            SessionApi(),
            PortalResource(),
        ],
    )
    return admin if await admin.start(*server.settings.admin.address) else None


def _cdr_feed(server: ServerState) -> Callable[[], Awaitable[object]] | None:
    """The server's ingest run, which the CDR reads wait for; None when the server does not
    ingest (``cdr.ingest_interval: 0``). With ``cluster.postgres``: a delivery of the
    feeder's, the reads being PostgreSQL's."""
    if server.central is not None:
        return server.central.feeder.deliver
    return server.ingester.ingest if server.settings.cdr.ingest_interval > 0 else None


def softphone_api(server: ServerState) -> SoftphoneApi:
    """The softphone's WebSocket over the running server: its Centrex, the agents' desk and
    call centre, and its first SIP socket (a wildcard listen address is reached on loopback,
    so the softphones' own sockets are bound there: ``SoftphoneSession``'s ``bind_host``)."""
    phones = server.phones

    def states(number: str) -> tuple[str, str | None]:
        agent = phones.centre.centre.agents.get(number)
        return agent.state.value, agent.reason

    def sip() -> Peer:
        host = server.settings.sip.listen[0].host
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
        return Peer("udp", host, server.sockets.first_port)

    queues = PlanQueues(lambda: server.routing.dialplans.plans)

    def is_agent(number: str) -> bool:
        centre = phones.centre.centre
        if any(agent.number == number for agent in centre.agents):
            return True
        return number in memberships(queues.configs(centre).values())

    return SoftphoneApi(
        tokens=lambda: server.settings.admin.tokens,
        settings=lambda: server.settings.admin.softphone,
        centrex=lambda: server.centrex,
        desk=phones.agents,
        states=states,
        server=sip,
        agents=is_agent,
    )


def error(status: int, message: str, **headers: str) -> web.Response:
    """A JSON error response: ``{"error": message}``."""
    return web.json_response({"error": message}, status=status, headers=headers or None)


class AdminServer:
    """The admin API, health checks and metrics on ``listen``; see the module docstring."""

    def __init__(
        self,
        *,
        tokens: Callable[[], Sequence[AdminToken]],
        ready: Callable[[], Awaitable[list[str]]],
        registry: CollectorRegistry | None = None,
        resources: Sequence[Resource] = (),
    ) -> None:
        """``tokens`` is read at each request (a reload applies at once); ``ready`` returns
        why the server is not ready (empty: ready); ``registry`` is what /metrics serves (None:
        the process collector alone); ``resources`` are the parts of the API under /api."""
        self._tokens = tokens
        self._ready = ready
        self._registry = registry if registry is not None else process_registry()
        self._openapi: bytes | None = None
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the port bound (a listen port 0 picks one)
        self.app = web.Application(middlewares=[self._audit, self._auth, self._errors])
        self.app.router.add_get("/healthz", self._healthz)
        self.app.router.add_get("/readyz", self._readyz)
        self.app.router.add_get("/metrics", self._metrics)
        self.app.router.add_get("/api/openapi.json", self._openapi_document)
        self._resources = tuple(resources)
        for resource in resources:
            resource.add_routes(self.app.router)

    async def start(self, host: str, port: int) -> bool:
        """Listen on ``host:port``; a failure to bind is logged and the server runs without
        the admin API (False)."""
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            log.error("admin.unavailable", listen=f"{host}:{port}", error=str(exc))
            await runner.cleanup()
            return False
        self._runner = runner
        self.port = runner.addresses[0][1]
        log.info("admin.listening", host=host, port=self.port)
        return True

    async def close(self) -> None:
        """End the resources' own work, stop listening and close the open connections."""
        for resource in self._resources:
            if isinstance(resource, Closing):
                await resource.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- middlewares ------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Every error as JSON with a message a person can act on."""
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            allowed = ", ".join(sorted(exc.allowed_methods))
            return error(
                405,
                f"{request.method} is not allowed on {request.path}; use {allowed}",
                Allow=allowed,
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            if exc.text and not exc.text.startswith(f"{exc.status}:"):  # a handler's own words
                return error(exc.status, exc.text)
            if exc.status == 404:
                return error(404, f"no such resource: {request.path} (see /api/openapi.json)")
            return error(exc.status, f"{exc.reason}: {request.method} {request.path}")
        except Exception:
            log.exception("admin.handler_failed", method=request.method, path=request.path)
            return error(500, "the server failed to handle this request; its log says why")

    @web.middleware
    async def _audit(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """``admin.audit``: who changed what, and the answer, for every non-GET request."""
        holder.set(None)  # a connection's requests share its task: none inherits a token
        response = await handler(request)
        if request.method not in _READ_ONLY:
            token = holder.get()
            audit.info(
                "admin.audit",
                token=token.name if token is not None else None,
                role=token.role if token is not None else None,
                method=request.method,
                path=request.path,
                status=response.status,
            )
        return response

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """RFC 6750 §3: 401 with ``WWW-Authenticate: Bearer`` without a known token."""
        if request.path in _PUBLIC or is_public(request.path):
            return await handler(request)
        token = bearer_token(request.headers.get("Authorization"))
        if token is None:
            return error(
                401,
                "send a token: Authorization: Bearer <token> (callserver admin token)",
                **{"WWW-Authenticate": 'Bearer realm="callserver"'},
            )
        entry = find_token(token, self._tokens())
        if entry is None:
            return error(
                401,
                "the token is not one of admin.tokens: check it, or make a new one",
                **{"WWW-Authenticate": 'Bearer realm="callserver", error="invalid_token"'},
            )
        holder.set(entry)
        return await handler(request)

    # -- health, metrics, the document ------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.Response:
        """Alive: the loop answers."""
        return web.json_response({"status": "ok"})

    async def _readyz(self, request: web.Request) -> web.Response:
        """Ready: SIP listening, dialplans loaded, the CDR spool writable (503 with why not)."""
        reasons = await self._ready()
        if reasons:
            return web.json_response({"status": "not ready", "reasons": reasons}, status=503)
        return web.json_response({"status": "ready"})

    async def _metrics(self, request: web.Request) -> web.Response:
        """The Prometheus text exposition of the registry, read now."""
        body = generate_latest(self._registry)
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _openapi_document(self, request: web.Request) -> web.Response:
        """The OpenAPI 3.1 document of this API, read from the package once, in a thread."""
        check_known(request, ())
        if self._openapi is None:
            document = await asyncio.to_thread(openapi_document)
            self._openapi = json.dumps(document).encode()
        return web.Response(body=self._openapi, content_type="application/json")
