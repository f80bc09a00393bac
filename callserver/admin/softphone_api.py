"""``/api/softphone``: the WebSocket of the agents' WebRTC softphone (``callserver.softphone``).

A browser cannot give a WebSocket an ``Authorization`` header, so this path passes the
server's bearer-token check and the token comes in the first message instead:
``{"type": "hello", "token": "...", "agent": "+38733100201"}`` (the agent's number; a
customer token may also name one of its customer's extensions). Only an agent may open one:
a subscriber a queue in force lists, or one the call centre knows as an agent (it logged in
before), the agents ``GET /api/agents`` lists; another subscriber is refused, for an operator
token too, since the softphone registers as its phone and takes its calls. A customer token
may act only as its own customer's agents: another customer's agent is refused exactly as a
number that is no subscriber. The answer is ``ready`` (the agent, its state), or ``error``
and the socket closed (code 4401 for a token, 4403 for an agent, 4409 when the agent has a
softphone open already, 4503 when ``admin.softphone.max_sessions`` are open). After ``ready``
the messages are the session's (``softphone.session``). Every message that changes something
(all but ``offer``) is logged as ``admin.audit`` with the token's name, as the API's writes
are.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from aiohttp import WSMsgType, web

from callserver.admin.auth import find_token, sees_customer
from callserver.config.admin import AdminToken, SoftphoneSettings
from callserver.config.centrex import Centrex, Subscriber
from callserver.policy.numbering import e164
from callserver.sip.events import Peer

if TYPE_CHECKING:  # aiortc and PyAV (30 MiB) load with the first softphone, not with the server
    from callserver.softphone.session import AgentActions, SoftphoneSession

__all__ = ["SoftphoneApi"]

log = structlog.get_logger("callserver.admin")
audit = structlog.get_logger("admin.audit")

_HELLO_WAIT = 10.0  # seconds a new socket has to say who it is
_OUTBOX = 256  # messages waiting for a slow browser at most; then the socket is closed


@dataclass(frozen=True, slots=True)
class _Refusal:
    """Why a softphone is not opened: the WebSocket's close code and the message."""

    code: int
    text: str


class AgentStates(Protocol):
    """The agent's state and pause reason now (the call centre's)."""

    def __call__(self, number: str) -> tuple[str, str | None]:
        """``(state, reason)`` of the agent ``number``."""


class AgentRoster(Protocol):
    """Whether a subscriber is an agent (``admin.server.softphone_api`` asks the queues in
    force and the call centre)."""

    def __call__(self, number: str) -> bool:
        """True when ``number`` (E.164 with ``+``) is an agent."""


