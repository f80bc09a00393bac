"""RFC 3263 resolution against a real DNS server on 127.0.0.1 (dnslib), through dnspython."""

from __future__ import annotations

import random

import pytest

from callserver.sip.uri import SipUri, parse_uri
from callserver.transport.locating import Target
from callserver.transport.resolver import ResolutionError, SipResolver
from tests.transport.dns_server import ZoneServer

ZONE = """
pbx.test.             300 IN NAPTR 20 10 "s" "SIP+D2U" "" _sip._udp.pbx.test.
pbx.test.             300 IN NAPTR 10 10 "s" "SIP+D2T" "" _sip._tcp.pbx.test.
pbx.test.             300 IN NAPTR 5 10 "s" "SIPS+D2T" "" _sips._tcp.pbx.test.
_sip._tcp.pbx.test.   300 IN SRV 20 0 5072 backup.pbx.test.
_sip._tcp.pbx.test.   300 IN SRV 10 0 5071 main.pbx.test.
_sip._udp.pbx.test.   300 IN SRV 10 0 5070 main.pbx.test.
main.pbx.test.        60 IN A 127.0.0.2
main.pbx.test.        60 IN AAAA ::1
backup.pbx.test.      60 IN A 127.0.0.3
srv-only.test.        300 IN A 127.0.0.9
_sip._udp.srv-only.test. 300 IN SRV 10 0 5080 main.pbx.test.
_sip._tcp.tcp-only.test. 300 IN SRV 10 0 5090 backup.pbx.test.
plain.test.           120 IN A 127.0.0.4
gone.test.            300 IN SRV 0 0 0 .
_sip._udp.gone.test.  300 IN SRV 0 0 0 .
bad-target.test.      300 IN A 127.0.0.5
_sip._udp.bad-target.test. 300 IN SRV 10 0 5060 nowhere.test.
"""


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _uri(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


def _resolver(zone: ZoneServer, clock: Clock | None = None, **options: object) -> SipResolver:
    return SipResolver(
        clock=clock or Clock(),
        nameservers=[zone.nameserver],
        timeout=0.3,
        rng=random.Random(0),
        **options,  # type: ignore[arg-type]
    )


def _t(transport: str, host: str, port: int) -> Target:
    return Target(transport=transport, host=host, port=port)  # type: ignore[arg-type]


async def test_naptr_picks_the_transport_and_srv_the_order_of_targets() -> None:
    """NAPTR prefers TCP (order 10; TLS is not ours), SRV priority 10 before 20, A then AAAA."""
    with ZoneServer(ZONE) as zone:
        targets = await _resolver(zone).resolve(_uri("sip:+38761200300@pbx.test"))
    assert targets == (
        _t("tcp", "127.0.0.2", 5071),
        _t("tcp", "::1", 5071),
        _t("tcp", "127.0.0.3", 5072),
    )


async def test_an_ip_literal_needs_no_dns() -> None:
    """An IPv4 or IPv6 literal is its own target: no query leaves, the port defaults to 5060."""
    with ZoneServer(ZONE) as zone:
        resolver = _resolver(zone)
        assert await resolver.resolve(_uri("sip:1@192.0.2.7")) == (_t("udp", "192.0.2.7", 5060),)
        assert await resolver.resolve(_uri("sip:1@[::1]:5070;transport=tcp")) == (
            _t("tcp", "::1", 5070),
        )
        assert zone.total() == 0


async def test_an_explicit_port_means_a_and_aaaa_only() -> None:
    """A host name with a port skips NAPTR and SRV; the transport is UDP for sip:."""
    with ZoneServer(ZONE) as zone:
        targets = await _resolver(zone).resolve(_uri("sip:1@main.pbx.test:5099"))
        assert zone.count("main.pbx.test", "NAPTR") == 0
        assert zone.count("_sip._udp.main.pbx.test", "SRV") == 0
    assert targets == (_t("udp", "127.0.0.2", 5099), _t("udp", "::1", 5099))


async def test_a_transport_parameter_skips_naptr_and_asks_its_srv() -> None:
    """transport=udp: no NAPTR query, _sip._udp's records, the SRV port."""
    with ZoneServer(ZONE) as zone:
        targets = await _resolver(zone).resolve(_uri("sip:1@pbx.test;transport=udp"))
        assert zone.count("pbx.test", "NAPTR") == 0
    assert targets == (_t("udp", "127.0.0.2", 5070), _t("udp", "::1", 5070))


async def test_without_naptr_the_srv_of_each_transport_is_asked_in_our_order() -> None:
    """No NAPTR: _sip._udp first; a domain with only _sip._tcp gets TCP."""
    with ZoneServer(ZONE) as zone:
        resolver = _resolver(zone, families=(4,))
        udp = await resolver.resolve(_uri("sip:1@srv-only.test"))
        tcp = await resolver.resolve(_uri("sip:1@tcp-only.test"))
    assert udp == (_t("udp", "127.0.0.2", 5080),)
    assert tcp == (_t("tcp", "127.0.0.3", 5090),)


async def test_without_naptr_or_srv_the_a_record_and_5060_over_udp() -> None:
    """A plain host name: its A record, UDP, port 5060 (RFC 3263 §4.1, §4.2)."""
    with ZoneServer(ZONE) as zone:
        targets = await _resolver(zone, families=(4,)).resolve(_uri("sip:1@plain.test"))
        assert zone.count("plain.test", "AAAA") == 0  # no IPv6 socket: not asked
    assert targets == (_t("udp", "127.0.0.4", 5060),)


async def test_answers_are_cached_for_their_ttl_on_the_injected_clock() -> None:
    """Inside its TTL an answer is not asked again (A: 120 s, empty ones: 30 s), past it it is."""
    clock = Clock()
    with ZoneServer(ZONE) as zone:
        resolver = _resolver(zone, clock, families=(4,))
        await resolver.resolve(_uri("sip:1@plain.test"))
        asked = zone.count("plain.test", "A")
        clock.now += 119
        await resolver.resolve(_uri("sip:1@plain.test"))
        assert zone.count("plain.test", "A") == asked == 1
        # The empty NAPTR and SRV answers lived for the SOA minimum (30 s) only.
        assert zone.count("plain.test", "NAPTR") == 2
        assert resolver.statistics().cache_hits == 1
        clock.now += 2
        await resolver.resolve(_uri("sip:1@plain.test"))
        assert zone.count("plain.test", "A") == 2


async def test_a_missing_name_is_an_error_and_its_nxdomain_is_cached() -> None:
    """NXDOMAIN: a clear ResolutionError; asking again within the SOA minimum sends nothing."""
    with ZoneServer(ZONE, negative_ttl=30) as zone:
        resolver = _resolver(zone, families=(4,))
        with pytest.raises(ResolutionError, match=r"nothing\.test has no A record"):
            await resolver.resolve(_uri("sip:1@nothing.test"))
        sent = zone.total()
        with pytest.raises(ResolutionError):
            await resolver.resolve(_uri("sip:1@nothing.test"))
        assert zone.total() == sent


async def test_a_timeout_is_an_error_and_is_not_cached() -> None:
    """A nameserver that never answers: "no answer in 0.3 s", and the next call asks again."""
    with ZoneServer(ZONE, silent=["slow.test"]) as zone:
        resolver = _resolver(zone)
        with pytest.raises(ResolutionError, match=r"NAPTR slow\.test: no answer in 0\.3 s"):
            await resolver.resolve(_uri("sip:1@slow.test"))
        with pytest.raises(ResolutionError):
            await resolver.resolve(_uri("sip:1@slow.test"))
        assert zone.count("slow.test", "NAPTR") >= 2
        assert resolver.statistics().failures == 2


async def test_srv_target_dot_says_the_service_is_not_there() -> None:
    """SRV "." is a clear refusal, not a fall-back to the A record."""
    with ZoneServer(ZONE) as zone, pytest.raises(ResolutionError, match="not available"):
        await _resolver(zone).resolve(_uri("sip:1@gone.test"))


async def test_srv_targets_without_addresses_are_an_error() -> None:
    """An SRV target with no A record leaves nothing to try: the error names the SRV name."""
    with (
        ZoneServer(ZONE) as zone,
        pytest.raises(ResolutionError, match=r"_sip\._udp\.bad-target\.test: no SRV target"),
    ):
        await _resolver(zone, families=(4,)).resolve(_uri("sip:1@bad-target.test"))


async def test_transports_we_do_not_listen_on_are_refused_clearly() -> None:
    """sips: needs TLS; a server listening on UDP only cannot take transport=tcp."""
    with ZoneServer(ZONE) as zone:
        with pytest.raises(ResolutionError, match="tls is needed"):
            await _resolver(zone).resolve(_uri("sips:1@pbx.test"))
        with pytest.raises(ResolutionError, match="listens on udp"):
            await _resolver(zone, transports=("udp",)).resolve(
                _uri("sip:1@pbx.test:5060;transport=tcp")
            )
        with pytest.raises(ResolutionError, match="does not send over IPv6"):
            await _resolver(zone, families=(4,)).resolve(_uri("sip:1@[::1]"))


async def test_naptr_of_a_transport_we_lack_falls_to_the_next() -> None:
    """A server on UDP only skips the TCP NAPTR record and takes the UDP one."""
    with ZoneServer(ZONE) as zone:
        targets = await _resolver(zone, transports=("udp",), families=(4,)).resolve(
            _uri("sip:1@pbx.test")
        )
    assert targets == (_t("udp", "127.0.0.2", 5070),)


async def test_the_answers_held_for_a_name_are_listed_with_their_time_left() -> None:
    """After a lookup, cached lists the name's NAPTR, the SRV it led to and the targets'
    addresses, with the seconds left on the resolver's clock; an IP address has none."""
    clock = Clock()
    with ZoneServer(ZONE) as zone:
        resolver = _resolver(zone, clock)
        await resolver.resolve(_uri("sip:+38761200300@pbx.test"))
    clock.now += 10
    held = {(a.name, a.kind): (a.records, a.expires_in) for a in resolver.cached("PBX.test.")}
    assert held[("pbx.test", "NAPTR")][1] == 290.0
    assert '10 10 "s" "SIP+D2T" "" _sip._tcp.pbx.test' in held[("pbx.test", "NAPTR")][0]
    records, left = held[("_sip._tcp.pbx.test", "SRV")]  # in the order DNS gave them
    assert (sorted(records), left) == (
        ["10 0 5071 main.pbx.test", "20 0 5072 backup.pbx.test"],
        290.0,
    )
    assert held[("main.pbx.test", "A")] == (("127.0.0.2",), 50.0)
    assert held[("backup.pbx.test", "A")] == (("127.0.0.3",), 50.0)
    assert resolver.cached("pbx.test")[0].view()["expires_in"] == 290
    assert resolver.cached("192.0.2.7") == []
