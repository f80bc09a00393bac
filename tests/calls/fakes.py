"""Stand-ins for what the calls layer drives: the SIP endpoint, the media engine, the loop, the
CDR spool and the prompt store. Each keeps what it was asked to do, for the tests to read.

The endpoint and the media engine are not the things under test: they record responses,
BYEs, forwarded INVITEs and CANCELs, and the streams opened, configured, played, bridged and
closed (real ``MediaStream`` objects, no sockets). ``PinnedLoop``'s clock stands still until
a test moves it (``advance``), which fires the timers that fall due; futures and tasks run on
the test's own event loop.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from callserver.cdr.record import CdrRecord
from callserver.media.negotiated import StreamConfig
from callserver.media.prompts import PlaylistItem
from callserver.media.stream import MediaStream
from callserver.sip.dialog import DialogId
from callserver.sip.endpoint import EndpointConfig
from callserver.sip.events import Peer
from callserver.sip.message import Request
from callserver.sip.parser import parse_message

CALLER = Peer("udp", "127.0.0.1", 6000)
CALLEE = Peer("udp", "127.0.0.1", 6100)
OUR_TAG = "srv1"

OFFER = (
    b"v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)

_REQUEST = (
    "{method} sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{call_id}-{seq}\r\n"
    "From: <sip:caller@127.0.0.1:6000>;tag=caller-{call_id}\r\n"
    "To: <sip:{number}@127.0.0.1:5060>{to_tag}\r\n"
    "Call-ID: {call_id}\r\nCSeq: {seq} {method}\r\nContact: <sip:caller@127.0.0.1:6000>\r\n"
    "Max-Forwards: {max_forwards}\r\n{content_type}Content-Length: {length}\r\n\r\n"
)


def request(
    method: str,
    call_id: str,
    *,
    number: str = "100",
    body: bytes = b"",
    seq: int = 1,
    in_dialog: bool = False,
    max_forwards: int = 70,
) -> Request:
    """A request from the caller, parsed from its text as the endpoint would deliver it."""
    text = _REQUEST.format(
        method=method,
        number=number,
        call_id=call_id,
        seq=seq,
        to_tag=f";tag={OUR_TAG}" if in_dialog else "",
        max_forwards=max_forwards,
        content_type="Content-Type: application/sdp\r\n" if body else "",
        length=len(body),
    )
    message = parse_message(text.encode() + body)
    assert isinstance(message, Request)
    return message


@dataclass(slots=True)
class Sent:
    """A response the calls layer sent."""

    key: object
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Invited:
    """An INVITE the calls layer placed for a forwarded leg."""

    handle: object
    uri: str
    peer: Peer
    body: bytes
    call_id: str
    max_forwards: int


@dataclass(slots=True)
class Requested:
    """An out-of-dialog request the calls layer sent (an OPTIONS to a registered phone)."""

    handle: object
    method: str
    uri: str
    to: str
    peer: Peer
    headers: tuple[tuple[str, str], ...]


@dataclass
class RecordingUac:
    """The UAC core as the calls layer sees it: INVITEs placed, CANCELs and other requests
    sent are kept."""

    invites: list[Invited] = field(default_factory=list)
    cancels: list[object] = field(default_factory=list)
    cancel_headers: dict[object, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    requests: list[Requested] = field(default_factory=list)

    def request(
        self,
        method: str,
        uri: object,
        *,
        to_addr: object,
        peer: Peer,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        **rest: Any,
    ) -> object:
        """Keep the request; its handle is ``req-<n>``."""
        handle = f"req-{len(self.requests) + 1}"
        self.requests.append(Requested(handle, method, str(uri), str(to_addr), peer, headers))
        return handle

    def invite(self, uri: object, *, peer: Peer, now: float, body: bytes, **rest: Any) -> object:
        """Keep the INVITE; its handle is ``uac-<n>``."""
        handle = f"uac-{len(self.invites) + 1}"
        call_id, max_forwards = str(rest["call_id"]), int(rest["max_forwards"])
        self.invites.append(Invited(handle, str(uri), peer, body, call_id, max_forwards))
        return handle

    def cancel(self, handle: object, now: float, headers: tuple[tuple[str, str], ...] = ()) -> None:
        """Keep the CANCEL and its extra headers."""
        self.cancels.append(handle)
        self.cancel_headers[handle] = headers


@dataclass
class RecordingEndpoint:
    """The SIP endpoint as the calls layer sees it; what it is asked to send is kept."""

    config: EndpointConfig = field(
        default_factory=lambda: EndpointConfig(host="127.0.0.1", port=5060)
    )
    responses: list[Sent] = field(default_factory=list)
    byes: list[DialogId] = field(default_factory=list)
    discarded: list[object] = field(default_factory=list)
    pending: dict[object, Request] = field(default_factory=dict)  # INVITEs not answered finally
    uac: RecordingUac = field(default_factory=RecordingUac)
    dialogs: dict[DialogId, object] = field(default_factory=dict)

    def respond(
        self,
        key: object,
        status: int,
        now: float,
        *,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> DialogId | None:
        """Keep the response; a 2xx to a pending INVITE creates its dialog (RFC 3261 §12.1.1)."""
        self.responses.append(Sent(key, status, body, headers))
        invite = self.pending.pop(key, None) if status >= 200 else None
        if invite is None or status >= 300:
            return None
        return DialogId(invite.call_id(), OUR_TAG, invite.from_().tag or "")

    def is_pending_invite(self, key: object) -> bool:
        """True until the INVITE of ``key`` got a final response."""
        return key in self.pending

    def bye(self, dialog_id: DialogId, now: float) -> object:
        """Keep the BYE; its client transaction's key."""
        self.byes.append(dialog_id)
        return ("bye", len(self.byes))

    def discard(self, key: object, now: float) -> None:
        """Keep the discarded INVITE's key."""
        self.pending.pop(key, None)
        self.discarded.append(key)

    def statuses(self, key: object) -> list[int]:
        """The statuses sent for ``key``, in order."""
        return [sent.status for sent in self.responses if sent.key == key]


