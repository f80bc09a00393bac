"""bench/rtp_load: the SIP + RTP load generator that bench/media_capacity runs in its own process.

A minimal UAC on one UDP socket (RFC 3261: INVITE with an SDP offer of PCMU and telephone-event,
ACK of every 200, BYE, 200 to the server's BYE) sets up the calls. Every offer points at one RTP
socket, so the server latches all its streams to it (RFC 4961); each call sends 20 ms of PCMU on
an absolute schedule, the calls spread over the period in 1 ms slots. ``sendmmsg``/``recvmmsg``
(ctypes) on numpy arrays move the 100 000 packets a second of 1000 calls, which one ``sendto`` or
``recvfrom`` per packet cannot on one core here. Arrival times are the kernel's (SO_TIMESTAMPNS),
taken on loopback inside the server's ``sendto``: the server's send intervals, however late we
read. The window's packets (stamp, RTP header) go to ``--record``; JSON lines mark the phases.
With ``--numbers`` call i dials the (i mod k)-th of the k numbers given (else ``media``), and
with ``--audio`` each call sends a tone of its own (200 Hz + 50 Hz x (i mod 40), -20 dBFS, a
whole number of periods in 20 ms so the one packet loops seamlessly) instead of silence.
With ``--churn N`` a call the server ends (its BYE: a queue's caller whose agent hung up) is
replaced by a new one at --rate, in the window too, up to N replacements, so --calls stay up.
With ``--linger S`` the calls stay up S seconds after the window before they are hung up, so
whoever reads the server at the window's end sees it as it was.

    .venv/bin/python bench/rtp_load.py --server 127.0.0.1:5060 --calls 100 --record /tmp/r.npy
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import re
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

HOST = "127.0.0.1"
SLOTS = 20  # the 20 ms period in 1 ms slots; call i sends in slot i % SLOTS
SLOT_NS = 1_000_000
BATCH = 512  # datagrams per recvmmsg
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_MMSGHDR = np.dtype("<u8,<u4,V4,<u8,<u8,<u8,<u8,V8,<u8")  # struct mmsghdr on 64-bit Linux
_MMSGHDR.names = ("name", "namelen", "_1", "iov", "iovlen", "control", "controllen", "_2", "len")
_IOVEC = np.dtype([("base", "<u8"), ("len", "<u8")])
_SOCKADDR_IN = np.dtype([("family", "<u2"), ("port", ">u2"), ("addr", ">u4"), ("zero", "V8")])
_HEADER = np.dtype([("b0", "u1"), ("b1", "u1"), ("seq", ">u2"), ("ts", ">u4"), ("ssrc", ">u4")])
_PACKET = np.dtype([*_HEADER.descr, ("payload", "V160")])  # 20 ms of PCMU (RFC 3551 §4.5.14)
_LIBC = ctypes.CDLL(None, use_errno=True)
_INT, _PTR, _UINT = ctypes.c_int, ctypes.c_void_p, ctypes.c_uint
_LIBC.sendmmsg.argtypes = [_INT, _PTR, _UINT, _INT]
_LIBC.recvmmsg.argtypes = [_INT, _PTR, _UINT, _INT, _PTR]
_SDP = (
    "v=0\r\no=load {n} 1 IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
)


def _pointers(base: int, index: npt.NDArray[np.intp], step: int) -> npt.NDArray[np.uint64]:
    # base + index * step, in uint64 throughout (no promotion to float)
    return np.uint64(base) + index.astype(np.uint64) * np.uint64(step)


class RtpSender:
    """One RTP stream per call index, sent a slot at a time with one ``sendmmsg`` (RFC 3550)."""

    def __init__(self, sock: socket.socket, capacity: int) -> None:
        self.fd, self.errors = sock.fileno(), 0
        self.packets = np.zeros(capacity, _PACKET)
        self.packets["b0"] = 0x80  # RFC 3550 §5.1: version 2; PT 0 is PCMU
        self.packets["payload"] = b"\xff" * 160  # PCMU silence
        self.packets["ssrc"] = np.arange(capacity, dtype=np.uint32) * 2654435761 + 1
        self.addrs = np.zeros(capacity, _SOCKADDR_IN)
        self.iov = np.zeros(capacity, _IOVEC)
        rows = np.arange(capacity)
        self.iov["base"], self.iov["len"] = _pointers(self.packets.ctypes.data, rows, 172), 172
        self.per_slot = capacity // SLOTS + 1
        self.msgs = np.zeros(self.per_slot * SLOTS, _MMSGHDR)
        self.msgs["namelen"], self.msgs["iovlen"] = 16, 1
        self.up = np.zeros(capacity, bool)
        self.active: list[npt.NDArray[np.intp]] = [np.zeros(0, np.intp) for _ in range(SLOTS)]

    def route(self, index: int, remote: tuple[str, int] | None) -> None:
        """Send stream ``index`` to ``remote`` from the next slot on; None stops it."""
        if remote is not None:
            host = int.from_bytes(socket.inet_aton(remote[0]), "big")
            self.addrs[index] = (socket.AF_INET, remote[1], host, b"")
        self.up[index] = remote is not None
        slot = index % SLOTS
        members = np.arange(slot, len(self.up), SLOTS)[self.up[slot::SLOTS]]
        rows = slot * self.per_slot + np.arange(len(members))
        self.msgs["name"][rows] = _pointers(self.addrs.ctypes.data, members, 16)
        self.msgs["iov"][rows] = _pointers(self.iov.ctypes.data, members, 16)
        self.active[slot] = members

    def send_slot(self, slot: int) -> None:
        """Advance the slot's streams by one packet (seq + 1, timestamp + 160) and send them."""
        members = self.active[slot]
        count, sent = len(members), 0
        self.packets["seq"][members] += 1
        self.packets["ts"][members] += 160
        base = self.msgs.ctypes.data + slot * self.per_slot * _MMSGHDR.itemsize
        while sent < count:
            done = _LIBC.sendmmsg(self.fd, base + sent * 64, count - sent, 0)
            if done <= 0:  # skip the datagram that failed
                self.errors, done = self.errors + 1, 1
            sent += done

    def tones(self) -> None:
        """Stream i sends 200 + 50 * (i mod 40) Hz at -20 dBFS: whole periods in 160 samples."""
        from callserver.media import g711  # the server's own encoder, ITU-T G.711 µ-law

        hertz = 200 + 50 * (np.arange(len(self.packets)) % 40)
        wave = 3277 * np.sin(2 * np.pi * hertz[:, None] * np.arange(160) / 8000)
        encoded = g711.encode("PCMU", np.round(wave).astype(np.int16))
        self.packets["payload"] = np.frombuffer(encoded, "V160")

    def streams(self) -> int:
        """How many streams are sending."""
        return int(self.up.sum())


