"""The dns: settings section: nameserver syntax, defaults, errors at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.errors import OperatorFileError
from callserver.config.settings import load_settings
from callserver.transport.listening import resolver_for
from callserver.transport.settings import parse_nameserver

pytestmark = pytest.mark.usefixtures("clean_env")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.53", ("192.0.2.53", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("2001:db8::53", ("2001:db8::53", 53)),
        ("[2001:db8::53]", ("2001:db8::53", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_nameserver_forms(text: str, expected: tuple[str, int]) -> None:
    """IP, IP:PORT, a bare or bracketed IPv6 address, [IPv6]:PORT; port 53 by default."""
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize("text", ["ns.example", "192.0.2.1:x", "192.0.2.1:0", "[::1]x", "[::1]:"])
def test_bad_nameservers_are_refused(text: str) -> None:
    """A name (it would need DNS itself), a bad port or stray text is a ValueError naming it."""
    with pytest.raises(ValueError, match="nameserver"):
        parse_nameserver(text)


def test_defaults_use_the_system_nameservers() -> None:
    """No dns section: no nameservers of our own, 2 s a lookup, 4096 answers cached."""
    settings = load_settings()
    assert settings.dns.nameservers == [] and settings.dns.addresses() == []
    assert (settings.dns.timeout, settings.dns.cache_size) == (2.0, 4096)


def test_one_nameserver_may_be_written_without_a_list(tmp_path: Path) -> None:
    """``nameservers: 127.0.0.1:5353`` is a list of one."""
    path = tmp_path / "callserver.yaml"
    path.write_text("dns:\n  nameservers: 127.0.0.1:5353\n")
    assert load_settings(path).dns.addresses() == [("127.0.0.1", 5353)]


def test_a_bad_nameserver_is_an_error_at_its_line(tmp_path: Path) -> None:
    """The error names the file, the line and dns.nameservers, with the others."""
    path = tmp_path / "callserver.yaml"
    path.write_text("dns:\n  timeout: 0\n  nameservers:\n    - 127.0.0.1\n    - ns.example\n")
    with pytest.raises(OperatorFileError) as info:
        load_settings(path)
    errors = info.value.errors
    assert errors[0].startswith(f"{path}:2: dns.timeout: ")
    assert errors[1].startswith(f"{path}:") and "dns.nameservers" in errors[1]
    assert "'ns.example' is not IP, IP:PORT or [IPv6]:PORT" in errors[1]
    assert len(errors) == 2


def test_the_resolver_sends_only_on_what_the_server_listens_on(tmp_path: Path) -> None:
    """UDP on 127.0.0.1 and TCP: IPv4 only; UDP on :: reaches both families (v4-mapped)."""
    path = tmp_path / "callserver.yaml"
    path.write_text(
        "sip:\n  listen: [udp:127.0.0.1:5060, tcp:127.0.0.1:5060]\n"
        "dns:\n  nameservers: ['[::1]:5353']\n  timeout: 0.5\n"
    )
    settings = load_settings(path)
    resolver = resolver_for(settings.sip.listen, settings.dns, lambda: 0.0)
    assert resolver.transports == ("udp", "tcp")
    assert resolver.families == {4}
    assert (resolver.nameservers, resolver.timeout) == ((("::1", 5353),), 0.5)
    path.write_text("sip:\n  listen: ['udp:[::]:5060']\n")
    settings = load_settings(path)
    resolver = resolver_for(settings.sip.listen, settings.dns, lambda: 0.0)
    assert (resolver.transports, resolver.families) == (("udp",), {4, 6})
    path.write_text("sip:\n  listen: ['tcp:[::1]:5060']\n")
    settings = load_settings(path)
    assert resolver_for(settings.sip.listen, settings.dns, lambda: 0.0).families == {
        4,
        6,
    }  # TCP: any
