"""bench/parse_bench: microseconds per ``parse_message`` for a typical INVITE and a 200 OK.

Each figure is the best of several timed rounds (the least disturbed by other processes), in
process CPU time. A calibration line times one ``str.partition`` so figures from different
machines can be compared: the parse budget is "well under 50 us" on a machine where that
call reads under 70 ns.

    .venv/bin/python bench/parse_bench.py [--rounds 15] [--number 2000]
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from callserver.sip.parser import parse_message

SDP = (
    b"v=0\r\n"
    b"o=- 20518 0 IN IP4 192.0.2.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 40000 RTP/AVP 8 0 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:+38733123456@trunk.example.com;user=phone SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK74bf9a1c2e;rport\r\n"
    "Max-Forwards: 70\r\n"
    'From: "Alice" <sip:+38761222333@pbx.example.net;user=phone>;tag=9fxced76sl\r\n'
    "To: <sip:+38733123456@trunk.example.com;user=phone>\r\n"
    "Call-ID: 3848276298220188511@pbx.example.net\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.0.2.10:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE\r\n"
    "Supported: timer, replaces\r\n"
    "User-Agent: ExamplePBX 1.0\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n"
).encode() + SDP

OK_200 = (
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;received=192.0.2.1;rport=5060\r\n"
    'From: "Alice" <sip:+38761222333@pbx.example.net;user=phone>;tag=9fxced76sl\r\n'
    "To: <sip:+38733123456@trunk.example.com;user=phone>;tag=a6c85cf\r\n"
    "Call-ID: 3848276298220188511@pbx.example.net\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:ivr@192.0.2.1:5060>\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n"
).encode() + SDP


def best_us(func: Callable[[], object], rounds: int, number: int) -> float:
    """Best per-call time of ``func`` over ``rounds`` rounds of ``number`` calls, in us."""
    times = timeit.repeat(func, number=number, repeat=rounds, timer=time.process_time)
    return min(times) / number * 1e6


def main() -> None:
    """Print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--number", type=int, default=2000)
    args = parser.parse_args()
    calibration = best_us(lambda: "Call-ID: x".partition(":"), args.rounds, args.number * 10)
    print(f"calibration  str.partition  {calibration * 1000:8.0f} ns")
    for name, data in (("INVITE", INVITE), ("200 OK", OK_200)):
        parse_message(data)  # fail loudly before timing if the sample does not parse
        micros = best_us(partial(parse_message, data), args.rounds, args.number)
        print(f"{name:7} {len(data):5d} octets  {micros:8.1f} us/parse")


if __name__ == "__main__":
    main()
