"""callserver.admin.metrics: the scrape of a real in-process server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from callserver.admin.metric_sources import bindings_per_customer, ingest_lag
from callserver.admin.metrics import OffLoop, server_registry
from callserver.app import Server
from callserver.config.centrex import load_customers
from callserver.config.settings import load_settings
from callserver.media.events import RtpTimedOut
from callserver.queues.queue import QueueAgent, QueueConfig
from callserver.sip.events import Peer
from tests.admin.in_process import PLANS, in_process_server

PEER = Peer("udp", "127.0.0.1", 6000)
INVITE = (
    b"INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-m-1\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:6000>;tag=m1\r\n"
    b"To: service <sip:service@127.0.0.1:5060>\r\n"
    b"Call-ID: metrics-1@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: sip:sipp@127.0.0.1:6000\r\n"
    b"Max-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: 129\r\n\r\n"
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)
IN_DIALOG = (
    "{method} sip:service@127.0.0.1:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:6000;branch=z9hG4bK-m-{seq}\r\n"
    "From: sipp <sip:sipp@127.0.0.1:6000>;tag=m1\r\n"
    "To: service <sip:service@127.0.0.1:5060>;tag={tag}\r\n"
    "Call-ID: metrics-1@127.0.0.1\r\nCSeq: {seq} {method}\r\n"
    "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
)


def _samples(server: Server) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The scrape, parsed back: each sample's value by its name and labels."""
    text = generate_latest(server_registry(server)).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _to_tag(response: bytes) -> str:
    to_line = response.split(b"\r\nTo: ", 1)[1].split(b"\r\n", 1)[0]
    return to_line.split(b";tag=", 1)[1].decode()


async def test_a_server_without_calls_scrapes_to_valid_exposition_text(tmp_path: Path) -> None:
    """A server with no call yields parseable text with zero calls and the process metrics."""
    server, _ = in_process_server(tmp_path, PLANS)
    samples = _samples(server)
    names = {name for name, _ in samples}
    assert samples[("callserver_call_attempts_total", frozenset())] == 0
    assert not any(name == "callserver_calls_in_progress" for name, _ in samples)
    assert {"process_cpu_seconds_total", "python_gc_collections_total", "python_info"} <= names
    full_passes = frozenset({("generation", "2"), ("le", "+Inf")})
    assert samples[("callserver_gc_pause_seconds_bucket", full_passes)] == 0
    assert samples[("callserver_dialplan_reloads_total", frozenset())] == 1
    version = server.routing.dialplans.plans.plans["default"].version
    info = frozenset({("number", "default"), ("version", version)})
    assert samples[("callserver_dialplan_info", info)] == 1
    bought = frozenset({("kind", "customer"), ("pool", "callcentre-demo")})
    assert samples[("callserver_channels_bought", bought)] == 3


async def test_an_answered_call_is_in_progress_until_its_bye(tmp_path: Path) -> None:
    """An answered call shows in the gauge of calls in progress, and as an attempt once ended."""
    server, socket = in_process_server(tmp_path, PLANS)
    server.datagram_received(INVITE, PEER)
    await asyncio.sleep(0)  # the plan's task answers
    ok = next(d for d in socket.sent if d.startswith(b"SIP/2.0 200"))
    progress = frozenset(
        {("trunk", "test"), ("customer", ""), ("number_class", ""), ("direction", "inbound")}
    )
    during = _samples(server)
    assert during[("callserver_calls_in_progress", progress)] == 1
    assert during[("callserver_call_attempts_total", frozenset())] == 1
    assert during[("callserver_media_streams", frozenset())] == 1
    trunk_pool = frozenset({("kind", "trunk"), ("pool", "test")})
    assert during[("callserver_channels_in_use", trunk_pool)] == 1
    tag = _to_tag(ok)
    server.datagram_received(IN_DIALOG.format(method="ACK", seq=1, tag=tag).encode(), PEER)
    server.datagram_received(IN_DIALOG.format(method="BYE", seq=2, tag=tag).encode(), PEER)
    await asyncio.sleep(0)
    after = _samples(server)
    assert ("callserver_calls_in_progress", progress) not in after
    assert after[("callserver_call_attempts_total", frozenset())] == 1
    ended = frozenset({("leg", "a"), ("reason", "bye_received")})
    assert after[("callserver_call_legs_ended_total", ended)] == 1
    assert after[("callserver_channels_in_use", trunk_pool)] == 0


