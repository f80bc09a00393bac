"""One centrex.yaml subscriber for the registrar's and phone calls' end-to-end tests, the
server's settings that let SIPp register as it, and SIPp as that phone.

A phone is two SIPp runs on one UDP port: ``register_phone`` registers the port as a contact of
the subscriber, then ``phone`` plays the phone that calls reach there (SIPp ties messages to
calls by Call-ID, so one run cannot do both).

SIPp 3.6.1 answers MD5 only and reads the first challenge's algorithm, so the server offers
MD5 alone here (see tests/e2e/test_digest_trunks.py).
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import yaml

from callserver.sip.auth import password_ha1
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    free_port,
    media_port,
    popen_bound,
    run_sipp,
    start_uas,
)

USERNAME, REALM, PASSWORD = "38733100201", "callserver", "phone-201-secret"
AOR = "+38733100201"
MD5_ONLY: dict[str, object] = {"digest": {"algorithms": ["MD5"]}, "trunks": {}}
TRUNKS: dict[str, object] = {**MD5_ONLY, "customers": {"acme": {}}}  # the group's customer
CALLING = {**TRUNKS, "trunks": {"test": {"match": ["127.0.0.1"]}}}  # and a trunk to call from
CREDENTIALS = ("-au", USERNAME, "-ap", PASSWORD)  # SIPp's digest arguments
CALLER = ("-s", USERNAME, "-m", "1", "-key", "caller", "38761000000")  # SIPp calling the phone


def write_centrex(tmp_path: Path) -> None:
    """centrex.yaml in ``tmp_path`` with the group acme-office and its phone +387 33 100 201."""
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": {
            "+387 33 100 201": {
                "username": USERNAME,
                "ha1_md5": password_ha1(USERNAME, REALM, PASSWORD, "MD5"),
                "ha1_sha256": password_ha1(USERNAME, REALM, PASSWORD, "SHA-256"),
            }
        },
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))


PHONES = {"201": "phone-201-secret", "202": "phone-202-secret"}  # extension: password


def write_group(
    tmp_path: Path,
    *,
    barring: tuple[str, ...] = (),
    phone_barring: dict[str, list[str]] | None = None,
    services: dict[str, dict[str, object]] | None = None,
    roles: dict[str, str] | None = None,
) -> None:
    """centrex.yaml in ``tmp_path`` with acme's group and its phones 201 and 202 (MD5 HA1
    only; usernames are their numbers): ``barring`` the group's classes, ``phone_barring``
    a phone's own by extension, ``services`` a phone's services by extension, ``roles`` a
    phone's role by extension."""
    own = phone_barring or {}
    services = services or {}
    roles = roles or {}
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"38733100{ext}",
            "ha1_md5": password_ha1(f"38733100{ext}", REALM, password, "MD5"),
            **({"barring": own[ext]} if ext in own else {}),
            **({"services": services[ext]} if ext in services else {}),
            **({"role": roles[ext]} if ext in roles else {}),
        }
        for ext, password in PHONES.items()
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "barring": list(barring),
        "subscribers": subscribers,
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))


def register_phone(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    port: int | None = None,
    *,
    user: str = USERNAME,
    password: str = PASSWORD,
) -> int:
    """SIPp registers contact ``phone`` of the subscriber ``user`` (default: this module's)
    from ``port`` (default: a free one) for 600 s and exits; the port."""
    port = port or free_port(both=False)
    result = run_sipp(
        sipp,
        tmp_path,
        server.port,
        *("-sf", str(SCENARIOS / "uac-register-digest.xml"), "-m", "1"),
        *("-key", "user", user, "-au", user, "-ap", password),
        timeout=20,
        local_port=port,
    )
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return port


@contextlib.contextmanager
def phone(sipp: str, tmp_path: Path, scenario: str, port: int) -> Iterator[subprocess.Popen[str]]:
    """SIPp playing the phone registered at ``port`` for one call of ``scenario`` (of
    tests/e2e/scenarios); killed after the block if still running."""
    proc, _ = start_uas(sipp, tmp_path, "-sf", str(SCENARIOS / scenario), port=port)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def finished(proc: subprocess.Popen[str], server: ServerProcess) -> None:
    """The phone's SIPp ended its call as its scenario says."""
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out[-2000:] + "\n".join(server.raw[-40:])


def background_call(
    sipp: str, tmp_path: Path, server: ServerProcess, *, hold: int
) -> subprocess.Popen[str]:
    """A caller through the trunk ``test`` calls the subscriber's number (``CALLER``) and
    hangs up ``hold`` ms after the answer, running in the background; wait for its end."""

    def command(local: int) -> list[str]:
        return [
            sipp,
            f"{HOST}:{server.port}",
            *("-i", HOST, "-p", str(local), "-mp", str(media_port()), "-nostdin"),
            *("-timeout", "40s", "-timeout_error", "-sn", "uac", "-d", str(hold), *CALLER),
        ]

    return popen_bound(command, tmp_path)[0]
