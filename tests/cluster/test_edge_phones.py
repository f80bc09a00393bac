"""A phone behind the edge: it registers through the edge (Path), and a call through the edge
reaches it through the edge again, on the flow it registered on; pike stops a flood.

The phone (SIPp) does not copy the edge's Record-Route into its answer, as some phones do
not: the node's ACK and BYE still reach it, through the edge, on its flow."""

from __future__ import annotations

import socket
import time
from pathlib import Path

from callserver.cluster.edge_config import render
from tests.cluster.edge_setup import edge_cluster, node_list
from tests.cluster.peers import Kamailio
from tests.e2e.conftest import HOST, SCENARIOS, free_port, run_sipp, start_uas
from tests.e2e.subscribers import CALLING, PASSWORD, USERNAME, write_centrex


def test_a_phone_registered_through_the_edge_is_called_through_it(
    sipp: str, tmp_path: Path
) -> None:
    """The REGISTER reaches the node with the edge's Path (the phone's address as received);
    the node's INVITE to the phone goes to the edge, which sends it on to the phone's address,
    record-routed; the caller's BYE ends both legs."""
    (tmp_path / "a").mkdir()
    write_centrex(tmp_path / "a")
    phone = free_port(both=False)
    with edge_cluster(tmp_path, {"a": {"trunks": CALLING}}, ("a",), pike_requests=5000) as edge:
        node = edge.nodes["a"]
        registered = run_sipp(
            sipp,
            tmp_path,
            edge.port,
            *("-sf", str(SCENARIOS / "uac-register-digest.xml"), "-m", "1"),
            *("-key", "user", USERNAME, "-au", USERNAME, "-ap", PASSWORD),
            timeout=20,
            local_port=phone,
        )
        assert registered.returncode == 0, registered.output[-2000:] + edge.tail()
        changed = node.wait_for("registrar.bindings_changed")
        assert changed["source"] == HOST  # the phone's address, from the edge's header
        rung, _ = start_uas(
            sipp,
            tmp_path,
            "-sf",
            str(SCENARIOS / "uas-rings-answers-expects-bye.xml"),
            "-trace_msg",
            port=phone,
        )
        try:
            caller = run_sipp(
                sipp,
                tmp_path,
                edge.port,
                *("-sf", str(SCENARIOS / "uac-caller-hangs-up-after-answer.xml")),
                *("-s", USERNAME, "-m", "1", "-key", "caller", "38761000000", "-d", "1000"),
                timeout=30,
            )
            out, _ = rung.communicate(timeout=30)
        finally:
            if rung.poll() is None:
                rung.kill()
                rung.communicate()
        assert caller.returncode == 0, caller.output[-2000:] + edge.tail()
        assert rung.returncode == 0, out[-2000:]
    [trace] = tmp_path.glob("uas-rings-answers-expects-bye_*_messages.log")
    invite = trace.read_text().split("INVITE sip:", 1)[1].split("\n\n", 1)[0]
    assert f"Via: SIP/2.0/UDP {HOST}:{edge.port};" in invite, invite
    assert f"Record-Route: <sip:{HOST}:{edge.port};lr;" in invite, invite
    assert "X-Callserver-Source" not in invite  # set on requests to the nodes only


def test_pike_drops_a_flood_from_one_address(tmp_path: Path) -> None:
    """60 OPTIONS at once from one address to an edge that takes 10 in 2 s: some are
    answered, the rest dropped unanswered, and the edge logs the address it blocks."""
    port = free_port()
    directory = tmp_path / "edge"
    directory.mkdir()
    files = render(node_list(port, {"a": free_port()}, directory, pike_requests=10))
    (directory / "dispatcher.list").write_text(files.dispatcher_list)
    with Kamailio(directory, files.kamailio_cfg, port) as kamailio:
        answered = _flood(port, 60)
        log = kamailio.log.read_text(errors="replace")
    assert 5 <= answered < 30, answered
    assert "BLOCK" in log and HOST in log, log[-2000:]


def _flood(port: int, count: int) -> int:
    """Send ``count`` OPTIONS to the edge itself from one socket; the answers within 1 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((HOST, 0))
        local = sock.getsockname()[1]
        for n in range(count):
            sock.sendto(_options(port, local, n), (HOST, port))
        sock.settimeout(0.2)
        answered, deadline = 0, time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            answered += data.startswith(b"SIP/2.0 200")
    return answered


def _options(port: int, local: int, n: int) -> bytes:
    return (
        f"OPTIONS sip:{HOST}:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{local};branch=z9hG4bK-flood-{n};rport\r\n"
        f"From: <sip:flood@{HOST}>;tag=f{n}\r\nTo: <sip:{HOST}:{port}>\r\n"
        f"Call-ID: flood-{n}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()