async def test_a_call_without_a_plan_counts_as_a_no_route_rejection(tmp_path: Path) -> None:
    """A call to a number no dialplan serves is refused and counted under reason no_route."""
    empty = tmp_path / "plans"
    empty.mkdir()
    server, socket = in_process_server(tmp_path, empty)
    server.datagram_received(INVITE, PEER)
    await asyncio.sleep(0)
    assert any(d.startswith(b"SIP/2.0 404") for d in socket.sent)
    samples = _samples(server)
    assert samples[("callserver_call_rejections_total", frozenset({("reason", "no_route")}))] == 1
    assert samples[("callserver_call_attempts_total", frozenset())] == 1


async def test_queue_callers_and_agents_are_counted_by_state(tmp_path: Path) -> None:
    """A logged-in agent and a caller waiting in its queue show in the queue families."""
    server, _ = in_process_server(tmp_path, PLANS)
    centre = server.phones.centre.centre
    agent = "+38733100201"
    centre.define(
        QueueConfig(customer="callcentre-demo", name="sales", agents=(QueueAgent(number=agent),))
    )
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    centre.login(agent, 0.0, at)
    centre.pause(agent, "lunch", 1.0, at)
    centre.join(("callcentre-demo", "sales"), "caller-1", 2.0, at)
    samples = _samples(server)
    queue = frozenset({("customer", "callcentre-demo"), ("queue", "sales")})
    assert samples[("callserver_queue_waiting", queue)] == 1
    paused = frozenset({("customer", "callcentre-demo"), ("state", "paused")})
    assert samples[("callserver_queue_agents", paused)] == 1


def test_bindings_count_under_the_customer_of_their_phone() -> None:
    """A Centrex phone's bindings count for its group's customer; any other AOR under ""."""
    settings = load_settings(None, {})
    centrex = load_customers(settings.trunks, settings.centrex, ())[1]
    counts = {"+38733100201": 2, "+38733100202": 1, "alice": 1, "+38761000000": 1}
    assert bindings_per_customer(counts, centrex) == {"callcentre-demo": 3, "": 2}


def test_the_ingest_lag_is_the_time_since_the_last_good_run() -> None:
    """The lag is now minus the last good run; unknown before the first run or off the loop."""
    assert ingest_lag(100.0, 130.5) == 30.5
    assert ingest_lag(None, 130.5) is None
    assert ingest_lag(100.0, None) is None


async def test_dtmf_by_source_and_rtp_timeouts_are_counted(tmp_path: Path) -> None:
    """A digit sent by SIP INFO counts under source info; an RTP timeout counts once."""
    server, socket = in_process_server(tmp_path, PLANS)
    server.datagram_received(INVITE, PEER)
    await asyncio.sleep(0)
    tag = _to_tag(next(d for d in socket.sent if d.startswith(b"SIP/2.0 200")))
    server.datagram_received(IN_DIALOG.format(method="ACK", seq=1, tag=tag).encode(), PEER)
    info = IN_DIALOG.format(method="INFO", seq=2, tag=tag).replace(
        "Content-Length: 0\r\n",
        "Content-Type: application/dtmf-relay\r\nContent-Length: 24\r\n",
    )
    server.datagram_received((info + "Signal=5\r\nDuration=160\r\n").encode(), PEER)
    [call] = server.calls.calls
    assert call.stream is not None
    server.calls.handle_media_event(
        RtpTimedOut(stream_id=call.stream.stream_id, idle=30.0, rtime=0.0)
    )
    samples = _samples(server)
    assert samples[("callserver_dtmf_digits_total", frozenset({("source", "info")}))] == 1
    assert samples[("callserver_rtp_timeouts_total", frozenset())] == 1


class _Reads(Collector):
    """A collector whose one gauge is how many times it was read."""

    def __init__(self) -> None:
        self.reads = 0

    def collect(self) -> Iterator[Metric]:
        self.reads += 1
        yield GaugeMetricFamily("reads", "Times read.", value=self.reads)


def test_off_loop_serves_the_last_read_and_reads_again_in_a_thread() -> None:
    """A scrape gets the families read before (the first at once) and starts the next read."""
    reads = _Reads()
    off_loop = OffLoop(reads)
    [first] = off_loop.collect()
    assert first.samples[0].value == 1
    values = set()
    for _ in range(1000):  # the read in the worker thread ends in its own time
        [family] = off_loop.collect()
        values.add(family.samples[0].value)
        if max(values) > 1:
            break
        time.sleep(0.01)
    assert max(values) > 1
