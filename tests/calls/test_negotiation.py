"""Tests for the SDP offer/answer of inbound calls (callserver.calls.negotiation).

The endpoint and the media engine are stand-ins that keep what the negotiation asks of them;
the SDP is real text through the real parser and offer/answer rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import structlog

from callserver.calls.call import Call
from callserver.calls.negotiation import Negotiation
from callserver.calls.services import CallServices, Provisioned
from callserver.config.settings import Settings
from callserver.media.negotiated import StreamConfig
from callserver.sip.sdp import parse_sdp

CALLER_SDP = (
    "v=0\r\no=phone 1 1 IN IP4 192.0.2.7\r\ns=-\r\nc=IN IP4 192.0.2.7\r\nt=0 0\r\n"
    "m=audio 4000 RTP/AVP {formats}\r\na=rtpmap:101 telephone-event/8000\r\n"
)


@dataclass
class _Stream:
    port: int = 20000


@dataclass
class _Media:
    configured: list[StreamConfig] = field(default_factory=list)

    def configure(self, stream: object, config: StreamConfig) -> None:
        self.configured.append(config)


@dataclass
class _Endpoint:
    responses: list[tuple[int, bytes]] = field(default_factory=list)

    def respond(self, key: object, status: int, now: float, *, body: bytes = b"") -> None:
        self.responses.append((status, body))


@dataclass
class _Manager:
    settings: Settings = field(default_factory=Settings)
    media_host: str = "198.51.100.1"
    media: _Media = field(default_factory=_Media)
    endpoint: _Endpoint = field(default_factory=_Endpoint)


def _setup() -> tuple[Negotiation, _Manager, Call]:
    manager = _Manager()
    call = Call(call_id="c1", key="k1", offered_at=0.0, sdp_session=7)
    call.stream = cast(Any, _Stream())
    call.log = structlog.get_logger("test")
    services = CallServices(
        endpoint=cast(Any, manager.endpoint),
        media=cast(Any, manager.media),
        media_host=manager.media_host,
        admission=cast(Any, None),
        reporter=cast(Any, None),
        loop=cast(Any, None),
        wake=lambda: None,
        live=Provisioned(
            settings=manager.settings, tariffs=cast(Any, None), prompts=cast(Any, None)
        ),
    )
    return Negotiation(services), manager, call


def test_an_offer_of_both_laws_is_answered_with_both_in_operator_order() -> None:
    """Offer 0 8 101: answer 8 0 101; we send PCMA and take PCMU as well."""
    negotiation, _, call = _setup()
    answer = negotiation.answer(call, CALLER_SDP.format(formats="0 8 101").encode())
    assert answer is not None
    body, config = answer
    assert parse_sdp(body).media[0].formats == ("8", "0", "101")
    assert (config.codec, config.receive) == ("PCMA", ((8, "PCMA"), (0, "PCMU")))


def test_late_offer_then_the_answer_in_the_ack() -> None:
    """Our offer lists every codec and telephone-event; the ACK's answer configures PCMU."""
    negotiation, manager, call = _setup()
    offer = parse_sdp(negotiation.offer(call))
    assert offer.media[0].formats == ("8", "0", "101")
    assert (offer.origin.sess_id, offer.origin.sess_version, offer.media[0].port) == (7, 1, 20000)
    assert negotiation.take_answer(call, CALLER_SDP.format(formats="0 101").encode())
    (config,) = manager.media.configured
    assert (config.codec, config.telephone_event_pt, config.remote_port) == ("PCMU", 101, 4000)
    assert call.offer is None and call.answer is not None


def test_an_ack_without_a_usable_answer_settles_the_offer_and_configures_nothing() -> None:
    """No SDP, or SDP with no codec we offered: False, nothing configured, offer dropped."""
    for body in (b"", CALLER_SDP.format(formats="18").encode()):
        negotiation, manager, call = _setup()
        negotiation.offer(call)
        assert not negotiation.take_answer(call, body)
        assert manager.media.configured == [] and call.offer is None


def test_reinvite_without_sdp_gets_our_offer_one_version_up() -> None:
    """A bodiless re-INVITE is answered 200 with our offer, o= version 2 (RFC 3264 §8)."""
    negotiation, manager, call = _setup()
    negotiation.reinvited(call, "k2", b"", 1.0)
    ((status, body),) = manager.endpoint.responses
    assert status == 200 and parse_sdp(body).origin.sess_version == 2
    assert call.offer is not None
    negotiation.reinvited(call, "k3", b"not sdp", 2.0)
    assert manager.endpoint.responses[-1] == (488, b"")
