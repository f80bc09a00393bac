"""Settings: the shipped file, precedence of flags/env/file/defaults, listen syntax, error lines."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, endpoint_config, load_settings, parse_listen
from callserver.transport.settings import ListenAddress

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "callserver.yaml"


pytestmark = pytest.mark.usefixtures("clean_env")


def write(tmp_path: Path, text: str, name: str = "callserver.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path | None, overrides: dict[str, Any] | None = None) -> list[str]:
    with pytest.raises(OperatorFileError) as info:
        load_settings(path, overrides)
    assert str(info.value) == "\n".join(info.value.errors)
    return info.value.errors


# -- the shipped file ------------------------------------------------------------------------


def test_shipped_config_loads_with_the_values_it_states() -> None:
    """Every key of config/callserver.yaml loads and keeps the value written in the file."""
    raw = yaml.safe_load(SHIPPED.read_text())
    settings = load_settings(SHIPPED)
    for section in ("sip", "media", "calls", "dns", "registrar", "stats"):
        model = getattr(settings, section)
        for key, value in raw[section].items():
            loaded = getattr(model, key)
            if key == "listen":
                loaded = [str(address) for address in loaded]
            elif isinstance(loaded, Path):
                loaded = str(loaded)
            elif hasattr(loaded, "model_dump"):
                loaded = loaded.model_dump()
            assert loaded == value, f"{section}.{key}"
    for key in ("log_level", "log_format"):
        assert getattr(settings, key) == raw[key]
    assert settings.data_dir == Path(raw["data_dir"])
    assert settings.dialplans == Path(raw["dialplans"])


def test_shipped_config_listens_on_localhost_5060_udp_and_tcp() -> None:
    """`make run` listens where the README says: 127.0.0.1:5060 over UDP and TCP."""
    settings = load_settings(SHIPPED)
    assert settings.sip.listen == [
        ListenAddress(transport="udp", host="127.0.0.1", port=5060),
        ListenAddress(transport="tcp", host="127.0.0.1", port=5060),
    ]


def test_default_path_is_config_callserver_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a path, config/callserver.yaml under the working directory is read."""
    monkeypatch.chdir(SHIPPED.parents[1])
    assert load_settings() == load_settings(SHIPPED)


def test_no_file_anywhere_gives_the_defaults() -> None:
    """Without a path and without config/callserver.yaml, the built-in defaults apply."""
    settings = load_settings()
    assert settings == Settings()
    assert [str(a) for a in settings.sip.listen] == ["udp:0.0.0.0:5060", "tcp:0.0.0.0:5060"]
    assert settings.sip.t1 == 0.5


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    """An empty settings file is valid and means all defaults."""
    assert load_settings(write(tmp_path, "# nothing set\n")) == Settings()


# -- precedence: flags > environment > file > defaults ------------------------------------------

FILE = """\
sip:
  t1: 0.5
  t2: 8.0
  user_agent: from-file
  listen: ["udp:127.0.0.1:6000"]
calls:
  drain_timeout: 12
"""


def test_file_overrides_defaults_and_keeps_the_rest(tmp_path: Path) -> None:
    """Values in the file replace defaults; keys the file omits keep their defaults."""
    settings = load_settings(write(tmp_path, FILE))
    assert settings.sip.t2 == 8.0
    assert settings.sip.user_agent == "from-file"
    assert settings.calls.drain_timeout == 12
    assert settings.sip.t4 == 5.0
    assert settings.calls.max_calls == 10000


