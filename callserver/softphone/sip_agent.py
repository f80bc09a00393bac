"""A softphone's SIP user agent: the project's own ``SipEndpoint`` on a loopback UDP socket,
registered as the agent's phone.

Theory of operation
-------------------
Each softphone session has one ``SipAgent``: a ``sip.SipEndpoint`` (the same sans-IO core
the server runs) driven over its own UDP socket on the loopback address, pumped as
``app.Server`` pumps its own (after every datagram and timer: send what is queued, handle
every event, re-arm one timer at the earliest deadline). To the call server it is a phone
like any other: it REGISTERs the agent's subscriber (RFC 3261 §10.2) from its socket, answers
the 401 with the subscriber's HA1 from centrex.yaml (RFC 7616 §3.4.2: the server never knows
the password, and neither does the softphone), refreshes the binding at half its lifetime and
removes it (Expires: 0) when the session ends. A refresh answers the last challenge again with
the next nonce count, so it costs one REGISTER, not two, of the registrar's per-AOR rate; a
503 with Retry-After (that rate exceeded) is tried again after it. Queue calls and calls to
the agent's number reach it through the registrar's binding as they reach any phone; what
the call does is ``agent_call.AgentCall``'s (answer, hold, transfer, hang up), which this
class feeds with the endpoint's events.

The agent takes SIP only from the server it registers with (``server``: the address and
port): a datagram from any other peer is dropped unread and counted (``foreign``), so that
nobody else can ring, hold or hang up the agent's phone, whatever address its socket is on.
"""

from __future__ import annotations

import asyncio
import ipaddress
import secrets
from collections.abc import Callable

import structlog

from callserver.config.centrex import Subscriber
from callserver.sip.auth import AuthError, Challenge, build_authorization_ha1, parse_challenge
from callserver.sip.endpoint import EndpointConfig, SipEndpoint
from callserver.sip.events import (
    Peer,
    ResponseReceived,
    SipEvent,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.headers import Address
from callserver.sip.message import Response
from callserver.sip.transaction import TransactionKey
from callserver.sip.uri import SipUri
from callserver.softphone.agent_call import AgentCall
from callserver.softphone.events import AgentEvent, RegistrationChanged
from callserver.softphone.rtp_leg import RtpLeg

__all__ = ["SipAgent"]

log = structlog.get_logger("callserver.softphone")

USER_AGENT = "callserver-softphone"
_UNREGISTER_WAIT = 1.0  # seconds the session's end waits for the 200 to Expires: 0
_RETRY_MAX = 300  # seconds at most before a REGISTER refused with Retry-After is tried again


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, received: Callable[[bytes, Peer], None]) -> None:
        self.received = received

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received(data, Peer("udp", addr[0], addr[1]))


