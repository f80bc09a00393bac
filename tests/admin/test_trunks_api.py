"""``/api/trunks`` and ``/api/routes`` of an in-process server, on a real port."""

from __future__ import annotations

import json
from pathlib import Path

from callserver.admin.trunks_api import match_text
from callserver.config.trunks import parse_match
from callserver.sip.uri import SipUri, parse_uri
from tests.admin.provisioned import provisioned
from tests.admin.tokens import ACME, GLOBEX
from tests.transport.dns_server import ZoneServer

ZONE = """
_sip._udp.pbx.test. 300 IN SRV 10 0 5070 main.pbx.test.
main.pbx.test.      60 IN A 127.0.0.2
"""


async def test_the_operator_lists_every_trunk_without_a_credential(tmp_path: Path) -> None:
    """Each trunk with its customer, match, channels, rate and auth kind; no password."""
    async with provisioned(tmp_path) as api:
        await api.call("trunks-1")
        status, body = await api.request("GET", "/api/trunks")
    assert status == 200
    acme, carrier, globex = body["trunks"]
    assert acme == {
        "name": "acme-pbx",
        "customer": "acme",
        "match": ["127.0.0.1"],
        "channels": 2,
        "channels_in_use": 1,
        "cps": 50.0,
        "cps_burst": None,
        "auth": "address",
        "barring": [],
        "number": None,
    }
    assert carrier["match"] == ["192.0.2.0/24:5060", "[2001:db8::]/32:5061"]
    assert (carrier["customer"], carrier["channels"]) == (None, None)
    assert (globex["auth"], globex["match"]) == ("digest", [])
    text = json.dumps(body)
    assert "globex-trunk-password" not in text and "globex-7" not in text


async def test_a_customer_token_sees_its_own_trunks_only(tmp_path: Path) -> None:
    """globex lists its trunk; acme's trunk and the operator's are 404 to it."""
    async with provisioned(tmp_path) as api:
        _, listed = await api.request("GET", "/api/trunks", GLOBEX)
        own = await api.request("GET", "/api/trunks/globex-pbx", GLOBEX)
        other = await api.request("GET", "/api/trunks/acme-pbx", GLOBEX)
        operators = await api.request("GET", "/api/trunks/carrier-in", GLOBEX)
    assert [t["name"] for t in listed["trunks"]] == ["globex-pbx"]
    assert own[0] == 200 and own[1]["channels"] == 4
    assert other == (404, {"error": "no trunk 'acme-pbx' in config/trunks.yaml"})
    assert operators[0] == 404


async def test_routes_are_the_operators_with_the_dns_answers_held(tmp_path: Path) -> None:
    """A route's host name shows the SRV and A answers the resolver holds after a lookup."""
    with ZoneServer(ZONE) as zone:
        host, port = zone.nameserver
        dns = {"dns": {"nameservers": [f"{host}:{port}"], "timeout": 1.0}}
        async with provisioned(tmp_path, dns) as api:
            uri = parse_uri("sip:+38761000000@pbx.test;transport=udp")
            assert isinstance(uri, SipUri)
            await api.server.calls.forwarder.resolver.resolve(uri)
            status, body = await api.request("GET", "/api/routes")
            refused = await api.request("GET", "/api/routes", ACME)
    assert status == 200
    carrier, pstn = sorted(body["routes"], key=lambda route: route["name"])
    assert pstn == {
        "name": "pstn",
        "host": "127.0.0.1",
        "port": 5090,
        "transport": None,
        "prefixes": [],
        "auth": None,
        "default": True,
        "emergency": False,
        "dns": [],
    }
    assert (carrier["auth"], carrier["prefixes"], carrier["default"]) == ("digest", ["+"], False)
    answers = [(a["name"], a["type"], a["records"]) for a in carrier["dns"]]
    assert answers == [
        ("_sip._udp.pbx.test", "SRV", ["10 0 5070 main.pbx.test"]),
        ("main.pbx.test", "A", ["127.0.0.2"]),
    ]
    assert all(0 < a["expires_in"] <= 300 for a in carrier["dns"])
    assert "route-password" not in json.dumps(body)
    assert refused[0] == 403 and "operator token" in refused[1]["error"]


def test_match_entries_read_as_trunks_yaml_writes_them() -> None:
    """An address, a network, a port and an IPv6 network with a port round-trip."""
    for text in ("192.0.2.10", "198.51.100.0/24:5060", "[2001:db8::]/32:5060", "::1", "[::1]:5061"):
        assert match_text(parse_match(text)) == text