def test_env_overrides_file_per_nested_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CALLSERVER_SIP__T1 replaces the file's sip.t1 and leaves the file's other sip keys."""
    monkeypatch.setenv("CALLSERVER_SIP__T1", "0.25")
    monkeypatch.setenv("CALLSERVER_LOG_LEVEL", "debug")
    settings = load_settings(write(tmp_path, FILE))
    assert settings.sip.t1 == 0.25
    assert settings.sip.t2 == 8.0
    assert settings.sip.user_agent == "from-file"
    assert settings.log_level == "debug"


def test_env_listen_takes_a_json_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CALLSERVER_SIP__LISTEN holds a JSON list of listen addresses, IPv6 ones included."""
    monkeypatch.setenv("CALLSERVER_SIP__LISTEN", '["udp:127.0.0.1:7000", "tcp:[::1]:7001"]')
    settings = load_settings(write(tmp_path, FILE))
    assert [str(a) for a in settings.sip.listen] == ["udp:127.0.0.1:7000", "tcp:[::1]:7001"]


def test_flags_override_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Overrides (the command-line flags) beat both the environment and the file."""
    monkeypatch.setenv("CALLSERVER_SIP__T1", "0.25")
    monkeypatch.setenv("CALLSERVER_SIP__LISTEN", '["udp:127.0.0.1:7000"]')
    overrides = {"sip": {"t1": 0.1, "listen": ["tcp:127.0.0.1:8000"]}, "data_dir": Path("/d")}
    settings = load_settings(write(tmp_path, FILE), overrides)
    assert settings.sip.t1 == 0.1
    assert [str(a) for a in settings.sip.listen] == ["tcp:127.0.0.1:8000"]
    assert settings.data_dir == Path("/d")
    assert settings.sip.t2 == 8.0


def test_env_applies_without_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no file, the environment still overrides the defaults."""
    monkeypatch.setenv("CALLSERVER_CALLS__MAX_CALLS", "7")
    assert load_settings().calls.max_calls == 7


def test_bad_env_value_names_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad value from the environment is blamed on its variable, not on a line of the file."""
    monkeypatch.setenv("CALLSERVER_SIP__T1", "fast")
    monkeypatch.setenv("CALLSERVER_SIP__LISTEN", '["udp:host name:1"]')
    listen, t1 = sorted(errors_of(write(tmp_path, FILE)))
    assert listen.startswith("environment CALLSERVER_SIP__LISTEN: sip.listen: ")
    assert t1.startswith("environment CALLSERVER_SIP__T1: sip.t1: ")


def test_env_errors_come_before_file_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Errors from variables are listed first, then the file's in line order."""
    monkeypatch.setenv("CALLSERVER_CALLS__MAX_CALLS", "0")
    path = write(tmp_path, "calls:\n  drain_timeout: -1\nsip:\n  t4: 0\n")
    errors = errors_of(path)
    assert [e.split(": ")[0] for e in errors] == [
        "environment CALLSERVER_CALLS__MAX_CALLS",
        f"{path}:2",
        f"{path}:4",
    ]