class SipAgent:
    """The agent's phone in SIP (module docstring).

    Args:
        subscriber: the agent's centrex.yaml entry (username, realm, HA1).
        server: where the call server's SIP listens (UDP).
        rtp: the softphone's RTP socket; ``tell`` receives the agent's events.
        expires: the binding's lifetime asked for, in seconds.
    """

    def __init__(
        self,
        subscriber: Subscriber,
        server: Peer,
        rtp: RtpLeg,
        tell: Callable[[AgentEvent], None],
        *,
        expires: int = 300,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self.subscriber, self.server, self._tell = subscriber, server, tell
        self.expires = expires
        self.endpoint = SipEndpoint(EndpointConfig(host=rtp.host, port=0, user_agent=USER_AGENT))
        self.call = AgentCall(self.endpoint, rtp, server, tell, self._loop.time, self._pump)
        self._transport: asyncio.DatagramTransport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._refresh: asyncio.TimerHandle | None = None
        self._register_key: TransactionKey | None = None
        self._register_cseq = 0
        self._register_call_id = secrets.token_hex(12)
        self._tag = secrets.token_hex(6)
        self._challenge: Challenge | None = None  # the registrar's last, answered again
        self._nonce_count = 0
        self._challenged = False  # this attempt was challenged already
        self._asked = expires
        self._unregistered: asyncio.Future[None] | None = None
        self.registered = False
        self.foreign = 0  # datagrams from another peer than the server: dropped

    async def open(self) -> None:
        """Bind the socket (a free port on the RTP socket's host) and register."""
        host = self.call.rtp.host
        transport, _ = await self._loop.create_datagram_endpoint(
            lambda: _Protocol(self._received), local_addr=(host, 0)
        )
        self._transport = transport
        port = transport.get_extra_info("sockname")[1]
        self.endpoint.config = EndpointConfig(host=host, port=port, user_agent=USER_AGENT)
        self.register(self.expires)

    async def close(self) -> None:
        """End the call if any, remove the binding (waiting briefly for the answer), close."""
        self.call.hang_up()
        if self._register_cseq > 0:  # also one still unanswered: its binding must not stay
            self._unregistered = self._loop.create_future()
            if self._refresh is not None:
                self._refresh.cancel()
            self.register(0)
            try:
                await asyncio.wait_for(self._unregistered, _UNREGISTER_WAIT)
            except TimeoutError:
                log.warning("softphone.unregister_unanswered", agent=self.subscriber.number)
        for handle in (self._timer, self._refresh):
            if handle is not None:
                handle.cancel()
        if self._transport is not None:
            self._transport.close()

    # -- registration (RFC 3261 §10.2) ----------------------------------------------------

    def register(self, expires: int) -> None:
        """Send REGISTER for the agent's AOR with this socket as its contact, answering the
        last challenge again (its nonce, the next nonce count: RFC 7616 §3.4.5) so that a
        refresh needs no new 401; a stale nonce gets one, answered once."""
        self._challenged = False
        self._send_register(expires, self._authorization())

    def _send_register(self, expires: int, authorization: str | None) -> None:
        self._register_cseq += 1
        self._asked = expires
        config = self.endpoint.config
        aor = Address(SipUri("sip", self.server.host, user=self.subscriber.username))
        headers = [
            ("Contact", f"<sip:{self.subscriber.username}@{config.sent_by()}>"),
            ("Expires", str(expires)),
        ]
        if authorization is not None:
            headers.append(("Authorization", authorization))
        self._register_key = self.endpoint.uac.request(
            "REGISTER",
            self._registrar_uri(),
            from_addr=aor.with_tag(self._tag),
            to_addr=aor,
            peer=self.server,
            now=self._loop.time(),
            headers=tuple(headers),
            call_id=self._register_call_id,
            cseq=self._register_cseq,
        )
        self._pump()

    def _registrar_uri(self) -> SipUri:
        return SipUri("sip", self.server.host, port=self.server.port)

    def _register_answered(self, event: ResponseReceived) -> None:
        response = event.response
        if response.status in (401, 407) and not self._challenged:
            self._challenged = True
            self._challenge = self._usable_challenge(response)
            self._nonce_count = 0
            authorization = self._authorization()
            if authorization is not None:
                self._send_register(self._asked, authorization)
                return
        if self._unregistered is not None:
            self._registration(False, "unregistered")
            if not self._unregistered.done():
                self._unregistered.set_result(None)
        elif 200 <= response.status < 300:
            self._registered(response)
        else:
            self._refused(response)

    def _registered(self, response: Response) -> None:
        lifetime = self.expires
        for contact in response.headers.get_all("Contact"):
            if self.endpoint.config.sent_by() in contact and "expires=" in contact:
                lifetime = self._granted(contact)
        self._again(max(lifetime / 2, 1.0))
        self._registration(True, f"registered for {lifetime} s")

    def _granted(self, contact: str) -> int:
        """The lifetime the registrar gave our Contact (its ``expires`` parameter, RFC 3261
        §10.3 step 8); one that is no number of seconds is logged and taken as asked."""
        written = contact.rsplit("expires=", 1)[1].split(";")[0].split(",")[0].strip()
        if written.isdigit():
            return int(written)
        log.warning(
            "softphone.bad_expires",
            agent=self.subscriber.number,
            contact=contact,
            taken=self.expires,
        )
        return self.expires

    def _refused(self, response: Response) -> None:
        """Not registered; a 503 with Retry-After (the registrar's rate limit) is retried."""
        detail = f"the server answered {response.status} {response.reason} to REGISTER"
        if response.status in (401, 407) and self._challenge is None:
            detail += (
                f": centrex.yaml holds no HA1 of {self.subscriber.username} for the digest "
                "algorithms the server asks (callserver passwd prints them)"
            )
        retry = response.headers.get("Retry-After")
        if response.status == 503 and retry is not None and retry.strip().isdigit():
            delay = min(max(int(retry.strip()), 1), _RETRY_MAX)
            self._again(delay)
            detail += f"; trying again in {delay} s"
        self._registration(False, detail)

    def _again(self, delay: float) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        self._refresh = self._loop.call_later(delay, self.register, self.expires)

    def _usable_challenge(self, response: Response) -> Challenge | None:
        """The first challenge whose algorithm the subscriber has an HA1 for (centrex.yaml
        holds MD5 and/or SHA-256 ones)."""
        field = "Proxy-Authenticate" if response.status == 407 else "WWW-Authenticate"
        for value in response.headers.get_all(field):
            try:
                challenge = parse_challenge(value)
            except AuthError:
                continue
            if challenge.algorithm.removesuffix("-sess") in self.subscriber.ha1:
                return challenge
        return None

    def _authorization(self) -> str | None:
        """The Authorization answering the last challenge, with the next nonce count."""
        challenge = self._challenge
        if challenge is None:
            return None
        self._nonce_count += 1
        try:
            return build_authorization_ha1(
                challenge,
                method="REGISTER",
                uri=str(self._registrar_uri()),
                username=self.subscriber.username,
                ha1=self.subscriber.ha1[challenge.algorithm.removesuffix("-sess")],
                cnonce=secrets.token_hex(8),
                nonce_count=self._nonce_count,
            )
        except AuthError:
            return None

    def _registration(self, registered: bool, detail: str) -> None:
        self.registered = registered
        log.info("softphone.registration", agent=self.subscriber.number, detail=detail)
        self._tell(RegistrationChanged(registered=registered, detail=detail))

    # -- the pump (as app.Server's) -------------------------------------------------------

    def _received(self, data: bytes, peer: Peer) -> None:
        if not _same_peer(peer, self.server):
            self.foreign += 1
            if self.foreign == 1 or self.foreign % 1000 == 0:
                log.warning(
                    "softphone.sip_foreign",
                    agent=self.subscriber.number,
                    peer=f"{peer.host}:{peer.port}",
                    dropped=self.foreign,
                )
            return
        self.endpoint.receive_datagram(data, peer, self._loop.time())
        self._pump()

    def _pump(self) -> None:
        endpoint = self.endpoint
        while True:
            for action in endpoint.datagrams_to_send():
                if isinstance(action, Transmit) and self._transport is not None:
                    self._transport.sendto(action.data, (action.peer.host, action.peer.port))
            event = endpoint.next_event()
            if event is None:
                break
            self._handle(event)
        self._arm(endpoint.get_timer())

    def _handle(self, event: SipEvent) -> None:
        if isinstance(event, ResponseReceived) and event.key == self._register_key:
            if event.response.status >= 200:
                self._register_answered(event)
            return
        if isinstance(event, TransactionTimedOut) and event.key == self._register_key:
            self._registration(False, "the server did not answer REGISTER")
            return
        self.call.handle(event)

    def _arm(self, deadline: float | None) -> None:
        if deadline == self._deadline:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._deadline = deadline
        self._timer = None if deadline is None else self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        deadline, self._timer, self._deadline = self._deadline, None, None
        self.endpoint.handle_timer(max(deadline or 0.0, self._loop.time()))
        self._pump()


def _same_peer(peer: Peer, server: Peer) -> bool:
    """Whether ``peer`` is the server's address and port (IP addresses compared as such)."""
    if peer.port != server.port:
        return False
    try:
        return ipaddress.ip_address(peer.host) == ipaddress.ip_address(server.host)
    except ValueError:
        return peer.host == server.host
