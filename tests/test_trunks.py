"""config/trunks.yaml: schema, file:line errors, and trunk identification by source address."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config import ConfigError
from callserver.trunks import TrunksFile, TrunkTable, load_trunks, parse_match

SHIPPED = Path(__file__).parents[1] / "config" / "trunks.yaml"


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
    with pytest.raises(ConfigError) as info:
        load_trunks(path)
    text = "\n".join(info.value.errors)
    assert f"{path}:6: trunks.bad.match" in text
    assert f"{path}:7: trunks.bad.chanels" in text
    assert f"{path}:4: trunks.pbx.channels" in text


def test_unknown_customer_is_named(tmp_path: Path) -> None:
    """A trunk naming a customer the file does not define is an error."""
    path = tmp_path / "trunks.yaml"
    path.write_text("trunks:\n  pbx: {match: [192.0.2.10], customer: nobody}\n")
    with pytest.raises(ConfigError, match="customer 'nobody' is not defined"):
        load_trunks(path)


def test_missing_file_means_no_trunks(tmp_path: Path) -> None:
    """Without a trunks file there are no trunks and unknown sources are refused."""
    assert load_trunks(tmp_path / "absent.yaml") == TrunksFile()
