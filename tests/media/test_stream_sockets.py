"""Binding a stream's port pair when another program holds a run of the range's ports, and the
table of open streams that owns the pairs."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from callserver.media.ports import PortsExhausted, RtpPortAllocator
from callserver.media.rtpio import open_rtp_sockets
from callserver.media.stream_sockets import StreamTable, bind_port_pair
from tests.media.engine_peers import HOST, port_range, settings_for

_SPAN = 400  # ports in the test's range
_HELD = 300  # the first ports of it, held by "another program"


def _hold(base: int) -> list[socket.socket] | None:
    held: list[socket.socket] = []
    try:
        for port in range(base, base + _HELD):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            held.append(sock)
            sock.bind((HOST, port))
    except OSError:
        for sock in held:
            sock.close()
        return None
    return held


@pytest.fixture
def held_run() -> Iterator[int]:
    """A range whose first 300 ports another socket holds (found free, then bound at once)."""
    for base in range(14000, 30000, _SPAN):
        held = _hold(base)
        if held is not None:
            break
    else:
        pytest.fail("no run of 300 free UDP ports between 14000 and 30000 on 127.0.0.1")
    try:
        yield base
    finally:
        for sock in held:
            sock.close()


def test_a_run_of_held_ports_is_jumped_over(held_run: int) -> None:
    """Starting inside a run of 150 held pairs, longer than the 64 tries, a pair still binds:
    each refusal jumps to another place in the range instead of the next port."""
    ports = RtpPortAllocator(held_run, held_run + _SPAN - 1)
    port, rtp, rtcp = bind_port_pair(ports, socket.AF_INET, HOST)
    try:
        assert held_run + _HELD <= port < held_run + _SPAN
        assert rtcp.getsockname()[1] == port + 1
        assert ports.in_use == 1
    finally:
        rtp.close()
        rtcp.close()


def test_next_port_after_a_refusal_without_a_jump(held_run: int) -> None:
    """With no jump, refusals walk the run port by port and give up after 64 tries."""
    ports = RtpPortAllocator(held_run, held_run + _SPAN - 1)
    with pytest.raises(PortsExhausted, match="after 64 attempts"):
        bind_port_pair(ports, socket.AF_INET, HOST, jump=lambda _n: 0)
    assert ports.in_use == 0


def test_the_table_gives_back_a_closed_streams_port_and_sockets() -> None:
    """A stream the table opened is listed until closed; closing it releases its port pair and
    closes both sockets, and closing it again says it was not open."""
    table = StreamTable(settings_for(*port_range()), HOST, open_rtp_sockets)
    stream = table.open()
    entry = table.entries[stream.stream_id]
    assert table.streams == {stream.stream_id: stream}
    assert table.ports.in_use == 1
    assert table.close(stream) is True
    assert (table.entries, table.streams, table.ports.in_use) == ({}, {}, 0)
    assert entry.rtp.fileno() == -1 and entry.rtcp.fileno() == -1
    assert table.close(stream) is False
