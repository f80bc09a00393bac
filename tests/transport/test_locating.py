"""RFC 3263 §4 and RFC 2782 selection rules: NAPTR order, SRV priority and weight, defaults."""

from __future__ import annotations

import random
from collections import Counter

from callserver.transport.locating import (
    NaptrRecord,
    SrvRecord,
    default_port,
    default_transport,
    ip_literal,
    order_naptr,
    order_srv,
    srv_name,
)


def _naptr(order: int, preference: int, service: str, flags: str = "s") -> NaptrRecord:
    name = service.lower().replace("+", "-")
    return NaptrRecord(
        order=order, preference=preference, flags=flags, service=service, replacement=name
    )


def _srv(priority: int, weight: int, target: str, port: int = 5060) -> SrvRecord:
    return SrvRecord(priority=priority, weight=weight, port=port, target=target)


def test_naptr_records_are_taken_by_order_then_preference() -> None:
    """Order decides first, preference only between records of the same order."""
    records = [
        _naptr(20, 10, "SIP+D2U"),
        _naptr(10, 50, "SIP+D2U"),
        _naptr(10, 5, "SIP+D2T"),
    ]
    chosen = order_naptr(records, secure=False, transports=("udp", "tcp"))
    assert chosen == [("tcp", "sip-d2t"), ("udp", "sip-d2u"), ("udp", "sip-d2u")]


def test_naptr_records_of_unsupported_services_and_flags_are_discarded() -> None:
    """TLS we do not speak, E.164 services and non-"s" flags are dropped (RFC 3263 §4.1)."""
    records = [
        _naptr(10, 10, "SIPS+D2T"),
        _naptr(10, 20, "E2U+sip"),
        _naptr(10, 30, "SIP+D2U", flags="a"),
        _naptr(20, 10, "sip+d2t", flags="S"),
    ]
    assert order_naptr(records, secure=False, transports=("udp", "tcp")) == [("tcp", "sip-d2t")]


def test_a_sips_uri_keeps_only_sips_services() -> None:
    """A SIPS URI discards every service that is not SIPS, even ones we could send on."""
    records = [_naptr(10, 10, "SIP+D2U"), _naptr(20, 10, "SIPS+D2T")]
    assert order_naptr(records, secure=True, transports=("udp", "tcp", "tls")) == [
        ("tls", "sips-d2t")
    ]
    assert order_naptr(records, secure=True, transports=("udp", "tcp")) == []


def test_srv_records_go_by_priority_lowest_first() -> None:
    """Every record of priority 10 comes before any of priority 20, whatever the weights."""
    records = [_srv(20, 100, "c"), _srv(10, 1, "a"), _srv(10, 1, "b"), _srv(30, 0, "d")]
    for seed in range(20):
        ordered = order_srv(records, random.Random(seed))
        assert [r.target for r in ordered][2:] == ["c", "d"]
        assert {r.target for r in ordered[:2]} == {"a", "b"}


def test_srv_weights_share_out_the_first_choice() -> None:
    """Within one priority, a record of weight 80 comes first about 4 times as often as 20."""
    records = [_srv(10, 20, "light"), _srv(10, 80, "heavy")]
    rng = random.Random(3263)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(4000))
    share = firsts["heavy"] / 4000
    assert 0.76 < share < 0.84, firsts


def test_srv_weight_zero_is_chosen_first_only_rarely() -> None:
    """A weight-0 record goes first only when the random draw is 0: 1 in (sum + 1)."""
    records = [_srv(10, 0, "zero"), _srv(10, 9, "nine")]
    rng = random.Random(2782)
    firsts = Counter(order_srv(records, rng)[0].target for _ in range(5000))
    assert 0.06 < firsts["zero"] / 5000 < 0.14, firsts


def test_srv_records_all_of_weight_zero_keep_their_order() -> None:
    """With no weights to share by, records keep the order of the answer."""
    records = [_srv(10, 0, "a"), _srv(10, 0, "b"), _srv(10, 0, "c")]
    assert [r.target for r in order_srv(records, random.Random(1))] == ["a", "b", "c"]


def test_srv_target_dot_means_no_service() -> None:
    """A target of "." says the service is decidedly not available: nothing to try."""
    assert order_srv([_srv(0, 0, ".")], random.Random(0)) == []


def test_defaults_and_names_follow_rfc_3263() -> None:
    """UDP and 5060 for sip:, TLS and 5061 for sips:, _sips._tcp for TLS SRV names."""
    assert default_transport(False) == "udp" and default_transport(True) == "tls"
    assert default_port("udp") == default_port("tcp") == 5060 and default_port("tls") == 5061
    assert srv_name("udp", "example.test") == "_sip._udp.example.test"
    assert srv_name("tcp", "example.test") == "_sip._tcp.example.test"
    assert srv_name("tls", "example.test") == "_sips._tcp.example.test"


def test_ip_literals_are_told_from_host_names() -> None:
    """IPv4, bracketed or bare IPv6 are literals (brackets dropped); names are not."""
    assert ip_literal("192.0.2.1") == "192.0.2.1"
    assert ip_literal("[2001:DB8::1]") == "2001:db8::1"
    assert ip_literal("::1") == "::1"
    assert ip_literal("pbx.example.test") is None
    assert ip_literal("1.2.3") is None
