"""bench/phone_call_path: CPU per call to a registered Centrex phone, in one process, without
SIP sockets.

bench/register_path's phones register (their contact 127.0.0.1:6000), then each call is fed
as datagrams into ``Server.datagram_received``: a trunk's INVITE to a phone's number, the
phone's 200 to the INVITE the server sends it (with an SDP answer), the caller's ACK and BYE,
the phone's 200 to the server's BYE: two dialogs, two RTP streams (real sockets, as in the
server), the bridge, two CDRs. The loop turns where a server's would (the call's task rings the
phone; the leg's teardown). It prints the best of --rounds rounds in µs of CPU per call, and
with --profile cProfile's top functions: the figure bench/register's live calls to phones
measure from outside, without SIPp, the kernel's sockets and the timers.

    .venv/bin/python bench/phone_call_path.py --phones 200 --rounds 3
    .venv/bin/python bench/phone_call_path.py --phones 200 --profile
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from register import write_phones
from register_path import Driver, _credentials, _server

from callserver.process.gctuning import tune_gc
from callserver.sip.events import Peer

CALLER = Peer("udp", "127.0.0.1", 7000)
PHONE = Peer("udp", "127.0.0.1", 6000)
SDP = (
    "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
INVITE = (
    "INVITE sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-c{n}\r\n"
    "From: <sip:caller@127.0.0.1:7000>;tag=c{n}\r\nTo: <sip:{number}@127.0.0.1:5060>\r\n"
    "Call-ID: call-{n}@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:caller@127.0.0.1:7000>\r\n"
    "Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {length}\r\n\r\n{sdp}"
)
IN_DIALOG = (
    "{method} sip:{number}@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:7000;branch=z9hG4bK-c{n}-{seq}\r\n"
    "From: <sip:caller@127.0.0.1:7000>;tag=c{n}\r\nTo: <sip:{number}@127.0.0.1:5060>;tag={tag}\r\n"
    "Call-ID: call-{n}@127.0.0.1\r\nCSeq: {seq} {method}\r\nMax-Forwards: 70\r\n"
    "Content-Length: 0\r\n\r\n"
)


def _header(message: bytes, name: str) -> str:
    head = message.split(b"\r\n\r\n", 1)[0].decode()
    prefix = f"{name.lower()}:"
    return next(
        line[len(prefix) :].strip()
        for line in head.split("\r\n")
        if line.lower().startswith(prefix)
    )


def _answer(request: bytes, status: str, body: str = "") -> bytes:
    """The phone's response to ``request``: its Via, From, Call-ID and CSeq, To with a tag."""
    to = _header(request, "To")
    to = to if ";tag=" in to else f"{to};tag=phone"
    fields = "".join(
        f"{name}: {_header(request, name)}\r\n" for name in ("Via", "From", "Call-ID", "CSeq")
    )
    kind = "Content-Type: application/sdp\r\n" if body else ""
    return (
        f"SIP/2.0 {status}\r\n{fields}To: {to}\r\nContact: <sip:phone@127.0.0.1:6000>\r\n"
        f"{kind}Content-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


class Calls:
    """Calls from a trunk to the registered phones, fed by hand."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self.server, self.sink = driver.server, driver.sink

    def _feed(self, data: bytes, peer: Peer) -> list[bytes]:
        self.sink.sent.clear()
        start = time.process_time()
        self.server.datagram_received(data, peer)
        self.driver.cpu += time.process_time() - start
        return list(self.sink.sent)

    async def _turn(self) -> list[bytes]:
        self.sink.sent.clear()
        start = time.process_time()
        for _ in range(3):
            await asyncio.sleep(0)
        self.driver.cpu += time.process_time() - start
        return list(self.sink.sent)

    async def call(self, number: str, n: int) -> None:
        """One call: INVITE, the phone rung and answering, ACK, the caller's BYE."""
        sdp = SDP.format(port=40000 + 2 * (n % 1000))
        self._feed(INVITE.format(number=number, n=n, sdp=sdp, length=len(sdp)).encode(), CALLER)
        sent = await self._turn()
        ring = next(d for d in sent if d.startswith(b"INVITE "))
        self._feed(_answer(ring, "200 OK", SDP.format(port=30000)), PHONE)
        sent = self.sink.sent + await self._turn()
        ok = next(d for d in sent if d.startswith(b"SIP/2.0 200") and b"INVITE" in d)
        tag = _header(ok, "To").split(";tag=", 1)[1]
        fields = {"number": number, "n": n, "tag": tag}
        self._feed(IN_DIALOG.format(method="ACK", seq=1, **fields).encode(), CALLER)
        bye = self._feed(IN_DIALOG.format(method="BYE", seq=2, **fields).encode(), CALLER)
        bye += await self._turn()
        to_phone = next(d for d in bye if d.startswith(b"BYE "))
        self._feed(_answer(to_phone, "200 OK"), PHONE)
        await self._turn()


async def _measure(args: argparse.Namespace, directory: Path) -> None:
    phones = write_phones(directory, args.phones)
    credentials = _credentials(phones)
    server, sink = await _server(directory)
    tune_gc()
    driver = Driver(server, sink, phones)
    for user, password in credentials:
        await driver.register(user, password, 0)
    calls = Calls(driver)
    profile = cProfile.Profile() if args.profile else None
    best, n = float("inf"), 0
    for _ in range(args.rounds):
        before = driver.cpu
        if profile is not None:
            profile.enable()
        for user, _password in credentials:
            n += 1
            await calls.call(user, n)
        if profile is not None:
            profile.disable()
        best = min(best, 1e6 * (driver.cpu - before) / len(credentials))
    rounds = args.rounds
    print(f"phone call path: {best:.0f} us CPU per call to a registered phone (best of {rounds})")
    if profile is not None:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)
    await server.close()


def main() -> None:
    """Print the best round; with --profile, cProfile's top."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phones", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--sort", default="tottime", help="cProfile's order (--profile)")
    parser.add_argument("--top", type=int, default=25, help="functions shown (--profile)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        asyncio.run(_measure(args, Path(directory)))


if __name__ == "__main__":
    main()
