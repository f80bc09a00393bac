"""Tests for batched RTP socket I/O (callserver.media.rtpio) on real UDP sockets.

Every test runs against both implementations: the compiled extension (``_rtpio``, built by
``make install``) and ``PythonRtpSockets``. Sockets are bound to free ports on 127.0.0.1 (and
::1 for IPv6); waits are bounded, and nothing is asserted about speed.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from callserver.media import rtpio
from callserver.media.latch import Address
from callserver.media.rtpio import (
    DATAGRAM_BYTES,
    DATAGRAMS_PER_SOCKET,
    PythonRtpSockets,
    RtpSockets,
)

HOST = "127.0.0.1"
WAIT = 5.0
IP_RECVERR = getattr(socket, "IP_RECVERR", 11)  # Linux; named in the socket module from 3.12


def _compiled() -> RtpSockets:
    if not rtpio.compiled():
        pytest.fail("the compiled extension callserver.media._rtpio is missing: run 'make install'")
    from callserver.media import _rtpio

    return _rtpio.RtpSockets()


@pytest.fixture(params=["compiled", "python"])
def sockets(request: pytest.FixtureRequest) -> Iterator[RtpSockets]:
    """An empty socket set of each implementation; closed afterwards."""
    made = _compiled() if request.param == "compiled" else PythonRtpSockets()
    yield made
    made.close()


@pytest.fixture
def udp() -> Iterator[Callable[..., socket.socket]]:
    """Makes non-blocking UDP sockets on free ports, all closed afterwards."""
    made: list[socket.socket] = []

    def make(host: str = HOST) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.bind((host, 0))
        sock.setblocking(False)
        made.append(sock)
        return sock

    yield make
    for sock in made:
        sock.close()


def wait_readable(sockets: RtpSockets) -> None:
    """Block until the set's descriptor says a datagram waits (bounded)."""
    readable, _, _ = select.select([sockets.fileno()], [], [], WAIT)
    assert readable, "no datagram became readable"


def drain(sockets: RtpSockets, count: int) -> list[tuple[int, bytes, Address]]:
    """Receive until ``count`` datagrams have come (bounded)."""
    got: list[tuple[int, bytes, Address]] = []
    deadline = time.monotonic() + WAIT
    while len(got) < count and time.monotonic() < deadline:
        if select.select([sockets.fileno()], [], [], 0.05)[0]:
            datagrams, errors = sockets.receive()
            assert errors == []
            got += datagrams
    return got


def recv_all(sock: socket.socket, count: int) -> list[tuple[bytes, Address]]:
    """``count`` datagrams read from a plain socket (bounded)."""
    got = []
    for _ in range(count):
        assert select.select([sock], [], [], WAIT)[0], "a datagram did not arrive"
        got.append(sock.recvfrom(4096))
    return got


