"""``callserver passwd USERNAME REALM``: the HA1 lines of a subscriber's password.

config/centrex.yaml never holds a password, only its digests (RFC 7616 §3.4.2): ``ha1_md5`` and
``ha1_sha256`` are ``H(username:realm:password)`` with MD5 and SHA-256, enough for the registrar
to check a response and useless to log in elsewhere with another realm. The password is read
from the terminal without echo, or from standard input when it is not a terminal (one line).
"""

from __future__ import annotations

import getpass
from typing import TextIO

from callserver.sip.auth import password_ha1

__all__ = ["ha1_lines", "read_password"]

_MAX_PASSWORD = 256


def ha1_lines(username: str, realm: str, password: str) -> str:
    """The YAML lines to paste under a subscriber: ``username``, ``ha1_md5``, ``ha1_sha256``.

    Raises:
        ValueError: an empty or control-character username, realm or password, or a
            username or realm holding ``:`` or ``"`` (they could not be written in a
            digest header, RFC 3261 §25.1 quoted-string).
    """
    for what, text in (("username", username), ("realm", realm)):
        if not text or any(ch in text for ch in ':"') or not text.isprintable():
            raise ValueError(f"the {what} {text!r} must be printable, without ':' or '\"'")
    if not password or not password.isprintable() or len(password) > _MAX_PASSWORD:
        raise ValueError(f"the password must be 1 to {_MAX_PASSWORD} printable characters")
    md5 = password_ha1(username, realm, password, "MD5")
    sha256 = password_ha1(username, realm, password, "SHA-256")
    return f'username: "{username}"\nha1_md5: {md5}\nha1_sha256: {sha256}\n'


def read_password(stdin: TextIO) -> str:
    """The password: asked twice without echo on a terminal, else the first line of stdin.

    Raises:
        ValueError: the two entries differ, or stdin is empty.
    """
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise ValueError("the two passwords differ")
        return first
    line = stdin.readline()
    if not line:
        raise ValueError("no password on standard input")
    return line.rstrip("\r\n")
