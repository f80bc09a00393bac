"""config/trunks.yaml: schema, file:line errors, and trunk identification by source address."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.errors import OperatorFileError
from callserver.config.trunks import TrunksFile, TrunkTable, load_trunks, parse_match

SHIPPED = Path(__file__).parents[2] / "config" / "trunks.yaml"


def table(text: str, tmp_path: Path) -> TrunkTable:
    path = tmp_path / "trunks.yaml"
    path.write_text(text)
    return TrunkTable(load_trunks(path))


def test_shipped_file_admits_local_tests_only() -> None:
    """The example file loads, names 127.0.0.1 and ::1 as the test trunk and nothing else."""
    trunks = TrunkTable(load_trunks(SHIPPED))
    assert trunks.identify("127.0.0.1", 5060) == "test"
    assert trunks.identify("::1", 40000) == "test"
    assert trunks.identify("192.0.2.99", 5060) is None
    assert not trunks.config.allow_unknown_sources
    assert trunks.channel_limits() == {"customer:callcentre-demo": 3}


@pytest.mark.parametrize(
    ("text", "network", "port"),
    [
        ("192.0.2.10", "192.0.2.10/32", None),
        ("198.51.100.0/24", "198.51.100.0/24", None),
        ("192.0.2.10:5062", "192.0.2.10/32", 5062),
        ("198.51.100.7/24:5060", "198.51.100.0/24", 5060),
        ("2001:db8::1", "2001:db8::1/128", None),
        ("[2001:db8::]/32:5060", "2001:db8::/32", 5060),
    ],
)
def test_match_syntax(text: str, network: str, port: int | None) -> None:
    """Addresses, CIDR networks, ports and bracketed IPv6 all parse."""
    match = parse_match(text)
    assert (str(match.network), match.port) == (network, port)


@pytest.mark.parametrize("text", ["example.com", "192.0.2.300", "192.0.2.1:sip", "10.0.0.0/33"])
def test_bad_match_is_refused(text: str) -> None:
    """Something that is not an address or network gives a ValueError naming it."""
    with pytest.raises(ValueError, match=r"is not an IP|port must be a number"):
        parse_match(text)


def test_longest_prefix_and_port_specific_entries_win(tmp_path: Path) -> None:
    """A /32 beats a /24, and an entry with the source's port beats one without."""
    trunks = table(
        "trunks:\n"
        "  wide: {match: [192.0.2.0/24]}\n"
        "  host: {match: [192.0.2.10]}\n"
        "  port: {match: ['192.0.2.10:5070']}\n",
        tmp_path,
    )
    assert trunks.identify("192.0.2.10", 5070) == "port"
    assert trunks.identify("192.0.2.10", 5060) == "host"
    assert trunks.identify("192.0.2.11", 5060) == "wide"
    assert trunks.identify("not-an-ip", 5060) is None


def test_profiles_and_limits(tmp_path: Path) -> None:
    """A call takes its trunk's, its customer's and its called number's channel profiles."""
    trunks = table(
        "customers:\n  acme: {channels: 3}\n"
        "trunks:\n  pbx: {match: [192.0.2.10], customer: acme, channels: 2, cps: 5}\n"
        "numbers:\n  '+38733123456': {channels: 1}\n",
        tmp_path,
    )
    assert trunks.profiles("pbx", "+38733123456") == [
        "trunk:pbx",
        "customer:acme",
        "number:38733123456",
    ]
    assert trunks.channel_limits() == {
        "trunk:pbx": 2,
        "customer:acme": 3,
        "number:38733123456": 1,
    }


def test_agent_licences_default_to_none(tmp_path: Path) -> None:
    """A customer's ``agents`` is its call-centre licence count; left out, it has none."""
    trunks = table("customers:\n  acme: {channels: 3, agents: 2}\n  beta: {}\n", tmp_path)
    assert trunks.config.customers["acme"].agents == 2
    assert trunks.config.customers["beta"].agents == 0
    assert TrunkTable(load_trunks(SHIPPED)).config.customers["callcentre-demo"].agents == 2


def test_errors_name_file_line_and_field(tmp_path: Path) -> None:
    """Each error is file:line: field: message; an unknown customer is named."""
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "trunks:\n"
        "  pbx:\n"
        "    match: [192.0.2.10]\n"
        "    channels: -1\n"
        "  bad:\n"
        "    match: [not-an-address]\n"
        "    chanels: 2\n"
    )
    with pytest.raises(OperatorFileError) as info:
        load_trunks(path)
    text = "\n".join(info.value.errors)
    assert f"{path}:6: trunks.bad.match" in text
    assert f"{path}:7: trunks.bad.chanels" in text
    assert f"{path}:4: trunks.pbx.channels" in text


def test_unknown_customer_is_named(tmp_path: Path) -> None:
    """A trunk naming a customer the file does not define is an error."""
    path = tmp_path / "trunks.yaml"
    path.write_text("trunks:\n  pbx: {match: [192.0.2.10], customer: nobody}\n")
    with pytest.raises(OperatorFileError, match="customer 'nobody' is not defined"):
        load_trunks(path)


