"""One agent's softphone session: the browser's messages, its peer connection, its SIP agent.

Theory of operation
-------------------
The admin server's WebSocket (``admin.softphone_api``) hands each JSON message after the
first (the token and the agent, checked there) to ``SoftphoneSession.handle``; what the
session has to say goes out through ``send``, in order. Messages have a ``type``:

============  ==========================================  ===================================
browser       does                                        answered with
============  ==========================================  ===================================
``offer``     ``{"sdp"}``: the browser's audio (WebRTC)   ``answer`` ``{"sdp"}``
``login``     the agent logs in to its queues             ``agent`` (``AgentDesk``'s outcome)
``logout``    logs out                                    ``agent``
``pause``     ``{"reason"}`` optional                     ``agent``
``unpause``   available again                             ``agent``
``accept``    answers the ringing call                    ``call`` ``talking``
``hold``      holds the answered call                     ``call`` ``held``
``resume``    resumes it                                  ``call`` ``talking``
``transfer``  ``{"to"}``: blind transfer                  ``call`` ``transferring``, ``ended``
``hangup``    declines the ringing call or ends it        ``call`` ``ended``
============  ==========================================  ===================================

The server also sends ``registration`` (the agent's phone registered or not), ``incoming``
(who calls) and ``call`` when the call changes on the other side, and ``error`` for a request
it cannot do, saying why. Login, logout and pause are ``calls.agent_desk.AgentDesk.act``, the
code the phones' ``*45`` codes and ``callserver agents`` run: the same licences, the same queue
event log lines.

An agent who logged in from the softphone is logged out when it closes (the page closed, the
connection lost, the server stopping): the queues would otherwise ring a phone that is gone.

The peer connection (aiortc: ICE, DTLS-SRTP) is answered with G.711 preferred when the
browser offers it (Chromium offers PCMU and PCMA), its host candidates on
``admin.softphone.address`` only (``softphone.ice``); it carries the agent's audio for the
whole session, silence between calls, and is bridged to the call's RTP (``track``,
``rtp_leg``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any, Protocol

import structlog
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.exceptions import InvalidStateError, OperationError

from callserver.calls.agent_desk import AgentOutcome
from callserver.config.centrex import Subscriber
from callserver.queues.agents import TransitionRefused, UnknownAgent
from callserver.sip.events import Peer
from callserver.softphone.events import AgentEvent, CallOffered, RegistrationChanged
from callserver.softphone.ice import host_candidates_on, reachable_candidates, rtc_configuration
from callserver.softphone.rtp_leg import RtpLeg
from callserver.softphone.sip_agent import SipAgent
from callserver.softphone.track import ServerAudio, browser_audio

__all__ = ["AgentActions", "SoftphoneSession"]

log = structlog.get_logger("callserver.softphone")

Message = dict[str, Any]
_G711 = ("audio/PCMU", "audio/PCMA")
_LOGOUT_RETRY = 1.0  # seconds: the queue has seen the call's end by then


class AgentActions(Protocol):
    """The agents' own requests (``calls.agent_desk.AgentDesk`` has it)."""

    def act(self, number: str, action: str, reason: str | None = None) -> AgentOutcome:
        """Do ``action`` (login, logout, pause with ``reason``, unpause) for agent ``number``."""


