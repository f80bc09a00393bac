"""A call manager wired to the stand-ins of tests/calls/fakes.py, driven by endpoint events.

Everything but the endpoint, the media engine, the loop and the prompt store is real: the SIP
messages are parsed from text, admission, tariffs, SDP offer/answer, the CDR reporter and the
dialplan sessions are the server's own. A test's plan (a coroutine given the call's session)
stands for the dialplan; the default one answers and waits.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from callserver.calls.admission import Admission
from callserver.calls.manager import CallManager
from callserver.calls.reporting import CdrReporter
from callserver.calls.session import CallSession
from callserver.config.settings import Settings
from callserver.config.tariffs import load_tariffs
from callserver.config.trunks import TrunksFile
from callserver.sip.dialog import DialogId
from callserver.sip.events import (
    DialogConfirmed,
    DialogTerminated,
    RequestReceived,
    ResponseReceived,
)
from callserver.sip.message import Response
from callserver.sip.offer_answer import AnswerConfig, answer_offer
from callserver.sip.parser import parse_message
from callserver.sip.sdp import parse_sdp
from tests.calls.fakes import (
    CALLEE,
    CALLER,
    OFFER,
    OUR_TAG,
    Invited,
    PinnedLoop,
    RecordingEndpoint,
    RecordingMedia,
    RecordingSink,
    SilentPrompts,
    request,
)

Plan = Callable[[CallSession], Awaitable[None]]


async def answer_and_wait(session: CallSession) -> None:
    """A plan that answers and keeps the call until either side ends it."""
    await session.answer()
    await asyncio.Event().wait()


@dataclass
class Harness:
    """A ``CallManager`` and its stand-ins; see the module docstring."""

    manager: CallManager
    endpoint: RecordingEndpoint
    media: RecordingMedia
    loop: PinnedLoop
    sink: RecordingSink
    plan: Plan | None = answer_and_wait
    woken: int = 0
    sessions: list[CallSession] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        tmp_path: Path,
        *,
        plan: Plan | None = answer_and_wait,
        trunks: Mapping[str, object] | None = None,
        ports: int = 100,
        **calls: object,
    ) -> Harness:
        """Everything wired; ``calls`` are ``calls.*`` settings, ``trunks`` a trunks file."""
        settings = Settings(data_dir=tmp_path, calls=calls)  # type: ignore[arg-type]
        endpoint, media, loop, sink = (
            RecordingEndpoint(),
            RecordingMedia(ports=ports),
            PinnedLoop(),
            RecordingSink(),
        )
        tariffs = load_tariffs()
        reporter = CdrReporter(tariffs, loop.time)
        reporter.sink = sink
        table = TrunksFile.model_validate(trunks or {"allow_unknown_sources": True})
        harness: Harness
        manager = CallManager(
            cast(Any, endpoint),
            settings,
            media_host="127.0.0.1",
            media=cast(Any, media),
            prompts=cast(Any, SilentPrompts()),
            admission=Admission(table),
            tariffs=tariffs,
            reporter=reporter,
            loop=cast(Any, loop),
            wake=lambda: setattr(harness, "woken", harness.woken + 1),
        )
        harness = cls(manager, endpoint, media, loop, sink, plan)
        manager.host.router = harness._route
        return harness

    def _route(self, session: CallSession) -> Awaitable[None] | None:
        self.sessions.append(session)
        return None if self.plan is None else self.plan(session)

    def deliver(self, event: object) -> None:
        """Hand one endpoint event to the manager at the pinned time."""
        self.manager.handle_event(event, self.loop.now)

    def invite(self, call_id: str, *, body: bytes = OFFER, **fields: Any) -> object:
        """A new INVITE from the caller; its server transaction key."""
        invite = request("INVITE", call_id, body=body, **fields)
        key = ("invite", call_id)
        self.endpoint.pending[key] = invite
        self.deliver(RequestReceived(request=invite, peer=CALLER, key=key, rtime=self.loop.now))
        return key

    def in_dialog(self, method: str, call_id: str, *, body: bytes = b"", seq: int = 2) -> object:
        """A request inside the caller's dialog; its server transaction key."""
        sent = request(method, call_id, body=body, seq=seq, in_dialog=True)
        key = (method.lower(), call_id, seq)
        if method == "INVITE":
            self.endpoint.pending[key] = sent
        self.deliver(RequestReceived(request=sent, peer=CALLER, key=key, rtime=self.loop.now))
        return key

    def ack(self, call_id: str, body: bytes = b"") -> None:
        """The caller's ACK of our 2xx."""
        self.deliver(DialogConfirmed(dialog_id=dialog(call_id), rtime=self.loop.now, body=body))

    def ended(self, call_id: str, reason: str) -> None:
        """The caller's dialog ended (``bye_received``, ``bye_sent``, ``ack_timeout``...)."""
        self.deliver(
            DialogTerminated(dialog_id=dialog(call_id), reason=reason, rtime=self.loop.now)
        )

    def leg_response(self, invited: Invited, status: int, *, answer: bool = True) -> None:
        """The forwarded party's response to ``invited``; a 2xx carries an answer to its offer."""
        body = b""
        if 200 <= status < 300 and answer:
            config = AnswerConfig(
                codecs=("PCMU",),
                address="127.0.0.1",
                port=30000,
                session_id=1,
                session_version=1,
            )
            body = answer_offer(parse_sdp(invited.body), config).sdp.to_bytes()
        text = (
            f"SIP/2.0 {status} X\r\n"
            f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{invited.handle}\r\n"
            f"From: <sip:caller@127.0.0.1>;tag=leg-from\r\nTo: <{invited.uri}>;tag=leg-to\r\n"
            f"Call-ID: {invited.call_id}\r\nCSeq: 1 INVITE\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        response = parse_message(text.encode() + body)
        assert isinstance(response, Response)
        self.deliver(
            ResponseReceived(
                response=response, peer=CALLEE, key=invited.handle, rtime=self.loop.now
            )
        )

    async def settle(self) -> None:
        """Let the dialplan tasks run until they wait for something."""
        for _ in range(20):
            await asyncio.sleep(0)


def dialog(call_id: str) -> DialogId:
    """The caller's dialog as our 2xx created it (UAS side: our tag, the caller's)."""
    return DialogId(call_id, OUR_TAG, f"caller-{call_id}")


def leg_dialog(invited: Invited) -> DialogId:
    """A forwarded leg's dialog (UAC side: the From tag ours, the To tag the callee's)."""
    return DialogId(invited.call_id, "leg-from", "leg-to")
