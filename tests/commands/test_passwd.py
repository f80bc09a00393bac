"""`callserver passwd`: HA1 lines (RFC 7616 §3.4.2) and how the password is read."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from callserver.commands import passwd
from callserver.commands.passwd import ha1_lines, read_password
from callserver.config.centrex import load_centrex

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "centrex.yaml"


class _Terminal(io.StringIO):
    """A standard input that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_lines_are_md5_and_sha256_of_user_realm_password() -> None:
    """ha1_md5 and ha1_sha256 are H(username:realm:password) of the RFC 7616 example user."""
    text = b"Mufasa:http-auth@example.org:Circle of Life"
    assert ha1_lines("Mufasa", "http-auth@example.org", "Circle of Life") == (
        'username: "Mufasa"\n'
        f"ha1_md5: {hashlib.md5(text, usedforsecurity=False).hexdigest()}\n"
        f"ha1_sha256: {hashlib.sha256(text).hexdigest()}\n"
    )


def test_shipped_subscribers_have_the_documented_passwords() -> None:
    """Each example phone's HA1 values are those of phone-NNN-secret (NNN: its number's end)."""
    centrex = load_centrex(SHIPPED)
    for sub in centrex.by_number.values():
        lines = ha1_lines(sub.username, sub.realm, f"phone-{sub.number[-3:]}-secret")
        assert lines.splitlines()[1:] == [
            f"ha1_md5: {sub.ha1['MD5']}",
            f"ha1_sha256: {sub.ha1['SHA-256']}",
        ]


@pytest.mark.parametrize(
    ("username", "realm", "password"),
    [("a:b", "r", "p"), ("u", 'r"', "p"), ("", "r", "p"), ("u", "r", ""), ("u", "r", "p\x00")],
)
def test_unwritable_values_are_refused(username: str, realm: str, password: str) -> None:
    """A ':' or '"' in the username or realm, or an empty or control-character value, is refused."""
    with pytest.raises(ValueError, match="must be"):
        ha1_lines(username, realm, password)


def test_stdin_gives_its_first_line() -> None:
    """Not on a terminal, the password is the first line of stdin without its line end."""
    assert read_password(io.StringIO("s3cret pass\r\nignored\n")) == "s3cret pass"


def test_terminal_asks_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal the password is asked twice without echo; two different entries fail."""
    answers = iter(["one", "two", "same", "same"])
    monkeypatch.setattr(passwd.getpass, "getpass", lambda prompt: next(answers))
    with pytest.raises(ValueError, match="differ"):
        read_password(_Terminal())
    assert read_password(_Terminal()) == "same"