class RecordingMedia:
    """The media engine as the calls layer sees it: real streams, no sockets; ops are kept."""

    def __init__(self, *, ports: int = 100) -> None:
        self.ops: list[tuple[object, ...]] = []
        self.open: dict[int, MediaStream] = {}
        self._ids = itertools.count(1)
        self._ports = ports

    def open_stream(self) -> MediaStream:
        """A stream on the next even port; OSError when every port is in use."""
        if len(self.open) >= self._ports:
            raise OSError("no free RTP port")
        n = next(self._ids)
        stream = MediaStream(n, 20000 + 2 * n, ssrc=n, sequence=1, timestamp=0)
        self.open[n] = stream
        self.ops.append(("open", n))
        return stream

    def configure(self, stream: MediaStream, config: StreamConfig) -> None:
        """Apply ``config`` to the stream as the engine does."""
        stream.configure(config, 0.0)
        self.ops.append(("configure", stream.stream_id, config.codec, config.direction))

    def is_open(self, stream: MediaStream) -> bool:
        """True until ``close_stream``."""
        return stream.stream_id in self.open

    def close_stream(self, stream: MediaStream) -> None:
        """Forget the stream."""
        self.unbridge(stream)
        self.open.pop(stream.stream_id, None)
        self.ops.append(("close", stream.stream_id))

    def play(
        self, stream: MediaStream, payload: bytes, *, loop: bool = False, barge_in: bool = False
    ) -> None:
        """Keep what was played."""
        self.ops.append(("play", stream.stream_id, len(payload), loop))

    def stop_playback(self, stream: MediaStream) -> None:
        """Keep the stop."""
        self.ops.append(("stop", stream.stream_id))

    def report_digit(self, stream: MediaStream, digit: str, source: str) -> None:
        """Keep a digit that came outside RTP."""
        self.ops.append(("digit", stream.stream_id, digit, source))

    def record(self, stream: MediaStream, path: Path, **limits: Any) -> None:
        """Keep the recording's path."""
        self.ops.append(("record", stream.stream_id, str(path)))

    def bridge(self, a: MediaStream, b: MediaStream) -> None:
        """Join the two streams as the engine does."""
        a.peer, b.peer = b, a
        self.ops.append(("bridge", a.stream_id, b.stream_id))

    def unbridge(self, stream: MediaStream) -> None:
        """Part a bridged stream from its peer."""
        peer, stream.peer = stream.peer, None
        if isinstance(peer, MediaStream):
            peer.peer = None
            self.ops.append(("unbridge", stream.stream_id))

    def hold(self, stream: MediaStream, music: bytes) -> None:
        """Keep the hold."""
        self.ops.append(("hold", stream.stream_id))

    def resume(self, stream: MediaStream) -> None:
        """Keep the resume."""
        self.ops.append(("resume", stream.stream_id))

    def kinds(self, kind: str) -> list[tuple[object, ...]]:
        """The ops of one kind, in order."""
        return [op for op in self.ops if op[0] == kind]