def test_send_goes_from_each_keys_socket_in_order(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """Each datagram of a batch leaves from its key's socket, in the batch's order."""
    peer = udp()
    ours = {key: udp() for key in (7, 8, 9)}
    for key, sock in ours.items():
        sockets.register(sock, key)
    order = [7, 9, 8, 7]
    batch = [(key, f"packet {i}".encode(), peer.getsockname()) for i, key in enumerate(order)]
    assert sockets.send(batch) == []
    got = recv_all(peer, 4)
    assert [data for data, _ in got] == [b"packet 0", b"packet 1", b"packet 2", b"packet 3"]
    assert [source for _, source in got] == [ours[key].getsockname() for key in (7, 9, 8, 7)]


def test_each_datagram_goes_to_its_own_destination(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """One socket sending to two peers in turn, through one tuple object or equal new ones,
    reaches each peer with exactly the datagrams meant for it."""
    ours, a, b = udp(), udp(), udp()
    sockets.register(ours, 1)
    to_a, to_b = a.getsockname(), b.getsockname()
    batch = [(1, b"a1", to_a), (1, b"a2", to_a), (1, b"b1", to_b), (1, b"a3", (*to_a,))]
    batch += [(1, b"b2", (to_b[0], to_b[1])), (1, b"b3", to_b)]
    assert sockets.send(batch) == []
    assert [data for data, _ in recv_all(a, 3)] == [b"a1", b"a2", b"a3"]
    assert [data for data, _ in recv_all(b, 3)] == [b"b1", b"b2", b"b3"]


def test_receive_returns_every_waiting_datagram_with_key_and_source(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """Datagrams waiting on several sockets come back in one receive, with key and source."""
    peer = udp()
    a, b = udp(), udp()
    sockets.register(a, 1)
    sockets.register(b, 2)
    peer.sendto(b"one", a.getsockname())
    peer.sendto(b"two", b.getsockname())
    peer.sendto(b"three", a.getsockname())
    got = drain(sockets, 3)
    assert sorted(got) == [(1, b"one", peer.getsockname()), (1, b"three", peer.getsockname()),
                           (2, b"two", peer.getsockname())]  # fmt: skip
    assert [data for key, data, _ in got if key == 1] == [b"one", b"three"]


def test_receive_never_blocks_when_nothing_waits(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """With nothing waiting (EAGAIN on every socket) receive returns two empty lists."""
    sockets.register(udp(), 1)
    assert sockets.receive() == ([], [])
    assert not select.select([sockets.fileno()], [], [], 0)[0]


def test_receive_serves_at_most_limit_sockets_and_leaves_the_rest(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """With limit 2 and five ready sockets a receive reads two; the rest wait for later calls."""
    peer = udp()
    ours = [udp() for _ in range(5)]
    for key, sock in enumerate(ours):
        sockets.register(sock, key)
        peer.sendto(bytes([key]), sock.getsockname())
    wait_readable(sockets)
    first, errors = sockets.receive(2)
    assert (len(first), errors) == (2, [])
    rest = drain(sockets, 3)
    assert sorted(key for key, _, _ in first + rest) == [0, 1, 2, 3, 4]


def test_receive_reads_a_bounded_number_per_socket(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """Ten datagrams on one socket come as DATAGRAMS_PER_SOCKET, then the rest, none lost."""
    peer, ours = udp(), udp()
    sockets.register(ours, 5)
    for i in range(10):  # on loopback each is queued before sendto returns
        peer.sendto(bytes([i]), ours.getsockname())
    wait_readable(sockets)
    first, _ = sockets.receive()
    assert len(first) == DATAGRAMS_PER_SOCKET
    rest = drain(sockets, 10 - DATAGRAMS_PER_SOCKET)
    assert [data for _, data, _ in first + rest] == [bytes([i]) for i in range(10)]


def test_a_long_datagram_is_cut_to_datagram_bytes(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """A 3000-byte datagram comes back as its first DATAGRAM_BYTES bytes, as recvfrom gives it."""
    peer, ours = udp(), udp()
    sockets.register(ours, 1)
    data = bytes(range(256)) * 12
    peer.sendto(data[:3000], ours.getsockname())
    ((key, got, _),) = drain(sockets, 1)
    assert (key, got) == (1, data[:DATAGRAM_BYTES])


def test_one_bad_datagram_fails_alone(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """An unknown key, a closed socket, port 0, a bad port, a too long datagram and a host that
    is no text fail with their errno; every other datagram of the batch is sent."""
    peer = udp()
    good, closed = udp(), udp()
    sockets.register(good, 1)
    sockets.register(closed, 2)
    closed.close()
    target = peer.getsockname()
    batch = [
        (1, b"first", target),
        (99, b"unknown key", target),
        (2, b"closed socket", target),
        (1, b"port 0", (HOST, 0)),
        (1, b"bad port", (HOST, 70000)),
        (1, bytes(70000), target),
        (1, b"lone surrogate", ("\udcff", 9)),
        (1, b"last", target),
    ]
    failed = sockets.send(batch)
    assert failed == [
        (1, errno.EBADF),
        (2, errno.EBADF),
        (3, errno.EINVAL),
        (4, errno.EINVAL),
        (5, errno.EMSGSIZE),
        (6, errno.EINVAL),
    ]
    assert [data for data, _ in recv_all(peer, 2)] == [b"first", b"last"]


def test_a_refused_send_is_reported_by_the_next_receive(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """ICMP port unreachable for an earlier send shows as (key, ECONNREFUSED), then reads go on.

    An unconnected UDP socket hears of ICMP errors only with IP_RECVERR (ip(7)), set here."""
    ours, gone, peer = udp(), udp(), udp()
    ours.setsockopt(socket.IPPROTO_IP, IP_RECVERR, 1)
    sockets.register(ours, 3)
    nobody = gone.getsockname()
    gone.close()
    assert sockets.send([(3, b"to nobody", nobody)]) == []
    wait_readable(sockets)
    assert sockets.receive() == ([], [(3, errno.ECONNREFUSED)])
    peer.sendto(b"after", ours.getsockname())
    assert drain(sockets, 1) == [(3, b"after", peer.getsockname())]


def test_unregistered_sockets_are_neither_read_nor_sent_from(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """After unregister a socket's datagrams stay unread and its key sends nothing (EBADF)."""
    peer, a, b = udp(), udp(), udp()
    sockets.register(a, 1)
    sockets.register(b, 2)
    sockets.unregister(1)
    assert len(sockets) == 1
    peer.sendto(b"to a", a.getsockname())
    peer.sendto(b"to b", b.getsockname())
    assert drain(sockets, 1) == [(2, b"to b", peer.getsockname())]
    assert sockets.send([(1, b"x", peer.getsockname())]) == [(0, errno.EBADF)]
    assert a.recv(10) == b"to a"
    with pytest.raises(KeyError):
        sockets.unregister(1)


def test_a_key_registers_once(sockets: RtpSockets, udp: Callable[..., socket.socket]) -> None:
    """Registering a second socket under a key in use raises ValueError."""
    sockets.register(udp(), 1)
    with pytest.raises(ValueError, match="already registered"):
        sockets.register(udp(), 1)


def test_ipv6_sockets_send_and_receive(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """On ::1 the source comes back as recvfrom's 4-tuple, and both address forms send."""
    peer, ours = udp("::1"), udp("::1")
    sockets.register(ours, 6)
    peer.sendto(b"v6", ours.getsockname())
    ((key, data, source),) = drain(sockets, 1)
    assert (key, data, source) == (6, b"v6", peer.getsockname())
    assert len(source) == 4
    host, port = peer.getsockname()[:2]
    assert sockets.send([(6, b"pair", (host, port)), (6, b"four", source)]) == []
    assert recv_all(peer, 2) == [(b"pair", ours.getsockname()), (b"four", ours.getsockname())]


def test_an_address_of_the_other_family_fails_alone(
    sockets: RtpSockets, udp: Callable[..., socket.socket]
) -> None:
    """An IPv4 socket refuses an IPv6 destination (and the reverse) without raising."""
    v4, v6 = udp(), udp("::1")
    sockets.register(v4, 4)
    sockets.register(v6, 6)
    failed = sockets.send([(4, b"x", ("::1", 9, 0, 0)), (6, b"y", (HOST, 9))])
    assert [index for index, _ in failed] == [0, 1]


def test_the_two_implementations_agree_on_their_limits() -> None:
    """The compiled extension reads as many sockets, datagrams and bytes as the fallback."""
    _compiled()
    from callserver.media import _rtpio

    assert (_rtpio.RECEIVE_LIMIT, _rtpio.DATAGRAMS_PER_SOCKET, _rtpio.DATAGRAM_BYTES) == (
        rtpio.RECEIVE_LIMIT,
        DATAGRAMS_PER_SOCKET,
        DATAGRAM_BYTES,
    )


def test_missing_extension_warns_once_with_the_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the compiled extension open_rtp_sockets gives the Python one and warns once."""
    monkeypatch.setattr(rtpio, "_compiled", None)
    monkeypatch.setattr(rtpio, "_warned", False)
    with capture_logs() as logs:
        first, second = rtpio.open_rtp_sockets(), rtpio.open_rtp_sockets()
    assert isinstance(first, PythonRtpSockets) and isinstance(second, PythonRtpSockets)
    warnings = [e for e in logs if e["event"] == "media.rtpio_not_compiled"]
    assert len(warnings) == 1
    assert (warnings[0]["log_level"], warnings[0]["hint"]) == ("warning", "make install")
    first.close()
    second.close()