class SoftphoneApi:
    """The softphone's WebSocket (module docstring).

    Args:
        tokens: the settings' tokens, read at each hello.
        settings: the softphone's settings in force.
        centrex: the subscribers in force; ``desk`` the agents' requests; ``states`` their
            states.
        server: where the call server's SIP listens (UDP), read once a session opens.
        agents: whether a subscriber is an agent, asked at each hello.
    """

    def __init__(
        self,
        *,
        tokens: Callable[[], Sequence[AdminToken]],
        settings: Callable[[], SoftphoneSettings],
        centrex: Callable[[], Centrex],
        desk: AgentActions,
        states: AgentStates,
        server: Callable[[], Peer],
        agents: AgentRoster,
    ) -> None:
        self._tokens, self._settings, self._centrex = tokens, settings, centrex
        self._desk, self._states, self._server = desk, states, server
        self._agents = agents
        self.sessions: dict[str, SoftphoneSession] = {}  # by agent number
        self._sockets: set[web.WebSocketResponse] = set()

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET /api/softphone: the WebSocket."""
        router.add_get("/api/softphone", self.connect)

    async def close(self) -> None:
        """End every softphone (the server stops): each hangs up and unregisters."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"the server is stopping")

    async def connect(self, request: web.Request) -> web.StreamResponse:
        """Serve one softphone until the browser or the server closes it."""
        if not self._settings().enabled:
            raise web.HTTPNotFound(text="the softphone is disabled (admin.softphone.enabled)")
        ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=256 * 1024)
        await ws.prepare(request)
        hello = await _first_message(ws)
        opened = self._admit(hello)
        if isinstance(opened, _Refusal):
            code, text = opened.code, opened.text
            await ws.send_json({"type": "error", "error": text})
            await ws.close(code=code, message=text[:120].encode())
            return ws
        token, subscriber = opened
        self._sockets.add(ws)
        try:
            await self._serve(ws, token, subscriber)
        finally:
            self._sockets.discard(ws)
        return ws

    def _admit(self, hello: Mapping[str, Any] | None) -> tuple[AdminToken, Subscriber] | _Refusal:
        if hello is None or hello.get("type") != "hello":
            return _Refusal(
                4400, 'say who you are first: {"type": "hello", "token": ..., "agent": ...}'
            )
        token = hello.get("token")
        entry = find_token(token, self._tokens()) if isinstance(token, str) else None
        if entry is None:
            return _Refusal(
                4401, "the token is not one of admin.tokens: check it, or make a new one"
            )
        subscriber = self._subscriber(entry, hello.get("agent"))
        if subscriber is None:
            return _Refusal(4403, f"{hello.get('agent')!r} is not an agent this token may act as")
        if not self._agents(subscriber.number):
            return _Refusal(
                4403,
                f"{subscriber.number} is a subscriber but no agent: only an agent opens a "
                "softphone (list it in a queue's agents in its dialplan)",
            )
        if subscriber.number in self.sessions:
            return _Refusal(
                4409, f"agent {subscriber.number} has a softphone open already: close it first"
            )
        if len(self.sessions) >= self._settings().max_sessions:
            return _Refusal(
                4503, "the server has its most softphones open (admin.softphone.max_sessions)"
            )
        return entry, subscriber

    def _subscriber(self, token: AdminToken, agent: object) -> Subscriber | None:
        """The subscriber ``agent`` names (a number, or an extension of the token's
        customer), if the token sees its customer."""
        if not isinstance(agent, str) or not agent.strip():
            return None
        centrex = self._centrex()
        found = None
        with contextlib.suppress(ValueError):
            found = centrex.subscriber(e164(agent.strip()))
        if found is None and token.customer is not None and agent.strip().isdigit():
            groups = [g.id for g in centrex.groups.values() if g.customer == token.customer]
            matches = [s for g in groups if (s := centrex.extension(g, agent.strip()))]
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            return None
        group = centrex.groups.get(found.group)
        return found if sees_customer(token, group.customer if group else None) else None

    async def _serve(
        self, ws: web.WebSocketResponse, token: AdminToken, subscriber: Subscriber
    ) -> None:
        from callserver.softphone.session import SoftphoneSession

        outbox = _Outbox(ws)
        server = self._server()
        session = SoftphoneSession(
            subscriber=subscriber,
            desk=self._desk,
            server=server,
            bind_host=server.host,
            address=self._settings().address,
            send=outbox.put,
        )
        self.sessions[subscriber.number] = session
        writer = asyncio.get_running_loop().create_task(outbox.write())
        try:
            await session.open()
            state, reason = self._states(subscriber.number)
            agent = {
                "number": subscriber.number,
                "extension": subscriber.extension,
                "name": subscriber.name,
                "state": state,
                "reason": reason,
            }
            outbox.put({"type": "ready", "agent": agent})
            log.info("softphone.opened", agent=subscriber.number, token=token.name)
            await self._read(ws, token, session)
        finally:
            del self.sessions[subscriber.number]
            try:
                await session.close()
            finally:
                await _stop(writer)
                log.info("softphone.closed", agent=subscriber.number, token=token.name)

    async def _read(
        self, ws: web.WebSocketResponse, token: AdminToken, session: SoftphoneSession
    ) -> None:
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                message = None
            if not isinstance(message, dict):
                session.refuse('each message is a JSON object with a "type"')
                continue
            if message.get("type") != "offer":
                audit.info(
                    "admin.audit",
                    token=token.name,
                    role=token.role,
                    method="WS",
                    path="/api/softphone",
                    agent=session.subscriber.number,
                    action=message.get("type"),
                )
            await session.handle(message)


async def _stop(writer: asyncio.Task[None]) -> None:
    """Cancel the outbox's writer and wait for it; one that failed is logged, not raised
    (the socket is closing anyway)."""
    writer.cancel()
    try:
        await writer
    except asyncio.CancelledError:
        if not writer.cancelled():  # this task itself is being cancelled
            raise
    except Exception:
        log.exception("softphone.writer_failed")


async def _first_message(ws: web.WebSocketResponse) -> Mapping[str, Any] | None:
    try:
        frame = await ws.receive(timeout=_HELLO_WAIT)
    except TimeoutError:
        return None
    if frame.type != WSMsgType.TEXT:
        return None
    try:
        message = json.loads(frame.data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


class _Outbox:
    """The messages to the browser, in order; a browser that stops reading is closed."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self._ws = ws
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_OUTBOX)
        self._full = False

    def put(self, message: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            if not self._full:
                log.warning("softphone.browser_not_reading")
            self._full = True

    async def write(self) -> None:
        while not self._ws.closed:
            if self._full:
                await self._ws.close(code=1008, message=b"the browser stopped reading")
                return
            message = await self._queue.get()
            try:
                await self._ws.send_json(message)
            except ConnectionError:  # the browser went away: what is left is for nobody
                return