def test_missing_file_means_no_trunks(tmp_path: Path) -> None:
    """Without a trunks file there are no trunks and unknown sources are refused."""
    assert load_trunks(tmp_path / "absent.yaml") == TrunksFile()


def test_digest_trunk_schema_hides_the_password(tmp_path: Path) -> None:
    """A trunk may have digest credentials and no match; its password never shows in a repr."""
    trunks = table(
        "digest: {realm: sip.example.net, challenge: 401, algorithms: [MD5], nonce_lifetime: 60}\n"
        "trunks:\n"
        "  branch: {digest: {username: branch7, password: hunter2}}\n"
        "  hq:\n"
        "    match: [198.51.100.0/24]\n"
        "    digest: {username: hq, password: hq-pass}\n",
        tmp_path,
    )
    digest = trunks.config.digest
    assert (digest.realm, digest.challenge, digest.algorithms) == ("sip.example.net", 401, ["MD5"])
    assert digest.nonce_lifetime == 60
    branch = trunks.config.trunks["branch"]
    assert branch.match == [] and branch.digest is not None
    assert branch.digest.password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(trunks.config) and "hunter2" not in str(trunks.config)


def test_digest_defaults() -> None:
    """Without a digest section: realm callserver, 407, SHA-256 then MD5, 300 s nonces."""
    digest = TrunksFile().digest
    assert (digest.realm, digest.challenge, digest.algorithms, digest.nonce_lifetime) == (
        "callserver",
        407,
        ["SHA-256", "MD5"],
        300,
    )


def test_digest_trunks_are_not_identified_by_address(tmp_path: Path) -> None:
    """identify skips trunks with credentials; covers and digest_trunk describe them."""
    trunks = table(
        "trunks:\n"
        "  pbx: {match: [192.0.2.0/24]}\n"
        "  hq: {match: [192.0.2.10], digest: {username: hq, password: p}}\n"
        "  branch: {digest: {username: branch7, password: p}}\n",
        tmp_path,
    )
    assert trunks.identify("192.0.2.10", 5060) == "pbx"
    assert trunks.has_digest
    assert (trunks.digest_trunk("hq"), trunks.digest_trunk("HQ")) == ("hq", None)
    assert trunks.covers("hq", "192.0.2.10", 5060)
    assert not trunks.covers("hq", "192.0.2.11", 5060)
    assert not trunks.covers("hq", "not-an-ip", 5060)
    assert trunks.covers("branch", "203.0.113.9", 5060)
    assert not table("trunks:\n  pbx: {match: [192.0.2.1]}\n", tmp_path).has_digest


def test_trunk_needs_match_or_digest(tmp_path: Path) -> None:
    """A trunk with neither match nor digest is refused at its own line."""
    path = tmp_path / "trunks.yaml"
    path.write_text("trunks:\n  pbx: {match: [192.0.2.1]}\n  empty:\n    channels: 2\n")
    with pytest.raises(OperatorFileError) as info:
        load_trunks(path)
    assert info.value.errors == [
        f"{path}:3: trunks.empty: a trunk needs a match (source addresses) or digest credentials"
    ]


def test_digest_usernames_are_unique(tmp_path: Path) -> None:
    """Two trunks with the same digest username are an error naming both."""
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "trunks:\n"
        "  a: {digest: {username: same, password: x}}\n"
        "  b: {digest: {username: same, password: y}}\n"
    )
    with pytest.raises(
        OperatorFileError, match=r"trunks 'a' and 'b' have the same digest username"
    ):
        load_trunks(path)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("digest: {challenge: 403}\n", "digest.challenge"),
        ("digest: {algorithms: [SHA-512]}\n", "digest.algorithms.0"),
        ("digest: {algorithms: [MD5, MD5]}\n", "digest.algorithms"),
        ("digest: {algorithms: []}\n", "digest.algorithms"),
        ("digest: {nonce_lifetime: 0}\n", "digest.nonce_lifetime"),
        ("trunks:\n  a: {digest: {username: u}}\n", "trunks.a.digest.password"),
        ("trunks:\n  a: {digest: {username: '', password: p}}\n", "trunks.a.digest.username"),
    ],
)
def test_bad_digest_settings_are_named(tmp_path: Path, text: str, field: str) -> None:
    """Every bad digest setting is reported with the file, its line and its field."""
    path = tmp_path / "trunks.yaml"
    path.write_text(text)
    with pytest.raises(OperatorFileError) as info:
        load_trunks(path)
    assert any(
        error.startswith(f"{path}:") and f": {field}:" in error for error in info.value.errors
    )