class SoftphoneSession:
    """One agent's softphone (module docstring).

    Args:
        subscriber: the agent's centrex.yaml entry.
        desk: where login, logout and pause go.
        server: the call server's SIP address (UDP) the agent registers with.
        bind_host: the host of the softphone's own SIP and RTP sockets (the server's).
        address: the address of the ICE host candidates offered to the browser.
        send: queues one message to the browser.
    """

    def __init__(
        self,
        *,
        subscriber: Subscriber,
        desk: AgentActions,
        server: Peer,
        bind_host: str,
        address: str,
        send: Callable[[Message], None],
    ) -> None:
        self.subscriber, self._desk, self._server = subscriber, desk, server
        self._bind_host, self._address, self._send = bind_host, address, send
        self._loop = asyncio.get_running_loop()
        self.audio = ServerAudio(self._loop)
        self._pc: RTCPeerConnection | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.rtp: RtpLeg | None = None
        self.agent: SipAgent | None = None
        self.logged_in = False  # by this softphone: logged out again when it closes

    async def open(self) -> None:
        """Open the RTP socket and the SIP agent, which registers the agent's phone."""
        self.rtp = await RtpLeg.open(self._bind_host)
        self.rtp.hear = self.audio.feed
        self.rtp.server_host = self._server.host
        self.agent = SipAgent(self.subscriber, self._server, self.rtp, self._told)
        await self.agent.open()

    async def close(self) -> None:
        """Hang up, log the agent out if it logged in here, unregister, close the peer
        connection and the sockets."""
        if self.agent is not None:
            await self.agent.close()
        if self.logged_in:
            await self._log_out()
        if self._pc is not None:
            await self._pc.close()
        for task in list(self._tasks):
            task.cancel()
        self.audio.stop()
        if self.rtp is not None:
            self.rtp.close()

    async def handle(self, message: Mapping[str, Any]) -> None:
        """One message from the browser (module docstring)."""
        kind = message.get("type")
        if kind == "offer":
            await self._offer(message.get("sdp"))
        elif kind in ("login", "logout", "pause", "unpause"):
            self._act(str(kind), message.get("reason"))
        elif kind in ("accept", "hold", "resume", "transfer", "hangup"):
            self._call(str(kind), message.get("to"))
        else:
            self.refuse(
                f"unknown message type {kind!r}: use offer, login, logout, pause, unpause, "
                "accept, hold, resume, transfer or hangup"
            )

    # -- the browser's audio --------------------------------------------------------------

    async def _offer(self, sdp: object) -> None:
        if not isinstance(sdp, str) or "m=audio" not in sdp:
            self.refuse('an offer carries the browser\'s SDP with audio: {"type": "offer", "sdp"}')
            return
        if self._pc is not None:
            await self._pc.close()
        self._pc = pc = RTCPeerConnection(rtc_configuration())
        pc.on("track", self._browser_track)
        transceiver = pc.addTransceiver(self.audio, direction="sendrecv")
        if any(f" {name[6:]}/8000" in sdp for name in _G711):
            codecs = RTCRtpSender.getCapabilities("audio").codecs
            transceiver.setCodecPreferences([c for c in codecs if c.mimeType in _G711])
        try:
            offer = reachable_candidates(sdp, self._address)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            with host_candidates_on(self._address):
                await pc.setLocalDescription(await pc.createAnswer())
        except (OperationError, InvalidStateError, ValueError) as exc:
            self.refuse(f"the browser's offer cannot be answered: {exc}")
            return
        except AssertionError:  # aiortc's SDP parser asserts on a malformed line
            self.refuse("the browser's offer cannot be answered: its SDP is malformed")
            return
        self._send({"type": "answer", "sdp": pc.localDescription.sdp})

    def _browser_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio" or self.rtp is None:
            return
        task = self._loop.create_task(browser_audio(track, self.rtp.send))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the agent and its call -----------------------------------------------------------

    def _act(self, action: str, reason: object) -> None:
        if action == "pause" and reason is not None and not isinstance(reason, str):
            self.refuse('a pause\'s "reason" is a string (a reason code) or absent')
            return
        reason = reason if action == "pause" and isinstance(reason, str) else None
        try:
            outcome = self._desk.act(self.subscriber.number, action, reason)
        except (UnknownAgent, TransitionRefused, ValueError) as exc:
            self.refuse(str(exc))
            return
        if action == "login" and outcome.outcome == "logged_in":
            self.logged_in = True  # not when refused: logged in elsewhere, it stays so
        elif action == "logout" and outcome.state == "logged_out":
            self.logged_in = False
        self._send({"type": "agent", **asdict(outcome)})

    async def _log_out(self) -> None:
        """Log the agent out as the softphone closes; when its call's end has not reached
        the queue yet (the BYE just left: ``refused``), once more a moment later, before
        ``close`` returns: no timer outlives the session (one that did could log out the
        agent's next softphone, logged in meanwhile)."""
        number = self.subscriber.number
        try:
            refused = self._desk.act(number, "logout").outcome == "refused"
        except (UnknownAgent, ValueError):  # no longer a subscriber after a reload
            return
        if refused:
            await asyncio.sleep(_LOGOUT_RETRY)
            self._log_out_again(number)

    def _log_out_again(self, number: str) -> None:
        try:
            outcome = self._desk.act(number, "logout")
        except (UnknownAgent, ValueError):
            return
        log.info("softphone.logged_out_on_close", agent=number, outcome=outcome.outcome)

    def _call(self, action: str, target: object) -> None:
        assert self.agent is not None  # opened before any message is handled
        call = self.agent.call
        if action == "accept":
            refused = call.answer()
        elif action in ("hold", "resume"):
            refused = call.hold(action == "hold")
        elif action == "transfer":
            refused = call.transfer(target if isinstance(target, str) else "")
        else:
            refused = call.hang_up()
        if refused is not None:
            self.refuse(f"cannot {action}: {refused}")
        if action == "hold":
            self.audio.clear()

    def _told(self, event: AgentEvent) -> None:
        if isinstance(event, RegistrationChanged):
            message: Message = {"type": "registration", **asdict(event)}
        elif isinstance(event, CallOffered):
            message = {"type": "incoming", **asdict(event)}
        else:
            if event.state in ("talking", "held", "transferring"):
                self.audio.resume()
            else:
                self.audio.pause()
            message = {"type": "call", **asdict(event)}
        self._send(message)

    def refuse(self, text: str) -> None:
        """Tell the browser why its request was not done."""
        log.info("softphone.refused", agent=self.subscriber.number, error=text)
        self._send({"type": "error", "error": text})
