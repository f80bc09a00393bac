"""Property test: a client and a server layer over a lossy network always settle cleanly."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callserver.sip.events import (
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTerminated,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.message import Request, Response
from callserver.sip.parser import parse_message
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import TransactionLayer, TransactionState

CLIENT_ADDR = Peer("udp", "192.0.2.10", 5060)
SERVER_ADDR = Peer("udp", "192.0.2.20", 5060)
MAX_DROPS = 5  # fewer than any retransmission series sends, so every exchange can finish


@dataclass(frozen=True)
class Plan:
    """One request the client TU sends and how the server TU answers it."""

    method: str
    start: float
    provisional: bool
    delay: float
    status: int


class MessageFactory(Protocol):
    """The part of conftest's ``sip`` fixture this test uses."""

    def request(self, method: str, *, branch: str, call_id: str) -> Request: ...

    def response(self, request: Request, status: int) -> Response: ...


@dataclass
class Sim:
    """Drives both layers, their TUs and the network in time order."""

    sip: MessageFactory
    fates: list[tuple[bool, bool, float]]
    plans: dict[str, Plan]
    client: TransactionLayer = field(default_factory=lambda: TransactionLayer(SipTimers()))
    server: TransactionLayer = field(default_factory=lambda: TransactionLayer(SipTimers()))
    queue: list[tuple[float, int, Callable[[float], None]]] = field(default_factory=list)
    seq: itertools.count[int] = field(default_factory=itertools.count)
    drops: int = 0
    requests: dict[str, Request] = field(default_factory=dict)
    outcomes: dict[str, list[str]] = field(default_factory=dict)  # by Call-ID, client side
    delivered: Counter[object] = field(default_factory=Counter)  # server TU, by key
    acked: set[str] = field(default_factory=set)
    terminated: set[object] = field(default_factory=set)

    def at(self, when: float, job: Callable[[float], None]) -> None:
        heapq.heappush(self.queue, (when, next(self.seq), job))

    def send(self, data: bytes, now: float) -> None:
        drop, dup, delay = self.fates.pop(0) if self.fates else (False, False, 0.01)
        if drop and self.drops < MAX_DROPS:
            self.drops += 1
            return
        for copy in range(2 if dup else 1):
            self.at(now + delay + copy * 0.001, partial(self.deliver, data))

    def deliver(self, data: bytes, now: float) -> None:
        message = parse_message(data)
        if isinstance(message, Request):
            self.apply(self.server.receive_request(message, CLIENT_ADDR, now), now)
        else:
            self.apply(self.client.receive_response(message, SERVER_ADDR, now), now)

    def apply(self, actions: list[object], now: float) -> None:
        for action in actions:
            if isinstance(action, Transmit):
                self.send(action.data, now)
            elif isinstance(action, RequestReceived):
                self.server_tu(action, now)
            elif isinstance(action, ResponseReceived):
                self.client_tu(action, now)
            elif isinstance(action, TransactionTimedOut):
                self.outcomes[action.request.call_id()].append("timeout")
            elif isinstance(action, TransactionTerminated):
                assert action.key not in self.terminated
                self.terminated.add(action.key)

    def client_tu(self, event: ResponseReceived, now: float) -> None:
        response, call_id = event.response, event.response.call_id()
        if response.status >= 200 and event.key is not None:
            self.outcomes[call_id].append(str(response.status))
        if 200 <= response.status < 300 and response.cseq().method == "INVITE":
            ack = Request("ACK", self.requests[call_id].uri, response.headers.copy())
            ack.headers.set("Via", f"SIP/2.0/UDP 192.0.2.10;branch=z9hG4bK-a{next(self.seq)}")
            ack.headers.set("CSeq", f"{response.cseq().seq} ACK")
            self.send(ack.serialize(), now)

    def server_tu(self, event: RequestReceived, now: float) -> None:
        request = event.request
        if request.method == "ACK":
            self.acked.add(request.call_id())
            return
        self.delivered[event.key] += 1
        plan = self.plans[request.call_id()]
        if plan.provisional:
            self.answer(event.key, request, 180 if request.method == "INVITE" else 100, now)
        self.at(now + plan.delay, partial(self.answer, event.key, request, plan.status))

    def answer(self, key: object, request: Request, status: int, now: float) -> None:
        response = self.sip.response(request, status)
        self.apply(self.server.send_response(key, response, now), now)
        if request.method == "INVITE" and 200 <= status < 300:
            self.at(now + 0.5, partial(self.resend_2xx, key, response, 0.5))

    def resend_2xx(self, key: object, response: Response, interval: float, now: float) -> None:
        # The UAS core's job (RFC 3261 §13.3.1.4): resend the 2xx until the ACK arrives.
        if (
            response.call_id() in self.acked
            or self.server.state_of(key) is not TransactionState.ACCEPTED
        ):
            return
        self.apply(self.server.send_response(key, response, now), now)
        interval = min(2 * interval, 4.0)
        self.at(now + interval, partial(self.resend_2xx, key, response, interval))

    def start(self, call_id: str, now: float) -> None:
        branch = f"z9hG4bK-{call_id}"
        request = self.sip.request(self.plans[call_id].method, branch=branch, call_id=call_id)
        self.requests[call_id], self.outcomes[call_id] = request, []
        self.apply(self.client.send_request(request, SERVER_ADDR, now)[1], now)

    def run(self) -> None:
        for call_id, plan in self.plans.items():
            self.at(plan.start, partial(self.start, call_id))
        now = 0.0
        while True:
            deadlines = [self.client.get_timer(), self.server.get_timer()]
            pending = [d for d in deadlines if d is not None] + [q[0] for q in self.queue[:1]]
            if not pending:
                return
            now = max(now, min(pending))
            assert now < 1000, "the pair never settled"
            while self.queue and self.queue[0][0] <= now:
                heapq.heappop(self.queue)[2](now)
            self.apply(self.client.handle_timer(now), now)
            self.apply(self.server.handle_timer(now), now)


_plans = st.lists(
    st.builds(
        Plan,
        method=st.sampled_from(["INVITE", "OPTIONS", "BYE", "INVITE"]),
        start=st.floats(0, 3),
        provisional=st.booleans(),
        delay=st.floats(0, 5),
        status=st.sampled_from([200, 202, 302, 404, 486, 603]),
    ),
    min_size=1,
    max_size=4,
)
_fates = st.lists(st.tuples(st.booleans(), st.booleans(), st.floats(0, 0.2)), max_size=40)


@given(plans=_plans, fates=_fates)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_lossy_pair_always_settles_with_nothing_leaked(sip, plans: list[Plan], fates: list) -> None:
    """Under loss, duplication and reordering both layers end empty and each TU sees one outcome."""
    sim = Sim(sip=sip, fates=list(fates), plans={f"call-{i}": plan for i, plan in enumerate(plans)})
    sim.run()
    for layer in (sim.client, sim.server):
        stats = layer.statistics()
        assert len(layer) == 0 and layer.get_timer() is None
        assert layer.statistics().timer_entries == 0 and stats.created == stats.terminated
    for call_id, outcome in sim.outcomes.items():
        plan = sim.plans[call_id]
        if plan.method == "INVITE" and 200 <= plan.status < 300:
            assert outcome and set(outcome) == {str(plan.status)}  # Accepted passes every 2xx
            assert call_id in sim.acked
        else:
            assert outcome == [str(plan.status)]
    assert len(sim.delivered) == len(plans) and set(sim.delivered.values()) == {1}