def test_env_list_that_is_not_json_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CALLSERVER_SIP__LISTEN that is not JSON gives one OperatorFileError, not a traceback."""
    monkeypatch.setenv("CALLSERVER_SIP__LISTEN", "[udp:127.0.0.1:7000")
    errors = errors_of(write(tmp_path, FILE))
    assert len(errors) == 1
    assert errors[0].startswith("environment: ")
    assert "sip" in errors[0]


def test_bad_flag_value_is_blamed_on_the_command_line(tmp_path: Path) -> None:
    """An invalid override is reported as coming from the command line."""
    errors = errors_of(write(tmp_path, FILE), {"sip": {"listen": ["udp:127.0.0.1:99999"]}})
    assert len(errors) == 1
    assert errors[0].startswith("command line: sip.listen")


# -- parse_listen ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp:127.0.0.1:5060", ["udp:127.0.0.1:5060"]),
        ("tcp:127.0.0.1:5061", ["tcp:127.0.0.1:5061"]),
        ("UDP:0.0.0.0:5060", ["udp:0.0.0.0:5060"]),
        ("127.0.0.1:5060", ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]),
        ("localhost:0", ["udp:localhost:0", "tcp:localhost:0"]),
        ("udp:[::1]:5062", ["udp:[::1]:5062"]),
        ("tcp:[::]:5060", ["tcp:[::]:5060"]),
        ("[2001:db8::1]:5060", ["udp:[2001:db8::1]:5060", "tcp:[2001:db8::1]:5060"]),
        ("  tcp:10.0.0.1:5060  ", ["tcp:10.0.0.1:5060"]),
    ],
)
def test_parse_listen_forms(text: str, expected: list[str]) -> None:
    """udp:, tcp: or no prefix (both), IPv4, names and bracketed IPv6 all parse and print back."""
    addresses = parse_listen(text)
    assert [str(a) for a in addresses] == expected
    assert [parse_listen(str(a)) for a in addresses] == [[a] for a in addresses]


def test_parse_listen_ipv6_host_has_no_brackets() -> None:
    """The host of a bracketed IPv6 address is stored bare, ready to bind."""
    (address,) = parse_listen("udp:[::1]:5062")
    assert (address.transport, address.host, address.port) == ("udp", "::1", 5062)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "127.0.0.1",
        "127.0.0.1:",
        "127.0.0.1:sip",
        "udp::5060",
        "udp:127.0.0.1:-1",
        "udp:127.0.0.1:70000",
        "::1:5060",
        "tcp:::1:5060",
        "tcp:[::1:5060",
        "[127.0.0.1]:5060",
        "sctp:127.0.0.1:5060",
        "udp:bad host:5060",
        "udp:-bad-.example:5060",
    ],
)
def test_parse_listen_rejects_bad_forms(text: str) -> None:
    """Missing or bad ports, hosts, unbracketed IPv6 and unknown transports raise ValueError."""
    with pytest.raises(ValueError, match=r"listen address|IP address or host name|port"):
        parse_listen(text)


# -- errors with file, line and field ----------------------------------------------------------

THREE_MISTAKES = """\
# three mistakes, on lines 3, 8 and 11
sip:
  t1: -1
  user_agent: ok
media:
  codecs:
    - PCMA
    - G729
calls:
  drain_timeout: 1
  unknown_key: 1
"""


def test_three_mistakes_are_all_listed_with_their_lines(tmp_path: Path) -> None:
    """Each invalid value is one `path:LINE: dotted.field: message` error at its own line."""
    path = write(tmp_path, THREE_MISTAKES)
    errors = errors_of(path)
    assert len(errors) == 3
    expected = [
        (3, "sip.t1", "greater than 0"),
        (8, "media.codecs.1", "'PCMA' or 'PCMU'"),
        (11, "calls.unknown_key", "unknown key (misspelt, or in the wrong place?)"),
    ]
    for error, (line, field, message) in zip(errors, expected, strict=True):
        assert error.startswith(f"{path}:{line}: {field}: "), error
        assert message in error


def test_the_settings_of_the_old_built_in_answer_say_where_they_went(tmp_path: Path) -> None:
    """Each calls.answer_* key is an error at its line naming its place in default.yaml."""
    text = (
        "calls:\n  answer_after: 2\n  answer_hangup_after: 30\n  answer_prompt: greeting\n"
        "  answer_prompt_loop: true\n  max_calls: 5\n"
    )
    path = write(tmp_path, text)
    moved = (
        "no longer a setting: a number without a dialplan of its own runs dialplans/default.yaml"
    )
    assert errors_of(path) == [
        f"{path}:2: calls.answer_after: {moved}; write an answer step's ring "
        "(answer: with ring: 5s) there",
        f"{path}:3: calls.answer_hangup_after: {moved}; write a hangup step's after "
        "(hangup: with after: 30s) there",
        f"{path}:4: calls.answer_prompt: {moved}; write a play step "
        "(play: greeting, barge_in: true) there",
        f"{path}:5: calls.answer_prompt_loop: {moved}; write a play step's loop (loop: true) there",
    ]


def test_error_format_is_path_line_field_message(tmp_path: Path) -> None:
    """Every error line has exactly the `file:line: field: message` shape."""
    path = write(tmp_path, THREE_MISTAKES)
    shape = re.compile(rf"{re.escape(str(path))}:\d+: [a-z_]+(\.[a-z_0-9]+)*: \S.*")
    assert all(shape.fullmatch(error) for error in errors_of(path))


def test_flow_sequence_item_points_at_its_line(tmp_path: Path) -> None:
    """A bad item in an inline list is reported at the list's line."""
    path = write(tmp_path, "media:\n  ptime: 20\n  codecs: [PCMA, G729]\n")
    assert errors_of(path) == [
        f"{path}:3: media.codecs.1: Input should be 'PCMA' or 'PCMU'",
    ]


