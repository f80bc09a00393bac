"""The ``admin`` section: defaults, the bad-file corpus in tests/config/admin_bad, new tokens and
``callserver check``'s look-up of the tokens' customers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from callserver.cli import main
from callserver.commands.admin_token import new_token
from callserver.commands.check import check
from callserver.config.admin import parse_admin_listen
from callserver.config.errors import OperatorFileError
from callserver.config.settings import Settings, keep_startup_values, load_settings

BAD_DIR = Path(__file__).resolve().parent / "admin_bad"
ROOT = Path(__file__).resolve().parents[2]

BAD: dict[str, list[str]] = {
    "enabled-not-a-boolean": [
        ":2: admin.enabled: Input should be a valid boolean, unable to interpret input"
    ],
    "listen-no-port": [":2: admin.listen: 'localhost' is not HOST:PORT (127.0.0.1:8080)"],
    "listen-port-too-big": [":2: admin.listen: '127.0.0.1:80800': port 80800 is above 65535"],
    "softphone-address-not-an-ip": [
        ":3: admin.softphone.address: 'pbx.example.com' is not an IP address: give the address "
        "of this server the agents' browsers reach (127.0.0.1 for a browser on this machine)"
    ],
    "softphone-no-sessions": [
        ":3: admin.softphone.max_sessions: Input should be greater than or equal to 1"
    ],
    "token-customer-missing": [
        ":3: admin.tokens.0: token 'acme-portal': a customer token names its customer "
        "(customer: acme, one of trunks.yaml's customers)"
    ],
    "token-digest-twice": [
        ":2: admin.tokens: tokens 'noc' and 'night-shift' have the same sha256: make a new "
        "token for each holder"
    ],
    "token-name-spaces": [
        ":3: admin.tokens.0.name: token name 'the noc': use letters, digits, '.', '_' or '-' "
        "(up to 64), as it appears in the audit log"
    ],
    "token-name-twice": [":2: admin.tokens: token name 'noc' is listed twice"],
    "token-no-name": [":3: admin.tokens.0.name: Field required"],
    "token-not-a-digest": [
        ":5: admin.tokens.0.sha256: not a SHA-256 hex digest (64 hex digits): paste the sha256 "
        "line `callserver admin token` printed, never the token itself"
    ],
    "token-operator-with-customer": [
        ":3: admin.tokens.0: token 'noc': an operator token sees every customer; remove "
        "customer, or make it role: customer"
    ],
    "token-unknown-role": [":4: admin.tokens.0.role: Input should be 'operator' or 'customer'"],
    "unknown-key": [":3: admin.tokenz: unknown key (misspelt, or in the wrong place?)"],
}


def test_every_bad_file_has_its_message() -> None:
    """The corpus and the table name the same files, so no bad file goes unchecked."""
    assert sorted(path.stem for path in BAD_DIR.glob("*.yaml")) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_fails_with_its_message(name: str) -> None:
    """Loading the bad file raises OperatorFileError with exactly its file:line: field lines."""
    path = BAD_DIR / f"{name}.yaml"
    with pytest.raises(OperatorFileError) as caught:
        load_settings(path)
    assert caught.value.errors == [f"{path}{line}" for line in BAD[name]]


def test_defaults_listen_on_loopback_8080_without_tokens() -> None:
    """Without an admin section the API is on, at 127.0.0.1:8080, and accepts no token."""
    admin = Settings().admin
    assert (admin.enabled, admin.address, admin.tokens) == (True, ("127.0.0.1", 8080), ())


def test_an_ipv6_listen_address_goes_in_brackets() -> None:
    """[::1]:8080 is host ::1; a bare IPv6 host is refused with the way to write it."""
    assert parse_admin_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(ValueError, match=r"brackets, \[::1\]:8080"):
        parse_admin_listen("::1:8080")


def test_reload_keeps_the_address_and_takes_the_tokens() -> None:
    """SIGHUP: a new listen address needs a restart; new tokens apply at once."""
    running = Settings()
    digest = hashlib.sha256(b"t").hexdigest()
    loaded = Settings.model_validate(
        {
            "admin": {
                "listen": "127.0.0.1:9090",
                "tokens": [{"name": "noc", "role": "operator", "sha256": digest}],
            }
        }
    )
    kept, restart = keep_startup_values(running, loaded)
    assert restart == ["admin.listen"]
    assert kept.admin.listen == "127.0.0.1:8080"
    assert [token.name for token in kept.admin.tokens] == ["noc"]


def test_a_new_token_is_random_and_only_its_digest_is_printed_for_the_file() -> None:
    """The YAML lines hold the token's SHA-256, never the token, and load as settings."""
    token, lines = new_token("acme-portal", "customer", "acme")
    again, _ = new_token("acme-portal", "customer", "acme")
    assert token != again
    assert len(token) >= 40
    assert token not in lines
    entry = yaml.safe_load("tokens:\n" + lines)["tokens"][0]
    assert entry == {
        "name": "acme-portal",
        "role": "customer",
        "customer": "acme",
        "sha256": hashlib.sha256(token.encode()).hexdigest(),
    }


def test_the_command_refuses_a_customer_token_without_its_customer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``callserver admin token x --role customer`` exits 2 naming what is missing."""
    assert main(["admin", "token", "x", "--role", "customer"]) == 2
    assert capsys.readouterr().err == (
        "callserver admin token: token 'x': a customer token names its customer "
        "(customer: acme, one of trunks.yaml's customers)\n"
    )


def test_the_command_prints_the_token_once_and_the_entry(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The token is on the first line; the entry's digest is that token's."""
    assert main(["admin", "token", "noc", "--role", "operator"]) == 0
    out = capsys.readouterr().out.splitlines()
    token = out[0].rpartition(": ")[2]
    assert out[-1] == f"      sha256: {hashlib.sha256(token.encode()).hexdigest()}"
    assert sum(token in line for line in out) == 1


def test_check_names_a_tokens_customer_missing_from_trunks(tmp_path: Path) -> None:
    """``callserver check``: a customer token's customer must be one of trunks.yaml's."""
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text("customers:\n  acme: {}\n")
    digest = hashlib.sha256(b"t").hexdigest()
    config = tmp_path / "callserver.yaml"
    settings = {
        "trunks": str(trunks),
        "tariffs": str(ROOT / "config" / "tariffs.yaml"),
        "centrex": str(tmp_path / "centrex.yaml"),
        "dialplans": str(ROOT / "dialplans"),
        "media": {"prompts_dir": str(ROOT / "prompts")},
        "data_dir": str(tmp_path / "var"),
        "admin": {
            "tokens": [
                {"name": "a", "role": "customer", "customer": "acme", "sha256": digest},
                {"name": "g", "role": "customer", "customer": "globex", "sha256": digest[::-1]},
            ]
        },
    }
    config.write_text(yaml.safe_dump(settings))
    errors = [e for checked in check([], config) for e in checked.errors]
    assert errors == [
        f"{config}: admin.tokens: customer 'globex' is not one of {trunks}'s customers (acme)"
    ]
