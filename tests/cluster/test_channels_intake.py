"""A new call's wait for the shared limits in a real in-process server (datagrams fed by hand)
against a real redis-server: admitted, refused by another node's channels or the trunk's
shared rate as a local refusal is, and cancelled while it waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from callserver.admin.cluster_metrics import ClusterCollector
from callserver.admin.metrics import server_registry
from callserver.app import Server
from callserver.cluster.limits import open_shared_limits
from callserver.policy.limits import Grant
from callserver.sip.events import Peer
from tests.admin.in_process import PLANS, StandInSocket, in_process_server
from tests.cluster.channel_nodes import entries, open_node, running_redis, wait_until

PEER = Peer("udp", "127.0.0.1", 6000)
GUIDE = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
TRUNKS = {
    "customers": {"acme": {"channels": 1}},
    "trunks": {"test": {"match": ["127.0.0.1"], "customer": "acme"}},
}
RATED = {  # the trunk's rate: a call in 10 s
    "customers": {"acme": {"channels": 1}},
    "trunks": {"test": {"match": ["127.0.0.1"], "customer": "acme", "cps": 0.1}},
}
HEAD = (
    "{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-{n}-{branch}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:6000>;tag=t{n}\r\n"
    "To: service <sip:service@127.0.0.1:5060>{to_tag}\r\n"
    "Call-ID: shared-{n}@127.0.0.1\r\nCSeq: {seq} {method}\r\n"
    "Contact: sip:sipp@127.0.0.1:6000\r\nMax-Forwards: 70\r\n"
)
SDP = (
    "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def _request(method: str, n: int, *, seq: int = 1, tag: str = "", branch: str = "inv") -> bytes:
    """Call ``n``'s ``method`` (a CANCEL has its INVITE's branch; ACK and BYE their own)."""
    to_tag = f";tag={tag}" if tag else ""
    head = HEAD.format(method=method, n=n, branch=branch, seq=seq, to_tag=to_tag)
    if method != "INVITE":
        return (head + "Content-Length: 0\r\n\r\n").encode()
    body = f"Content-Type: application/sdp\r\nContent-Length: {len(SDP)}\r\n\r\n{SDP}"
    return (head + body).encode()


@asynccontextmanager
async def _node(
    tmp_path: Path, url: str, files: dict[str, Any] = TRUNKS
) -> AsyncIterator[tuple[Server, StandInSocket]]:
    """An in-process server, node ``a`` of the cluster on ``url`` with trunks ``files``, its
    limits shared as ``app.Server.start`` shares them."""
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text(yaml.safe_dump(files))
    cluster = {"redis": url, "node": "a"}
    server, socket = in_process_server(
        tmp_path,
        PLANS,
        {"trunks": str(trunks), "centrex": str(tmp_path / "centrex.yaml"), "cluster": cluster},
    )
    assert server.link is not None  # made by the server for cluster.redis
    server.shared_limits = await open_shared_limits(
        server.settings.cluster, server.link, server.admission, server.holder
    )
    server.calls.intake.share(server.shared_limits.channels)
    try:
        yield server, socket
    finally:
        await server.shared_limits.close()
        await server.link.close()


def _answers(socket: StandInSocket) -> list[tuple[int, str]]:
    """(status, CSeq method) of each response sent."""
    out = []
    for data in socket.sent:
        if data.startswith(b"SIP/2.0 "):
            status = int(data[8:11])
            cseq = data.split(b"\r\nCSeq: ", 1)[1].split(b"\r\n", 1)[0].split()[1].decode()
            out.append((status, cseq))
    return out


async def _settled(server: Server) -> None:
    """Until no call waits for Redis and every waiting task is done."""
    await wait_until(lambda: _nothing_waits(server), within=3, step=0.01)


async def _nothing_waits(server: Server) -> bool:
    shared = server.calls.intake.shared
    assert shared is not None
    await asyncio.sleep(0)
    return len(shared) == 0 and not shared._tasks


async def test_an_admitted_call_is_answered_after_the_round_trip_and_counted_until_its_bye(
    tmp_path: Path,
) -> None:
    """The call is answered once Redis admitted it, counts there while up, and not after BYE."""
    with running_redis(tmp_path) as redis:
        async with _node(tmp_path, redis.url) as (server, socket):
            holder = str(server.shared_limits.holder) if server.shared_limits else ""
            server.datagram_received(_request("INVITE", 1), PEER)
            assert _answers(socket) == []  # nothing before Redis answers
            await _settled(server)
            await asyncio.sleep(0)  # the plan's task answers
            ok = next(d for d in socket.sent if d.startswith(b"SIP/2.0 200"))
            assert await entries(redis.url, "customer:acme") == {holder: 1}
            tag = ok.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0].split(b";tag=")[1].decode()
            server.datagram_received(_request("ACK", 1, tag=tag, branch="ack"), PEER)
            server.datagram_received(_request("BYE", 1, seq=2, tag=tag, branch="bye"), PEER)
            await wait_until(lambda: _no_entries(redis.url), within=2)
            samples = _samples(server)
            assert samples[("callserver_cluster_redis_up", frozenset())] == 1
            redis_ok = frozenset({("decided_by", "redis"), ("outcome", "admitted")})
            assert samples[("callserver_cluster_admissions_total", redis_ok)] == 1
            assert samples[("callserver_cluster_acquire_seconds_count", frozenset())] == 1


async def test_a_call_refused_by_another_nodes_channels_gets_503_cause_34(tmp_path: Path) -> None:
    """Node b holds the customer's one channel: a's call, admitted locally, is refused as a
    local refusal is (503, Q.850 cause 34, Retry-After, channel_limit) and holds nothing."""
    with running_redis(tmp_path) as redis:
        b = await open_node(redis.url, "b", trunks=TRUNKS)
        try:
            assert isinstance(await b.call(trunk="test"), Grant)
            async with _node(tmp_path, redis.url) as (server, socket):
                server.datagram_received(_request("INVITE", 1), PEER)
                await _settled(server)
                [refusal] = [d for d in socket.sent if d.startswith(b"SIP/2.0 503")]
                assert b"\r\nReason: Q.850;cause=34" in refusal
                assert b"\r\nRetry-After: 30\r\n" in refusal
                assert server.reporter.ended_by_reason == {("a", "channel_limit"): 1}
                assert server.admission.channels.statistics().active_grants == 0
                assert server.admission.channels.statistics().refused == {"customer": 1}
                assert len(server.calls.calls) == 0
        finally:
            await b.close()


async def test_a_call_over_the_trunks_shared_rate_gets_503_with_retry_after(
    tmp_path: Path,
) -> None:
    """Node b took the trunk's one token of 10 s: a's call gets 503 with the seconds until the
    next as Retry-After (cps_limit) and no Reason, as over a local bucket."""
    with running_redis(tmp_path) as redis:
        b = await open_node(redis.url, "b", trunks=RATED)
        try:
            taken = await b.call(trunk="test")
            assert isinstance(taken, Grant)
            b.admission.release(taken)
            await b.shared.channels.flush()
            async with _node(tmp_path, redis.url, RATED) as (server, socket):
                server.datagram_received(_request("INVITE", 1), PEER)
                await _settled(server)
                [refusal] = [d for d in socket.sent if d.startswith(b"SIP/2.0 503")]
                wait = int(refusal.split(b"\r\nRetry-After: ", 1)[1].split(b"\r\n", 1)[0])
                assert 5 <= wait <= 10 and b"Reason:" not in refusal
                assert server.reporter.ended_by_reason == {("a", "cps_limit"): 1}
                assert server.admission.rates.statistics().refused == {"trunk": 1}
                assert await entries(redis.url, "customer:acme") == {}
        finally:
            await b.close()


async def test_a_call_cancelled_while_it_waits_gets_487_and_holds_nothing(tmp_path: Path) -> None:
    """A CANCEL before Redis answered: 200 and 487 from the core, the CDR of a cancelled call,
    and the channels given back (in Redis too) once the answer came."""
    with running_redis(tmp_path) as redis:
        async with _node(tmp_path, redis.url) as (server, socket):
            server.datagram_received(_request("INVITE", 1), PEER)
            server.datagram_received(_request("CANCEL", 1), PEER)
            assert _answers(socket) == [(200, "CANCEL"), (487, "INVITE")]
            assert server.reporter.ended_by_reason == {("a", "cancelled"): 1}
            await _settled(server)
            await wait_until(lambda: _no_entries(redis.url), within=2)
            assert _answers(socket) == [(200, "CANCEL"), (487, "INVITE")]
            assert server.admission.channels.statistics().active_grants == 0
            assert len(server.calls.calls) == 0


async def test_a_retransmitted_invite_while_it_waits_is_absorbed(tmp_path: Path) -> None:
    """The INVITE sent again before Redis answered is one call: one admission, one 200."""
    with running_redis(tmp_path) as redis:
        async with _node(tmp_path, redis.url) as (server, socket):
            server.datagram_received(_request("INVITE", 1), PEER)
            server.datagram_received(_request("INVITE", 1), PEER)
            await _settled(server)
            await asyncio.sleep(0)
            assert [a for a in _answers(socket) if a[0] != 100] == [(200, "INVITE")]
            assert server.admission.channels.statistics().granted == 1


async def _no_entries(url: str) -> bool:
    return await entries(url, "customer:acme") == {}


def _samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(server_registry(server)).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_every_cluster_metric_is_in_the_operations_guide(tmp_path: Path) -> None:
    """Each callserver_cluster_* family a node with Redis yields has a row in
    docs/operations.md "Metrics"."""
    section = GUIDE.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    with running_redis(tmp_path) as redis:
        async with _node(tmp_path, redis.url) as (server, _):
            assert server.link is not None and server.shared_limits is not None
            collector = ClusterCollector(server.link, server.shared_limits)
            names = [family.name for family in collector.collect()]
    assert len(names) == 6
    missing = [
        name for name in names if not any(f"`{name}{end}`" in section for end in ("", "_total"))
    ]
    assert missing == []