def test_bad_listen_entry_in_file_points_at_listen(tmp_path: Path) -> None:
    """An unparsable listen address in the file is reported at sip.listen with its line."""
    path = write(tmp_path, 'sip:\n  user_agent: x\n  listen:\n    - "::1:5060"\n')
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:3: sip.listen: listen address '::1:5060'")


def test_invalid_yaml_is_one_error_with_its_line(tmp_path: Path) -> None:
    """A YAML syntax error is one single-line error naming the file and the offending line."""
    path = write(tmp_path, "sip:\n  t1: 0.5\n t2: 4\n")
    errors = errors_of(path)
    assert len(errors) == 1
    assert errors[0].startswith(f"{path}:3: not valid YAML: ")
    assert "\n" not in errors[0]


def test_yaml_bad_token_reports_its_line(tmp_path: Path) -> None:
    """A character YAML cannot start a token with is reported on its own line."""
    path = write(tmp_path, "sip:\n  t1: 0.5\nmedia:\n  codecs: [PCMA, @x]\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:4: not valid YAML: ")


@pytest.mark.parametrize("text", ["- sip\n- media\n", "just a string\n", "42\n"])
def test_non_mapping_file_is_rejected(tmp_path: Path, text: str) -> None:
    """A file whose top level is not a mapping gives one error at line 1."""
    path = write(tmp_path, text)
    assert errors_of(path) == [f"{path}:1: the file must hold a mapping of settings"]


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    """A settings path that does not exist is one `cannot read` error."""
    path = tmp_path / "missing.yaml"
    (error,) = errors_of(path)
    assert error.startswith(f"{path}: cannot read: ")


def test_t2_below_t1_is_rejected_at_t2(tmp_path: Path) -> None:
    """sip.t2 smaller than sip.t1 is an error on t2's line (RFC 3261 §17.1.2.2)."""
    path = write(tmp_path, "sip:\n  t1: 2.0\n  t2: 1.0\n")
    assert errors_of(path) == [f"{path}:3: sip.t2: t2 must not be smaller than t1"]


def test_t1_above_default_t2_is_rejected(tmp_path: Path) -> None:
    """Raising t1 above the default t2 alone is rejected too, at the sip section."""
    path = write(tmp_path, "sip:\n  t1: 5.0\n")
    assert errors_of(path) == [f"{path}:1: sip.t2: t2 must not be smaller than t1"]


def test_t2_equal_to_t1_is_accepted(tmp_path: Path) -> None:
    """t2 may equal t1."""
    assert load_settings(write(tmp_path, "sip:\n  t1: 1.0\n  t2: 1.0\n")).sip.t2 == 1.0


def test_inverted_rtp_range_is_rejected(tmp_path: Path) -> None:
    """rtp_port_max at or below rtp_port_min is an error on rtp_port_max's line."""
    path = write(tmp_path, "media:\n  rtp_port_min: 30000\n  rtp_port_max: 20000\n")
    assert errors_of(path) == [
        f"{path}:3: media.rtp_port_max: rtp_port_max must be above rtp_port_min"
    ]


def test_empty_codec_list_is_rejected(tmp_path: Path) -> None:
    """At least one codec must be configured."""
    path = write(tmp_path, "media:\n  codecs: []\n")
    assert errors_of(path) == [f"{path}:2: media.codecs: codecs must list at least one codec"]


