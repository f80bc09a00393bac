"""bench/call_path: CPU per call through the whole stack, in one process, without sockets.

Feeds SIPp-shaped INVITE, ACK and BYE datagrams straight into ``Server.datagram_received``
(parse, transactions, dialogs, UAS checks, SDP answer, calls, the shipped
dialplans/default.yaml's task: the answer, the greeting started, the plan cancelled by the BYE)
with sends going nowhere, and prints the best of five rounds in microseconds of CPU per
INVITE..BYE call. The loop turns once after the INVITE (the plan's task sends the 200 OK) and
once after the BYE (the task's cancellation), as a server's loop turns after each datagram.
The difference to bench/sip_cps's per-call CPU is what sockets, the event loop's I/O and
timers cost.

    .venv/bin/python bench/call_path.py --calls 2000
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from harness import StandInSocket

from callserver.app import Server
from callserver.config.settings import load_settings
from callserver.process.logs import configure_logging
from callserver.sip.events import Peer

INVITE = (
    "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{n}-1-0\r\n"
    "From: sipp <sip:sipp@127.0.0.1:6000>;tag={n}SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:6000\r\n"
    "Max-Forwards: 70\r\nSubject: Performance Test\r\nContent-Type: application/sdp\r\n"
    "Content-Length:   129\r\n\r\n"
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
PLANS = Path(__file__).resolve().parents[1] / "dialplans"
IN_DIALOG = (
    "{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{n}-1-{seq}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:6000>;tag={n}SIPpTag001\r\n"
    "To: service <sip:service@127.0.0.1:5060>;tag={tag}\r\n"
    "Call-ID: {n}-1@127.0.0.1\r\nCSeq: {seq} {method}\r\nContact: sip:sipp@127.0.0.1:6000\r\n"
    "Max-Forwards: 70\r\nSubject: Performance Test\r\nContent-Length: 0\r\n\r\n"
)


def _to_tag(ok: bytes) -> str:
    to_line = ok.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
    return to_line.split(b";tag=", 1)[1].decode()


async def _one_call(server: Server, sink: StandInSocket, n: int, peer: Peer) -> None:
    sink.sent.clear()
    server.datagram_received(INVITE.format(n=n).encode(), peer)
    await asyncio.sleep(0)  # a turn of the loop: the plan's task, started first, answers
    tag = _to_tag(next(d for d in sink.sent if d.startswith(b"SIP/2.0 200")))
    server.datagram_received(IN_DIALOG.format(method="ACK", n=n, seq=1, tag=tag).encode(), peer)
    server.datagram_received(IN_DIALOG.format(method="BYE", n=n, seq=2, tag=tag).encode(), peer)
    await asyncio.sleep(0)  # another: the plan's task, cancelled by the BYE, ends


async def _measure(calls: int, plans: Path) -> float:
    overrides = {"sip": {"listen": ["udp:127.0.0.1:5060"]}, "dialplans": plans}
    settings = load_settings(None, overrides)
    configure_logging("warning", "json")
    server = Server(settings)
    server.routing.load()
    sink = StandInSocket()
    server.sockets.udp.append(sink)  # type: ignore[arg-type]
    peer = Peer("udp", "127.0.0.1", 6000)
    best = float("inf")
    for round_ in range(5):
        start = time.process_time()
        for n in range(round_ * calls, (round_ + 1) * calls):
            await _one_call(server, sink, n, peer)
        best = min(best, time.process_time() - start)
    return 1e6 * best / calls


def main() -> None:
    """Print the best of five rounds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--dialplans", type=Path, default=PLANS, help="default: the shipped ones (default.yaml)"
    )
    args = parser.parse_args()
    measured = _measure(args.calls, args.dialplans)
    try:
        import uvloop
    except ImportError:
        per_call = asyncio.run(measured)
    else:
        per_call = uvloop.run(measured)
    print(f"call path: {per_call:.0f} us CPU per INVITE..BYE call (best of 5 x {args.calls})")


if __name__ == "__main__":
    main()