class TimerHandle:
    """A timer of ``PinnedLoop``."""

    def __init__(self, when: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.when, self.callback, self.args = when, callback, args
        self.cancelled = False

    def cancel(self) -> None:
        """Never fire."""
        self.cancelled = True


class PinnedLoop:
    """The loop as the calls layer sees it, with a clock that moves only in ``advance``."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.timers: list[TimerHandle] = []

    def time(self) -> float:
        """The pinned clock."""
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """A timer fired by ``advance`` once the clock reaches ``when``."""
        timer = TimerHandle(when, callback, args)
        self.timers.append(timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """A timer ``delay`` seconds from now."""
        return self.call_at(self.now + delay, callback, *args)

    def call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run on the test's event loop."""
        asyncio.get_running_loop().call_soon(callback, *args)

    def create_future(self) -> asyncio.Future[Any]:
        """A future of the test's event loop."""
        return asyncio.get_running_loop().create_future()

    def create_task(self, coro: Any) -> asyncio.Task[Any]:
        """A task on the test's event loop."""
        return asyncio.get_running_loop().create_task(coro)

    def advance(self, seconds: float) -> None:
        """Move the clock; fire every timer that falls due, earliest first."""
        end = self.now + seconds
        while True:
            due = [t for t in self.timers if not t.cancelled and t.when <= end]
            if not due:
                break
            timer = min(due, key=lambda t: t.when)
            self.timers.remove(timer)
            self.now = max(self.now, timer.when)
            timer.callback(*timer.args)
        self.now = end


class RecordingSink:
    """The CDR spool as the reporter sees it: every record written is kept."""

    def __init__(self) -> None:
        self.records: list[CdrRecord] = []
        self.opened: list[str] = []
        self.answered: list[str] = []

    def open_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Keep the opened leg."""
        self.opened.append(call_id)
        return _done()

    def update_call(self, call_id: str, known: Mapping[str, object]) -> Future[bool]:
        """Keep the answered leg."""
        self.answered.append(call_id)
        return _done()

    def write(self, record: CdrRecord) -> Future[bool]:
        """Keep the record."""
        self.records.append(record)
        return _done()

    def ends(self) -> list[tuple[str, str, int | None]]:
        """(leg, end_reason, sip_code) of every record, in order."""
        return [(r.leg, r.end_reason, r.sip_code) for r in self.records]


def _done() -> Future[bool]:
    future: Future[bool] = Future()
    future.set_result(True)
    return future


class SilentPrompts:
    """The prompt store: one second of silence for every playlist, in any codec."""

    def render(self, items: list[PlaylistItem], language: str, codec: str) -> bytes:
        return b"\xff" * 8000