@pytest.mark.parametrize("address", ["192.0.2.10", "2001:db8::10", "sip.example.com", "pbx-1"])
def test_advertised_address_accepts_ips_and_names(tmp_path: Path, address: str) -> None:
    """An IP literal or a DNS name is a valid advertised address."""
    settings = load_settings(write(tmp_path, f'sip:\n  advertised_address: "{address}"\n'))
    assert settings.sip.advertised_address == address
    assert settings.advertised_host("127.0.0.1") == address


@pytest.mark.parametrize("address", ["bad host", "a..b", "-x.example", "x_y.example", " "])
def test_advertised_address_rejects_garbage_with_line(tmp_path: Path, address: str) -> None:
    """A value that is neither an IP nor a host name is an error at its line, with the others."""
    path = write(tmp_path, f'sip:\n  t1: 0\n  advertised_address: "{address}"\n')
    errors = errors_of(path)
    assert errors[0].startswith(f"{path}:2: sip.t1: ")
    assert errors[1].startswith(f"{path}:3: sip.advertised_address: ")
    assert len(errors) == 2


def test_empty_listen_list_is_rejected(tmp_path: Path) -> None:
    """A server must listen somewhere: an empty sip.listen is an error at its line."""
    path = write(tmp_path, "sip:\n  t1: 0.5\n  listen: []\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:3: sip.listen: ")


def test_min_se_above_session_expires_is_rejected(tmp_path: Path) -> None:
    """sip.min_se above sip.session_expires is an error on min_se's line (RFC 4028 §4)."""
    path = write(tmp_path, "sip:\n  session_expires: 600\n  min_se: 1200\n")
    assert errors_of(path) == [f"{path}:3: sip.min_se: min_se must not exceed session_expires"]
    assert load_settings(write(tmp_path, "sip:\n  session_expires: 600\n  min_se: 600\n"))


def test_registrar_expiry_limits_must_be_ordered(tmp_path: Path) -> None:
    """A registrar section whose minimum expiry is above its maximum is a file error."""
    path = write(tmp_path, "registrar:\n  min_expires: 9000\n")
    (error,) = errors_of(path)
    assert "registrar" in error and "min_expires (9000) <= default_expires" in error


def test_registrar_qualify_is_off_by_default_and_never_negative(tmp_path: Path) -> None:
    """registrar.qualify defaults to 0 (off); a negative interval is an error on its line."""
    assert load_settings(write(tmp_path, "registrar:\n  max_contacts: 5\n")).registrar.qualify == 0
    path = write(tmp_path, "registrar:\n  qualify: -30\n")
    (error,) = errors_of(path)
    assert error.startswith(f"{path}:2: registrar.qualify:"), error


def test_the_endpoint_allows_register_and_supports_path() -> None:
    """The server's endpoint accepts REGISTER and the path extension (RFC 3327)."""
    config = endpoint_config(Settings(), "127.0.0.1", 5060)
    assert "REGISTER" in config.policy.allowed_methods
    assert "path" in config.policy.supported_extensions


def test_the_endpoint_supports_replaces() -> None:
    """The server's endpoint advertises and accepts the replaces extension (RFC 3891 §6.1)."""
    config = endpoint_config(Settings(), "127.0.0.1", 5060)
    assert "replaces" in config.policy.supported_extensions


def test_stats_zone_and_service_level_are_checked_at_their_lines(tmp_path: Path) -> None:
    """An unknown stats.timezone and a zero stats.service_level are each named with their line."""
    path = tmp_path / "callserver.yaml"
    path.write_text("stats:\n  timezone: Europe/Sarajvo\n  service_level: 0\n")
    with pytest.raises(OperatorFileError) as info:
        load_settings(path)
    assert info.value.errors == [
        f"{path}:2: stats.timezone: unknown time zone 'Europe/Sarajvo' (an IANA "
        "name: Europe/Sarajevo)",
        f"{path}:3: stats.service_level: Input should be greater than 0",
    ]
