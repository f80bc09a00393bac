"""An in-process server with two customers' trunks and Centrex groups, its admin API on a free
port, and the requests the state resources' tests send it (calls, REGISTERs, HTTP)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from callserver.admin.server import AdminServer, open_admin
from callserver.app import Server
from callserver.sip.auth import build_authorization, parse_challenge
from callserver.sip.events import Peer
from tests.admin.in_process import PLANS, StandInSocket, in_process_server
from tests.admin.tokens import OPERATOR, TOKEN_SETTINGS

TRUNKS = """
customers:
  acme: {channels: 3, agents: 2, barring: [premium]}
  globex: {channels: 5}
trunks:
  acme-pbx: {match: [127.0.0.1], customer: acme, channels: 2, cps: 50}
  globex-pbx:
    digest: {username: globex-7, password: "globex-trunk-password"}
    customer: globex
    channels: 4
  carrier-in: {match: ["192.0.2.0/24:5060", "[2001:db8::]/32:5061"]}
numbers:
  "+38733100299": {channels: 1}
  "+38761999999": {channels: 3}
routes:
  pstn: {host: 127.0.0.1, port: 5090}
  carrier:
    host: pbx.test
    prefixes: ["+"]
    digest: {username: callserver, password: "route-password"}
default_route: pstn
"""
# Passwords: phone-201-secret (38733100201), phone-202-secret, phone-203-secret.
CENTREX = """
groups:
  acme-office:
    customer: acme
    numbers: ["+387 33 100 200-299"]
    channels: 4
    extensions: {digits: 3}
    services: {locks: [forward_unreachable]}
    subscribers:
      "+387 33 100 201":
        name: Reception
        username: "38733100201"
        ha1_md5: 81e5a519d3e1b0a11f696813c26526cb
      "+387 33 100 202":
        username: "38733100202"
        ha1_md5: 25e77be72833cad21fb64c69ccae5150
  globex-office:
    customer: globex
    numbers: ["+387 33 200 200-299"]
    extensions: {digits: 3}
    subscribers:
      "+387 33 200 201":
        username: "38733100203"
        ha1_md5: f36506b01d34bbbd9be0e45b079b166a
"""
SIPP = Peer("udp", "127.0.0.1", 6000)
INVITE = (
    "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{call}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:6000>;tag={call}\r\n"
    "To: service <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: {call}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:6000\r\n"
    "Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\n"
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
REGISTER = (
    "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK-reg-{cseq}\r\n"
    "From: <sip:{aor}@127.0.0.1>;tag=r1\r\nTo: <sip:{aor}@127.0.0.1>\r\n"
    "Call-ID: reg-{aor}@{host}\r\nCSeq: {cseq} REGISTER\r\n"
    "Contact: <sip:{user}@{host}:{port}>\r\nExpires: 600\r\nUser-Agent: Yealink T46U\r\n"
    "{auth}Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


@dataclass
class Provisioned:
    """The server, its stand-in socket, its admin API and an HTTP session to it."""

    server: Server
    socket: StandInSocket
    admin: AdminServer
    session: aiohttp.ClientSession

    async def request(
        self, method: str, path: str, token: str | None = OPERATOR, body: Any = None
    ) -> tuple[int, Any]:
        """The status and JSON answer of ``method path`` with ``token``."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body))
        url = f"http://127.0.0.1:{self.admin.port}{path}"
        async with self.session.request(method, url, headers=headers, data=data) as response:
            return response.status, json.loads(await response.read())

    async def call(self, call: str) -> bytes:
        """An INVITE from the acme PBX's address (127.0.0.1); the first final answer."""
        sent = len(self.socket.sent)
        self.server.datagram_received(INVITE.format(call=call).encode(), SIPP)
        await asyncio.sleep(0)  # the plan's task answers
        return next(
            d for d in self.socket.sent[sent:] if d.startswith(b"SIP/2.0 ") and d[8:9] != b"1"
        )

    def register(self, aor: str, user: str, password: str, port: int = 5062) -> bytes:
        """A phone's REGISTER answered by a digest challenge, then sent again with its
        credentials (RFC 3261 §22.2); the final answer."""
        phone = Peer("udp", "127.0.0.1", port)
        fields = {"aor": aor, "user": user, "host": "127.0.0.1", "port": port}
        first = REGISTER.format(cseq=1, auth="", **fields).encode()
        self.server.datagram_received(first, phone)
        challenge = self.socket.sent[-1].decode()
        value = next(
            line.split(":", 1)[1].strip()
            for line in challenge.split("\r\n")
            if line.startswith("WWW-Authenticate:") and "MD5" in line
        )
        creds = build_authorization(
            parse_challenge(value),
            method="REGISTER",
            uri="sip:127.0.0.1:5060",
            username=user,
            password=password,
            cnonce="c0ffee",
        )
        again = REGISTER.format(cseq=2, auth=f"Authorization: {creds}\r\n", **fields)
        self.server.datagram_received(again.encode(), phone)
        return self.socket.sent[-1]


@asynccontextmanager
async def provisioned(
    tmp_path: Path, settings: dict[str, Any] | None = None
) -> AsyncIterator[Provisioned]:
    """The server of the module docstring, its phones' stores open in ``tmp_path``."""
    (tmp_path / "trunks.yaml").write_text(TRUNKS)
    (tmp_path / "centrex.yaml").write_text(CENTREX)
    overrides = {
        "trunks": tmp_path / "trunks.yaml",
        "centrex": tmp_path / "centrex.yaml",
        "admin": {"listen": "127.0.0.1:0", "tokens": TOKEN_SETTINGS},
        **(settings or {}),
    }
    server, socket = in_process_server(tmp_path, PLANS, overrides)
    (tmp_path / "cdr").mkdir()
    server.phones.open(tmp_path / "cdr", asyncio.Event()).close()  # not the purges
    admin = await open_admin(server)
    assert admin is not None
    try:
        async with aiohttp.ClientSession() as session:
            yield Provisioned(server, socket, admin, session)
    finally:
        await admin.close()
        await server.phones.close()