class RtpReceiver:
    """Reads every waiting datagram with ``recvmmsg``; in the window keeps stamp, seq and SSRC."""

    def __init__(self, sock: socket.socket) -> None:
        self.fd = sock.fileno()
        self.data = np.zeros((BATCH, 192), np.uint8)  # longer datagrams are cut: headers suffice
        self.control = np.zeros((BATCH, 64), np.uint8)
        rows = np.arange(BATCH)
        self.iov = np.zeros(BATCH, _IOVEC)
        self.iov["base"], self.iov["len"] = _pointers(self.data.ctypes.data, rows, 192), 192
        self.msgs = np.zeros(BATCH, _MMSGHDR)
        self.msgs["iov"], self.msgs["iovlen"] = _pointers(self.iov.ctypes.data, rows, 16), 1
        self.msgs["control"] = _pointers(self.control.ctypes.data, rows, 64)
        self.recording = False
        self.chunks: list[npt.NDArray[np.uint8]] = []

    def receive(self) -> None:
        """Drain the socket (MSG_DONTWAIT) in batches."""
        while True:
            self.msgs["controllen"] = 64  # the kernel writes back the length it used
            count = _LIBC.recvmmsg(self.fd, self.msgs.ctypes.data, BATCH, socket.MSG_DONTWAIT, None)
            if count <= 0:
                return
            if self.recording:
                self._keep(count)
            if count < BATCH:
                return

    def _keep(self, count: int) -> None:
        if np.any(self.msgs["controllen"][:count] < 32):
            raise RuntimeError("a datagram came without its SO_TIMESTAMPNS receive stamp")
        # RECORD: SCM_TIMESTAMPNS's struct timespec (after the 16-byte cmsghdr), RTP header
        self.chunks.append(np.hstack((self.control[:count, 16:32], self.data[:count, :12])))


