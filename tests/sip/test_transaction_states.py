"""Property tests: every transaction machine follows its RFC 3261 §17 transition table."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.sip.errors import LocalProtocolError
from callserver.sip.events import (
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.message import Headers, Request, Response
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import (
    ClientInviteTransaction,
    ClientKey,
    ClientNonInviteTransaction,
    InputKind,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    TransactionInput,
    TransactionMachine,
    TransactionState,
)
from callserver.sip.transaction_server import server_key
from callserver.sip.uri import parse_uri

S, K = TransactionState, InputKind
UDP = Peer("udp", "192.0.2.20", 5060)
TCP = Peer("tcp", "192.0.2.20", 5060, conn_id=3)

# How to reach each state from a fresh machine (over UDP).
PATHS: dict[type[TransactionMachine], dict[TransactionState, list[InputKind]]] = {
    ClientInviteTransaction: {
        S.CALLING: [],
        S.PROCEEDING: [K.RECV_1XX],
        S.COMPLETED: [K.RECV_3XX_6XX],
        S.ACCEPTED: [K.RECV_2XX],
        S.TERMINATED: [K.TIMER_B],
    },
    ClientNonInviteTransaction: {
        S.TRYING: [],
        S.PROCEEDING: [K.RECV_1XX],
        S.COMPLETED: [K.RECV_2XX],
        S.TERMINATED: [K.TIMER_F],
    },
    ServerInviteTransaction: {
        S.PROCEEDING: [],
        S.COMPLETED: [K.SEND_3XX_6XX],
        S.CONFIRMED: [K.SEND_3XX_6XX, K.RECV_ACK],
        S.ACCEPTED: [K.SEND_2XX],
        S.TERMINATED: [K.SEND_2XX, K.TIMER_L],
    },
    ServerNonInviteTransaction: {
        S.TRYING: [],
        S.PROCEEDING: [K.SEND_1XX],
        S.COMPLETED: [K.SEND_2XX],
        S.TERMINATED: [K.SEND_2XX, K.TIMER_J],
    },
}

# The arrows of RFC 3261 Figures 5-8 (with RFC 6026's Accepted), written out independently.
EXPECTED: dict[type[TransactionMachine], dict[tuple[TransactionState, InputKind], S]] = {
    ClientInviteTransaction: {
        (S.CALLING, K.TIMER_A): S.CALLING,
        (S.CALLING, K.TIMER_B): S.TERMINATED,
        (S.CALLING, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.CALLING, K.RECV_1XX): S.PROCEEDING,
        (S.CALLING, K.RECV_2XX): S.ACCEPTED,
        (S.CALLING, K.RECV_3XX_6XX): S.COMPLETED,
        (S.PROCEEDING, K.RECV_1XX): S.PROCEEDING,
        (S.PROCEEDING, K.RECV_2XX): S.ACCEPTED,
        (S.PROCEEDING, K.RECV_3XX_6XX): S.COMPLETED,
        # RFC 3261 §9.1: 64*T1 after a CANCEL with no final response, the INVITE ends.
        (S.PROCEEDING, K.CANCEL_SENT): S.PROCEEDING,
        (S.PROCEEDING, K.TIMER_B): S.TERMINATED,
        (S.COMPLETED, K.RECV_3XX_6XX): S.COMPLETED,
        (S.COMPLETED, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, K.TIMER_D): S.TERMINATED,
        (S.ACCEPTED, K.RECV_2XX): S.ACCEPTED,
        (S.ACCEPTED, K.TIMER_M): S.TERMINATED,
    },
    ClientNonInviteTransaction: {
        **{(s, K.TIMER_E): s for s in (S.TRYING, S.PROCEEDING)},
        **{(s, K.TIMER_F): S.TERMINATED for s in (S.TRYING, S.PROCEEDING)},
        **{(s, K.TRANSPORT_ERROR): S.TERMINATED for s in (S.TRYING, S.PROCEEDING)},
        **{(s, K.RECV_1XX): S.PROCEEDING for s in (S.TRYING, S.PROCEEDING)},
        **{(s, K.RECV_2XX): S.COMPLETED for s in (S.TRYING, S.PROCEEDING, S.COMPLETED)},
        **{(s, K.RECV_3XX_6XX): S.COMPLETED for s in (S.TRYING, S.PROCEEDING, S.COMPLETED)},
        (S.COMPLETED, K.TIMER_K): S.TERMINATED,
    },
    ServerInviteTransaction: {
        (S.PROCEEDING, K.RECV_REQUEST): S.PROCEEDING,
        (S.PROCEEDING, K.TIMER_TRYING): S.PROCEEDING,
        (S.PROCEEDING, K.SEND_1XX): S.PROCEEDING,
        (S.PROCEEDING, K.SEND_2XX): S.ACCEPTED,
        (S.PROCEEDING, K.SEND_3XX_6XX): S.COMPLETED,
        (S.PROCEEDING, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, K.RECV_REQUEST): S.COMPLETED,
        (S.COMPLETED, K.RECV_ACK): S.CONFIRMED,
        (S.COMPLETED, K.TIMER_G): S.COMPLETED,
        (S.COMPLETED, K.TIMER_H): S.TERMINATED,
        (S.COMPLETED, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.CONFIRMED, K.RECV_ACK): S.CONFIRMED,
        (S.CONFIRMED, K.RECV_REQUEST): S.CONFIRMED,
        (S.CONFIRMED, K.TIMER_I): S.TERMINATED,
        (S.ACCEPTED, K.RECV_REQUEST): S.ACCEPTED,
        (S.ACCEPTED, K.RECV_ACK): S.ACCEPTED,
        (S.ACCEPTED, K.SEND_2XX): S.ACCEPTED,
        (S.ACCEPTED, K.TIMER_L): S.TERMINATED,
    },
    ServerNonInviteTransaction: {
        (S.TRYING, K.RECV_REQUEST): S.TRYING,
        **{(s, K.SEND_1XX): S.PROCEEDING for s in (S.TRYING, S.PROCEEDING)},
        **{(s, K.SEND_2XX): S.COMPLETED for s in (S.TRYING, S.PROCEEDING, S.COMPLETED)},
        **{(s, K.SEND_3XX_6XX): S.COMPLETED for s in (S.TRYING, S.PROCEEDING, S.COMPLETED)},
        (S.PROCEEDING, K.RECV_REQUEST): S.PROCEEDING,
        (S.PROCEEDING, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, K.RECV_REQUEST): S.COMPLETED,
        (S.COMPLETED, K.TRANSPORT_ERROR): S.TERMINATED,
        (S.COMPLETED, K.TIMER_J): S.TERMINATED,
    },
}

# States whose wait is zero on a reliable transport, so they are left at once (Timers D-K).
ZERO_WAIT = {
    ClientInviteTransaction: S.COMPLETED,
    ClientNonInviteTransaction: S.COMPLETED,
    ServerInviteTransaction: S.CONFIRMED,
    ServerNonInviteTransaction: S.COMPLETED,
}

STATUS = {
    K.RECV_1XX: (100, 199),
    K.SEND_1XX: (100, 199),
    K.RECV_2XX: (200, 299),
    K.SEND_2XX: (200, 299),
    K.RECV_3XX_6XX: (300, 699),
    K.SEND_3XX_6XX: (300, 699),
}
DEFAULT_STATUS = {K.RECV_1XX: 180, K.RECV_2XX: 200, K.RECV_3XX_6XX: 486}
OUTPUTS = (Transmit, ResponseReceived, RequestReceived, TransactionTimedOut)


def _request(method: str) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-prop"),
            ("Max-Forwards", "70"),
            ("From", "<sip:alice@example.org>;tag=a"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "prop@192.0.2.10"),
            ("CSeq", f"1 {method}"),
        ]
    )
    return Request(method, parse_uri("sip:bob@example.com"), headers)


def _response(request: Request, status: int) -> Response:
    headers = Headers((n, v) for n, v in request.headers if n in ("Via", "From", "Call-ID", "CSeq"))
    headers.add("To", "<sip:bob@example.com>;tag=b")
    return Response(status, "Test", headers)


def _input(kind: InputKind, request: Request, status: int | None) -> TransactionInput:
    if kind in STATUS:
        code = status if status is not None else DEFAULT_STATUS.get(kind, STATUS[kind][0])
        return TransactionInput(kind=kind, message=_response(request, code), peer=UDP)
    if kind is K.RECV_REQUEST:
        return TransactionInput(kind=kind, message=request, peer=UDP)
    if kind is K.RECV_ACK:
        ack = Request("ACK", request.uri, request.headers.copy())
        ack.headers.set("To", "<sip:bob@example.com>;tag=b")
        ack.headers.set("CSeq", "1 ACK")
        return TransactionInput(kind=kind, message=ack, peer=UDP)
    return TransactionInput(kind=kind)


def _machine(cls: type[TransactionMachine], state: S, reliable: bool) -> TransactionMachine:
    request = _request(
        "INVITE" if cls in (ClientInviteTransaction, ServerInviteTransaction) else "BYE"
    )
    client = cls in (ClientInviteTransaction, ClientNonInviteTransaction)
    key = ClientKey("z9hG4bK-prop", request.method) if client else server_key(request)
    machine = cls(key, request, TCP if reliable else UDP, SipTimers())
    machine.start(0.0)
    for kind in PATHS[cls][state]:
        machine.handle(_input(kind, request, None), 1.0)
    return machine


def _timers(machine: TransactionMachine) -> list[float | None]:
    return [getattr(machine, name) for name, _ in machine.TIMERS]


def _check_pair(
    cls: type[TransactionMachine], state: S, kind: InputKind, status: int | None, reliable: bool
) -> None:
    machine = _machine(cls, state, reliable)
    actual = machine.state  # a zero wait may already have terminated it over TCP
    inp = _input(kind, machine.request, status)
    before = _timers(machine)
    if (actual, kind) in machine.transition_table():
        out = machine.handle(inp, 2.0)
        expected = EXPECTED[cls][(actual, kind)]
        if reliable and expected is ZERO_WAIT[cls]:
            expected = S.TERMINATED
        assert machine.state is expected
        assert all(isinstance(action, OUTPUTS) for action in out)
    elif kind.from_tu:
        with pytest.raises(LocalProtocolError):
            machine.handle(inp, 2.0)
        assert machine.state is actual and _timers(machine) == before
    else:
        assert machine.handle(inp, 2.0) == []
        assert machine.state is actual and _timers(machine) == before


def test_tables_are_exactly_the_rfc_figures() -> None:
    """Each machine's transition table has exactly the arrows of its RFC figure."""
    for cls, expected in EXPECTED.items():
        assert set(_machine(cls, next(iter(PATHS[cls])), False).transition_table()) == set(expected)


def test_every_state_input_pair_follows_the_table() -> None:
    """Every reachable state x every input, on UDP and TCP, transitions, raises or is ignored."""
    for cls, paths in PATHS.items():
        for state, kind, reliable in itertools.product(paths, InputKind, (False, True)):
            _check_pair(cls, state, kind, None, reliable)


@st.composite
def _pairs(draw: st.DrawFn) -> tuple[type[TransactionMachine], S, InputKind, int | None, bool]:
    cls = draw(st.sampled_from(list(PATHS)))
    state = draw(st.sampled_from(list(PATHS[cls])))
    kind = draw(st.sampled_from(list(InputKind)))
    low_high = STATUS.get(kind)
    status = draw(st.integers(*low_high)) if low_high else None
    return cls, state, kind, status, draw(st.booleans())


@given(_pairs())
@settings(max_examples=400, deadline=None)
def test_random_state_input_pairs_never_raise_anything_else(
    pair: tuple[type[TransactionMachine], S, InputKind, int | None, bool],
) -> None:
    """For any status in class, a pair transitions, raises LocalProtocolError or is ignored."""
    _check_pair(*pair)