def test_routes_take_host_names_with_or_without_port_and_transport(tmp_path: Path) -> None:
    """A host name or an IP is a route's host; port and transport stay unset unless written."""
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "routes:\n"
        "  carrier: {host: sip.carrier.example}\n"
        "  pbx: {host: pbx.example, port: 5080, transport: tcp}\n"
        "  gw: {host: '2001:db8::5'}\n"
    )
    routes = load_trunks(path).routes
    assert (routes["carrier"].host, routes["carrier"].port, routes["carrier"].transport) == (
        "sip.carrier.example",
        None,
        None,
    )
    assert (routes["pbx"].port, routes["pbx"].transport) == (5080, "tcp")
    assert routes["gw"].host == "2001:db8::5"


@pytest.mark.parametrize("host", ["bad host", "a..b", "-x.example", "_sip._udp.example", ""])
def test_a_route_host_that_is_no_name_or_ip_is_named_at_its_line(tmp_path: Path, host: str) -> None:
    """A route host that is neither an IP address nor a host name is an error at its line."""
    path = tmp_path / "trunks.yaml"
    path.write_text(f"routes:\n  pstn:\n    host: '{host}'\n")
    with pytest.raises(OperatorFileError) as info:
        load_trunks(path)
    assert info.value.errors[0].startswith(f"{path}:3: routes.pstn.host: ")


def test_lockout_thresholds_are_checked_with_file_and_line(tmp_path: Path) -> None:
    """digest.lockout: slowing after more failures than refusing, or an unknown answer, is an
    error naming the line; the defaults hold without the section."""
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "digest:\n  lockout:\n    slow_after: 5\n    refuse_after: 3\n    answer: 404\n"
    )
    with pytest.raises(OperatorFileError) as info:
        load_trunks(path)
    text = "\n".join(info.value.errors)
    assert f"{path}:5: digest.lockout.answer" in text
    path.write_text("digest:\n  lockout: {slow_after: 5, refuse_after: 3}\n")
    with pytest.raises(
        OperatorFileError, match=r"slow_after \(5\) must not be more than refuse_after"
    ):
        load_trunks(path)
    lockout = TrunksFile().digest.lockout
    assert (lockout.slow_after, lockout.refuse_after, lockout.penalty, lockout.answer) == (
        3,
        10,
        900,
        "drop",
    )


def test_originating_fields_load_normalised(tmp_path: Path) -> None:
    """Route prefixes, the emergency section and a trunk's main number load as E.164 keys."""
    path = tmp_path / "trunks.yaml"
    path.write_text(
        "customers: {acme: {}}\n"
        "trunks:\n"
        "  pbx: {match: [192.0.2.10], customer: acme, number: '033 100 200'}\n"
        "routes:\n"
        "  carrier: {host: 192.0.2.50, prefixes: ['+', '+387 33', '061']}\n"
        "  psap: {host: 192.0.2.60}\n"
        "emergency: {route: psap, numbers: ['112', '1 22']}\n"
    )
    trunks = load_trunks(path)
    assert trunks.trunks["pbx"].number == "+38733100200"
    assert trunks.routes["carrier"].prefixes == ["+", "+38733", "+38761"]
    assert trunks.routes["psap"].prefixes == []
    assert (trunks.emergency.numbers, trunks.emergency.route) == (["112", "122"], "psap")


def test_emergency_defaults() -> None:
    """Without an emergency section the numbers are 112, 122, 123 and 124 and no route is named."""
    trunks = TrunksFile()
    assert trunks.emergency.numbers == ["112", "122", "123", "124"]
    assert trunks.emergency.route is None
    assert load_trunks(SHIPPED).emergency.numbers == ["112", "122", "123", "124"]


def test_emergency_route_must_exist_when_built_in_code() -> None:
    """Without a file's context the trunks file itself refuses an unknown emergency route."""
    with pytest.raises(ValueError, match="route 'psap' is not one of the routes \\(pstn\\)"):
        TrunksFile.model_validate(
            {"routes": {"pstn": {"host": "192.0.2.50"}}, "emergency": {"route": "psap"}}
        )


def test_a_customer_records_the_calls_to_its_numbers_and_keeps_them_its_days(
    tmp_path: Path,
) -> None:
    """recording_of finds the recording customer of a number in any form; retention_days is
    the customer's, 90 by default and for a customer not in the file."""
    trunks = table(
        "customers:\n"
        "  acme:\n    numbers: ['033 100 200']\n"
        "    recording: {calls: all, mode: stereo, announcement: recording_notice}\n"
        "    recording_retention_days: 270\n"
        "  quiet: {numbers: ['033 100 300']}\n",
        tmp_path,
    )
    found = trunks.recording_of("38733100200")
    assert found is not None and found[0] == "acme"
    assert (found[1].mode, found[1].announcement) == ("stereo", ["recording_notice"])
    assert trunks.recording_of("+387 33 100 300") is None
    assert trunks.recording_of("not a number") is None
    assert [trunks.retention_days(c) for c in ("acme", "quiet", "gone")] == [270, 90, 90]
