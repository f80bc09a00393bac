"""Calls into voicemail boxes for the end-to-end tests: a group whose phones forward always to
their box, SIPp signalling with the test's RTP party as its media, and what the party heard."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from callserver.media.prompts import PlaylistItem, PromptStore
from callserver.sip.auth import password_ha1
from tests.e2e.conftest import HOST, PROMPTS, SCENARIOS, ServerProcess, free_port, media_port
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import PHONES, REALM

STORE = PromptStore(PROMPTS, lambda language: [language, "en"])
CALLER_FILL = 0x55  # the caller's constant PCMU payload: what its message sounds like


def write_boxes(tmp_path: Path, email: str | None = None) -> None:
    """centrex.yaml: acme's phones 201 and 202 (MD5 HA1; usernames are their numbers), both
    forwarded always to their voicemail box; 201's messages mailed to ``email``."""
    subscribers = {
        f"+387 33 100 {ext}": {
            "username": f"38733100{ext}",
            "ha1_md5": password_ha1(f"38733100{ext}", REALM, password, "MD5"),
            "services": {"forward_always": "VM"},
            **({"email": email} if email and ext == "201" else {}),
        }
        for ext, password in PHONES.items()
    }
    group = {
        "customer": "acme",
        "numbers": ["+387 33 100 200-299"],
        "realm": REALM,
        "extensions": {"digits": 3},
        "subscribers": subscribers,
    }
    (tmp_path / "centrex.yaml").write_text(yaml.safe_dump({"groups": {"acme-office": group}}))


def sipp_command(
    sipp: str, tmp_path: Path, server: ServerProcess, scenario: str, party: RtpParty, *args: str
) -> list[str]:
    """SIPp running ``scenario`` once against the server, media at the party's port."""
    return [
        sipp,
        f"{HOST}:{server.port}",
        *("-sf", str(SCENARIOS / scenario), "-key", "rtp_port", str(party.port)),
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-m", "1", "-nostdin", "-timeout", "90s", "-timeout_error", "-trace_err"),
        *("-error_file", str(tmp_path / f"{scenario}.errors")),
        *args,
    ]


@contextlib.contextmanager
def call(
    sipp: str, tmp_path: Path, server: ServerProcess, scenario: str, *args: str
) -> Iterator[RtpParty]:
    """One SIPp call of ``scenario`` whose media is an RTP party sending the caller's fill;
    the party starts sending once the call is answered. The block ends with SIPp's end,
    which must be a success."""
    party = RtpParty(CALLER_FILL)
    answered = len(server.events("call.answered"))
    proc = subprocess.Popen(
        sipp_command(sipp, tmp_path, server, scenario, party, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        cwd=tmp_path,
    )
    try:
        party.send_to(_answered_port(server, answered, proc))
        yield party
        out, _ = proc.communicate(timeout=120)
        errors = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.errors"))
        log = "\n".join(server.raw[-60:])
        assert proc.returncode == 0, out[-3000:] + errors + log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        party.close()


def _answered_port(server: ServerProcess, seen: int, proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = server.events("call.answered")
        if len(events) > seen:
            return int(str(events[seen]["rtp_port"]))
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout is not None else ""
            raise AssertionError(
                f"SIPp ended before the answer:\n{out[-3000:]}" + "\n".join(server.raw[-40:])
            )
        time.sleep(0.02)
    raise AssertionError("no call.answered:\n" + "\n".join(server.raw[-40:]))


def heard(party: RtpParty) -> bytes:
    """The PCMU audio the party received so far, in order."""
    return b"".join(p.payload for p in list(party.received) if p.payload_type == 0)


def rendered(items: list[PlaylistItem], language: str = "en") -> bytes:
    """The PCMU bytes the server plays for ``items`` (the shipped prompts)."""
    return STORE.render(items, language, "PCMU")


def wait_heard(
    party: RtpParty, expected: bytes, server: ServerProcess, timeout: float = 40
) -> None:
    """Block until the party received ``expected`` as a run of its audio."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if expected in heard(party):
            return
        time.sleep(0.05)
    raise AssertionError(
        f"{len(expected)} expected bytes not heard in {len(heard(party))}:\n"
        + "\n".join(server.raw[-40:])
    )


def wait_fill(party: RtpParty, packets: int, server: ServerProcess, timeout: float = 40) -> None:
    """Block until the party heard ``packets`` packets of the caller's message played back
    (every PCMU packet of a message is its caller's constant fill) after what it had."""
    fill = bytes([CALLER_FILL]) * 160
    start = len(party.received)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = sum(1 for p in list(party.received)[start:] if p.payload == fill)
        if got >= packets:
            return
        time.sleep(0.05)
    raise AssertionError("the message was not played back:\n" + "\n".join(server.raw[-40:]))
