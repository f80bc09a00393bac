"""Out-of-dialog non-INVITE requests of the UAC core (RFC 3261 §8.1.1, §11, §17.1.2)."""

from __future__ import annotations

import pytest

from callserver.sip.events import ResponseReceived, TransactionTimedOut
from callserver.sip.headers import parse_address
from callserver.sip.message import Request, Response
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.uri import parse_uri
from tests.sip.pair import BOB, Pair

ROUTE = "<sip:edge.example.net;lr>"


def _options(pair: Pair, method: str = "OPTIONS", **kwargs: object) -> TransactionKey:
    """Alice sends ``method`` to bob outside any dialog; returns its handle."""
    handle = pair.alice.uac.request(
        method,
        parse_uri("sip:bob@127.0.0.1:5060"),
        from_addr=parse_address("<sip:alice@127.0.0.1:5061>"),
        to_addr=parse_address("<sip:bob@127.0.0.1:5060>"),
        peer=BOB,
        now=pair.now,
        **kwargs,  # type: ignore[arg-type]
    )
    pair.flush()
    return handle


def _sent_requests(pair: Pair, method: str) -> list[Request]:
    sent = pair.sent("alice", lambda m: isinstance(m, Request) and m.method == method)
    return [m for m in sent if isinstance(m, Request)]


def test_options_is_answered_and_the_response_carries_the_handle() -> None:
    """Bob's core answers OPTIONS 200; alice's application gets it under the request's handle."""
    pair = Pair.create()
    handle = _options(pair, headers=(("Accept", "application/sdp"),))
    (response,) = pair.take("alice", ResponseReceived)
    assert isinstance(response, ResponseReceived)
    assert (response.key, response.response.status) == (handle, 200)
    assert response.response.cseq().method == "OPTIONS"


def test_the_request_has_the_mandatory_fields_a_from_tag_and_the_given_headers() -> None:
    """§8.1.1: Via with a branch, Max-Forwards 70, a From tag, CSeq 1; Route and Accept kept."""
    pair = Pair.create()
    _options(pair, headers=(("Route", ROUTE), ("Accept", "application/sdp")))
    (sent,) = _sent_requests(pair, "OPTIONS")
    assert str(sent.uri) == "sip:bob@127.0.0.1:5060"
    assert sent.from_().tag and sent.to().tag is None
    assert (sent.cseq().seq, sent.headers.get("Max-Forwards")) == (1, "70")
    assert "branch=z9hG4bK" in (sent.headers.get("Via") or "")
    assert sent.headers.get_all("Route") == [ROUTE]
    assert sent.headers.get("Accept") == "application/sdp"


def test_silence_is_retransmitted_then_timer_f_reports_the_handle() -> None:
    """Over UDP the request is sent again (Timer E) and after 64*T1 Timer F names the handle."""
    pair = Pair.create()
    pair.drop = lambda message: True
    handle = _options(pair)
    pair.advance(pair.alice.config.timers.timer_f - 0.1)
    assert pair.take("alice", TransactionTimedOut) == []
    assert len(_sent_requests(pair, "OPTIONS")) > 1
    pair.advance(0.2)
    (timed_out,) = pair.take("alice", TransactionTimedOut)
    assert isinstance(timed_out, TransactionTimedOut)
    assert (timed_out.key, timed_out.request.method) == (handle, "OPTIONS")


def test_an_error_response_reaches_the_application_like_a_2xx() -> None:
    """A final error response (bob refusing the method) also comes up under the handle."""
    pair = Pair.create()
    handle = _options(pair, method="SUBSCRIBE")
    finals = [e for e in pair.take("alice", ResponseReceived) if isinstance(e, ResponseReceived)]
    assert [(e.key, e.response.status >= 400) for e in finals] == [(handle, True)]
    assert isinstance(finals[0].response, Response)


@pytest.mark.parametrize("method", ["INVITE", "ACK", "CANCEL"])
def test_invite_ack_and_cancel_are_refused(method: str) -> None:
    """INVITE, ACK and CANCEL have their own methods: request() raises ValueError for them."""
    pair = Pair.create()
    with pytest.raises(ValueError, match=method):
        _options(pair, method=method)