@dataclass(slots=True, eq=False)
class Call:
    """One call of the load: dialog identifiers, state, the request being retransmitted."""

    index: int
    call_id: str
    state: str = "inviting"  # inviting -> up -> bye -> ended | failed
    sent_at: float = 0.0
    tries: int = 0
    request: bytes = b""
    to: str = "<sip:media@127.0.0.1>"
    contact: str = ""
    uri: str = ""  # the INVITE's Request-URI (RFC 3261 §17.1.1.3: a non-2xx ACK's too)


class Load:
    """The generator's SIP UAC and its two RTP halves; see the module docstring."""

    def __init__(
        self,
        server: tuple[str, int],
        target: int,
        numbers: tuple[str, ...] = ("media",),
        churn: int = 0,
    ) -> None:
        self.server, self.target, self.numbers, self.churn = server, target, numbers, churn
        self.sip = _udp_socket(0)
        self.sip_port = self.sip.getsockname()[1]
        self.rtp, self.rtcp = _rtp_pair()
        self.rtp_port = self.rtp.getsockname()[1]
        self.capacity = 2 * target + churn  # failed calls (and with churn ended ones) replaced
        self.sender = RtpSender(self.rtp, self.capacity + SLOTS)
        self.receiver = RtpReceiver(self.rtp)
        self.calls: list[Call] = []
        self.by_id: dict[str, Call] = {}
        self.pending: set[Call] = set()  # INVITEs and BYEs without a final response
        self.failed: dict[str, int] = {}
        self.server_byes = self.slot = 0
        self.next_slot = time.monotonic_ns()
        self.poller = select.epoll()
        self.poller.register(self.sip.fileno(), select.EPOLLIN)  # RTP: read once a slot

    def invite(self, now: float) -> None:
        """Start the next call (RFC 3261 §13.2.1: an INVITE with the SDP offer)."""
        n = len(self.calls)
        call = Call(n, f"load-{os.getpid()}-{n}")
        number = self.numbers[n % len(self.numbers)]
        call.uri, call.to = (
            f"sip:{number}@{self.server[0]}:{self.server[1]}",
            f"<sip:{number}@{HOST}>",
        )
        body = _SDP.format(n=n, host=HOST, port=self.rtp_port).encode()
        head = self._head("INVITE", call.uri, call, 1, "")
        call.request = (
            f"{head}Contact: <sip:load@{HOST}:{self.sip_port}>\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.calls.append(call)
        self.by_id[call.call_id] = call
        self._send_request(call, now)

    def _head(self, method: str, uri: str, call: Call, cseq: int, branch: str) -> str:
        return (
            f"{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {HOST}:{self.sip_port};"
            f"branch=z9hG4bK-{call.call_id}-{cseq}{branch};rport\r\nMax-Forwards: 70\r\n"
            f"From: <sip:load@{HOST}>;tag=t{call.index}\r\nTo: {call.to}\r\n"
            f"Call-ID: {call.call_id}\r\nCSeq: {cseq} {method}\r\n"
        )

    def _send_request(self, call: Call, now: float) -> None:
        call.sent_at, call.tries = now, call.tries + 1
        self.pending.add(call)
        self.sip.sendto(call.request, self.server)

    def bye(self, call: Call, now: float) -> None:
        """End an established call (RFC 3261 §15.1.1), retransmitted until answered."""
        self.sender.route(call.index, None)
        call.state, call.tries = "bye", 0
        head = self._head("BYE", call.contact, call, 2, "")
        call.request = f"{head}Content-Length: 0\r\n\r\n".encode()
        self._send_request(call, now)

    def receive_sip(self, now: float) -> None:
        """Read every waiting SIP datagram: responses to our requests, BYEs from the server."""
        while True:
            try:
                data = self.sip.recv(65535)
            except BlockingIOError:
                return
            start, headers, body = _parse(data)
            call = self.by_id.get(headers.get("call-id", ""))
            if start.startswith("SIP/2.0 ") and call is not None:
                self._on_response(call, int(start[8:11]), headers, body, now)
            elif start.startswith("BYE "):
                self._on_bye(call, headers)

    def _on_response(
        self, call: Call, status: int, headers: dict[str, str], body: bytes, now: float
    ) -> None:
        method = headers.get("cseq", "").partition(" ")[2].strip()
        if status < 200:
            if method == "INVITE" and call.state == "inviting":
                call.sent_at = now + 30.0  # RFC 3261 §17.1.1.2: a provisional stops Timer A
            return
        if (method == "INVITE") == (call.state == "inviting"):
            self.pending.discard(call)  # the final response to the request in progress
        if method != "INVITE":
            call.state = "ended" if method == "BYE" else call.state
            return
        call.to = headers.get("to", call.to)
        if status >= 300:
            self._ack(call, call.uri, "")  # §17.1.1.3: in the INVITE's transaction
            if call.state == "inviting":
                call.state = "failed"
                self.failed[str(status)] = self.failed.get(str(status), 0) + 1
            return
        call.contact = _uri(headers.get("contact", "")) or call.contact
        self._ack(call, call.contact, "-ack")  # §13.2.2.4: every 2xx, retransmits too
        if call.state == "inviting":
            call.state = "up"
            self.sender.route(call.index, _sdp_address(body))

    def _ack(self, call: Call, uri: str, branch: str) -> None:
        head = self._head("ACK", uri, call, 1, branch)
        self.sip.sendto(f"{head}Content-Length: 0\r\n\r\n".encode(), self.server)

    def _on_bye(self, call: Call | None, headers: dict[str, str]) -> None:
        names = ("Via", "From", "To", "Call-ID", "CSeq")  # RFC 3261 §8.2.6.2: copied
        copied = "".join(f"{name}: {headers.get(name.lower(), '')}\r\n" for name in names)
        self.sip.sendto(
            f"SIP/2.0 200 OK\r\n{copied}Content-Length: 0\r\n\r\n".encode(), self.server
        )
        if call is not None and call.state in ("up", "inviting"):
            self.sender.route(call.index, None)
            call.state = "ended"
            self.server_byes += 1

    def wanted(self) -> bool:
        """Whether a new call is due: fewer than ``target`` in progress (calls the server
        ended count as gone only with ``churn``), and room for its stream."""
        started, failed = len(self.calls), sum(self.failed.values())
        ended = self.server_byes if self.churn else 0
        return started - failed - ended < self.target and started < self.capacity

    def retransmit(self, now: float) -> None:
        """Resend unanswered INVITEs and BYEs from T1, doubling up to 4 s (RFC 3261 §17.1.1.2)."""
        for call in list(self.pending):
            if now - call.sent_at < 0.5 * 2 ** min(call.tries - 1, 3):
                continue
            if call.tries < 7:
                self._send_request(call, now)
                continue
            self.pending.discard(call)
            call.state = "failed" if call.state == "inviting" else "ended"
            self.failed["timeout"] = self.failed.get("timeout", 0) + 1

    def poll(self, deadline_ns: int) -> None:
        """Wait for a datagram or the next RTP slot, then serve the sockets and the due slots."""
        wait = max(0, min(deadline_ns, self.next_slot) - time.monotonic_ns()) / 1e9
        ready = self.poller.poll(wait)
        self._send_due(time.monotonic_ns())
        if ready:
            self.receive_sip(time.monotonic())

    def _send_due(self, now_ns: int) -> None:
        self.next_slot = max(self.next_slot, now_ns - 20 * SLOT_NS)  # a stall: no burst
        if self.next_slot <= now_ns:
            self.receiver.receive()  # kernel-stamped, so reading late changes no figure
        while self.next_slot <= now_ns:
            self.sender.send_slot(self.slot % SLOTS)
            self.slot += 1
            self.next_slot += SLOT_NS


def _udp_socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, port))
    sock.setblocking(False)
    return sock


def _rtp_pair() -> tuple[socket.socket, socket.socket]:
    """An even RTP port with RTCP on + 1 (RFC 3550 §11), a large receive buffer, kernel stamps."""
    for _ in range(100):
        rtp = _udp_socket(0)
        with contextlib.suppress(OSError):
            rtcp = _udp_socket(rtp.getsockname()[1] + 1)  # never read: the kernel drops RTCP
            if rtp.getsockname()[1] % 2 == 0:
                with contextlib.suppress(OSError):  # beyond rmem_max needs CAP_NET_ADMIN
                    rtp.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 << 20)
                rtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                return rtp, rtcp
            rtcp.close()
        rtp.close()
    raise RuntimeError("no free even RTP port with a free RTCP port above it")


def _parse(data: bytes) -> tuple[str, dict[str, str], bytes]:
    """Start line, the first value of each header field (lower-case names), body."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    compact = {"i": "call-id", "t": "to", "f": "from", "v": "via", "m": "contact"}
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        headers.setdefault(compact.get(name, name), value.strip())
    return lines[0], headers, body


def _uri(contact: str) -> str:
    start = contact.find("<")
    return contact[start + 1 : contact.find(">", start)] if start >= 0 else contact.split(";")[0]


def _sdp_address(sdp: bytes) -> tuple[str, int]:
    """The c= address and m=audio port of an SDP answer (RFC 4566 §5.7, §5.14)."""
    host, port = re.search(rb"c=IN IP4 (\S+)", sdp), re.search(rb"m=audio (\d+)", sdp)
    return (host[1].decode() if host else HOST), (int(port[1]) if port else 0)


def _emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _run(load: Load, seconds: float, done: Callable[[], bool], rate: float = 0.0) -> None:
    """Serve the sockets for up to ``seconds`` or until ``done()``; start calls at ``rate``/s."""
    deadline, next_check = time.monotonic() + seconds, 0.0
    next_invite = time.monotonic() if rate else deadline
    while time.monotonic() < deadline and not done():
        now = time.monotonic()
        if now >= next_invite and load.wanted():
            load.invite(now)
            next_invite += 1 / rate
        elif now >= next_invite:
            next_invite = now + 1 / rate  # none wanted: look again then, no burst saved up
        if now >= next_check:
            load.retransmit(now)
            next_check = now + 0.05
        load.poll(min(int(next_invite * 1e9), time.monotonic_ns() + 10_000_000))


def main() -> int:
    """Ramp up, settle, measure, hang up; print the JSON lines described in the module docs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=f"{HOST}:5060", help="the server's SIP HOST:PORT")
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0, help="new calls per second")
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--record", default="arrivals.npy", help="where the window's arrivals go")
    parser.add_argument("--numbers", default="media", help="comma-separated numbers to dial")
    parser.add_argument("--audio", action="store_true", help="a tone per call, not silence")
    parser.add_argument("--churn", type=int, default=0, help="replace up to N ended calls")
    parser.add_argument("--linger", type=float, default=0.0, help="s up after the window")
    args = parser.parse_args()
    host, _, port = args.server.rpartition(":")
    load = Load((host, int(port)), args.calls, tuple(args.numbers.split(",")), args.churn)
    if args.audio:
        load.sender.tones()
    _run(load, args.calls / args.rate + 30, lambda: load.sender.streams() >= args.calls, args.rate)
    _emit("calls_up", calls=load.sender.streams(), attempted=len(load.calls), failed=load.failed)
    rate = args.rate if args.churn else 0.0  # ended calls replaced throughout
    _run(load, args.settle, lambda: False, rate)
    calls_up, load.receiver.recording = load.sender.streams(), True
    wall = time.clock_gettime_ns(time.CLOCK_REALTIME)  # the clock of the kernel's stamps
    _emit("window_start", wall_ns=wall, calls=calls_up, rtp_port=load.rtp_port)
    byes = load.server_byes
    _run(load, args.duration, lambda: False, rate)
    load.receiver.recording = False
    wall = time.clock_gettime_ns(time.CLOCK_REALTIME)
    _emit("window_end", wall_ns=wall, ended=load.server_byes - byes)
    np.save(args.record, np.concatenate(load.receiver.chunks or [np.zeros((0, 28), np.uint8)]))
    _run(load, args.linger, lambda: False)
    now = time.monotonic()
    for call in [c for c in load.calls if c.state == "up"]:
        load.bye(call, now)
    _run(load, 15, lambda: not load.pending)
    ended = sum(c.state == "ended" for c in load.calls)
    _emit("result", calls_up=calls_up, ended=ended, failed=load.failed, byes=load.server_byes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
