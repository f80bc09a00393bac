"""Parties of the transfer tests: acme's phones 201 and 202 as SIPp runs, a caller on the
trunk, and waits on what the server logs.

A phone is registered from a port (``register_ext``) where another SIPp plays it
(``sipp_phone``), as in ``tests.e2e.subscribers``. Each party's media end is an ``RtpParty``
sending a constant fill (``CALLER_FILL``, ``TRANSFEROR_FILL``, ``TARGET_FILL``), so ``heard``
counts what one party got of another's audio. The phone that transfers writes the final
NOTIFY's sipfrag status line to transfer-final.txt.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from callserver.media.rtp import RtpPacket
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    popen_sipp,
    start_server,
    start_uas,
    stopped_on_exit,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, PHONES, register_phone, write_group

CALLER_FILL, TRANSFEROR_FILL, TARGET_FILL = 0x55, 0x22, 0x33
NUMBER = "38733100201"  # phone 201's number, as the trunk caller dials it
ANSWERS = "uas-bridged-answers-then-expects-bye.xml"  # a phone answering, then awaiting BYE
REFERS = "uas-phone-answers-then-refers.xml"  # a phone answering, then REFERring its caller


def transfer_server(
    tmp_path: Path, carrier_port: int = 9, **phone_barring: list[str]
) -> ServerProcess:
    """acme's group with phones 201 and 202 (``phone_barring``: a phone's own classes) and a
    carrier's route for +387 on ``carrier_port``."""
    write_group(tmp_path, phone_barring=phone_barring)
    route = {"host": HOST, "port": carrier_port, "prefixes": ["+387"]}
    return start_server(tmp_path, trunks={**CALLING, "routes": {"carrier": route}})


def register_ext(sipp: str, tmp_path: Path, server: ServerProcess, ext: str) -> int:
    """Registers acme's phone ``ext`` from a free port, which it returns."""
    return register_phone(sipp, tmp_path, server, user=f"38733100{ext}", password=PHONES[ext])


def sipp_phone(
    sipp: str, tmp_path: Path, scenario: str, port: int, rtp: RtpParty, *keys: str
) -> subprocess.Popen[str]:
    """SIPp playing the phone registered at ``port``, its media at ``rtp``."""
    args = (
        "-sf",
        str(SCENARIOS / scenario),
        "-key",
        "rtp_port",
        str(rtp.port),
        "-trace_err",
        *keys,
    )
    return start_uas(sipp, tmp_path, *args, port=port)[0]


def refer_keys(server: ServerProcess, to: str) -> tuple[str, ...]:
    """SIPp's keys for a phone's REFER to ``to`` through ``server``."""
    return ("-key", "refer_host", f"{HOST}:{server.port}", "-key", "refer_to", to)


def transferring(
    sipp: str, tmp_path: Path, server: ServerProcess, party: RtpParty, to: str = "202"
) -> subprocess.Popen[str]:
    """201 registered, answering, then transferring its caller to ``to``."""
    port = register_ext(sipp, tmp_path, server, "201")
    return sipp_phone(sipp, tmp_path, REFERS, port, party, *refer_keys(server, to))


def trunk_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling 201; it hangs up after 8 s."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-bridged-stays-up-then-bye.xml")),
            *("-key", "rtp_port", str(rtp.port), "-i", HOST, "-m", "1", "-nostdin"),
            *("-timeout", "40s", "-timeout_error", "-s", NUMBER, f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def staying_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty, stay_ms: int
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling 201, hanging up ``stay_ms`` after the answer."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-conference-stays-then-bye.xml")),
            *("-key", "rtp_port", str(rtp.port), "-d", str(stay_ms), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", NUMBER),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def prompted_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty, caller: str = "38761000000"
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling 201 as ``caller``, its audio to ``rtp``; it stays until the
    server's BYE."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-caller-hears-prompts-until-server-bye.xml")),
            *("-set", "rtp_port", str(rtp.port), "-set", "codec", "0"),
            *("-key", "caller", caller, "-i", HOST, "-m", "1", "-nostdin"),
            *("-timeout", "40s", "-timeout_error", "-s", NUMBER, f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def as_phone(ext: str, service: str, server: ServerProcess) -> tuple[str, ...]:
    """SIPp's arguments to call ``service`` as phone ``ext`` (its digest credentials)."""
    user = f"38733100{ext}"
    return (
        *("-key", "caller", user, "-au", user, "-ap", PHONES[ext]),
        *("-auth_uri", f"{service}@{HOST}:{server.port}"),
    )


def calling_phone(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    rtp_port: int,
    to: str = "061200300",
    *,
    ext: str = "201",
    service: str = "202",
    talk_ms: int = 1000,
) -> subprocess.Popen[str]:
    """Phone ``ext`` (SIPp, digest as ``ext``) calls ``service`` and REFERs that call to
    ``to`` after ``talk_ms``, its media at ``rtp_port``."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-phone-calls-then-refers.xml"), "-s", service),
            *as_phone(ext, service, server),
            *("-key", "refer_to", to, "-d", str(talk_ms)),
            *("-key", "rtp_port", str(rtp_port), "-i", HOST, "-m", "1", "-nostdin"),
            *("-timeout", "40s", "-timeout_error", "-trace_err", f"{HOST}:{server.port}"),
        ],
        tmp_path,
    )


def wait_event(server: ServerProcess, name: str, **match: str) -> dict[str, object]:
    """The first ``name`` event whose fields start with ``match``'s values (waits 20 s)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for event in server.events(name):
            if all(str(event.get(k, "")).startswith(v) for k, v in match.items()):
                return event
        time.sleep(0.05)
    raise AssertionError(f"no {name} {match}\n" + "\n".join(server.raw[-60:]))


def media_to(party: RtpParty, server: ServerProcess, name: str, **match: str) -> dict[str, object]:
    """Sends ``party``'s audio to the RTP port of the first ``name`` event matching ``match``
    (as ``wait_event`` finds it), and returns that event."""
    event = wait_event(server, name, **match)
    party.send_to(int(str(event["rtp_port"])))
    return event


def parties_talk(server: ServerProcess, caller: RtpParty, transferor: RtpParty) -> None:
    """Sends the trunk caller's audio to its call, once answered, and 201's to the first leg
    the server placed (the one to 201)."""
    caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
    transferor.send_to(forwarding_ports(server, 1)[0])


def forwarding_ports(server: ServerProcess, count: int) -> list[int]:
    """The RTP ports of the first ``count`` legs the server placed, as they are logged."""
    deadline = time.monotonic() + 20
    while len(server.events("call.forwarding")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    placed = server.events("call.forwarding")
    assert len(placed) >= count, "\n".join(server.raw[-60:])
    return [int(str(e["rtp_port"])) for e in placed[:count]]


def answered_port(server: ServerProcess, count: int) -> int:
    """The RTP port of the ``count``-th call the server answered."""
    deadline = time.monotonic() + 20
    while len(server.events("call.answered")) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return int(str(server.events("call.answered")[count - 1]["rtp_port"]))


def heard(packets: list[RtpPacket], fill: int) -> int:
    """How many 20 ms packets of ``fill`` (one party's constant audio) arrived."""
    return sum(1 for p in packets if p.payload_type == 0 and p.payload == bytes([fill]) * 160)


def final_notify(tmp_path: Path) -> str:
    """The status line of the last NOTIFY's sipfrag, as the transferring phone wrote it."""
    return (tmp_path / "transfer-final.txt").read_text().strip()


def finished_all(procs: list[subprocess.Popen[str]], server: ServerProcess) -> None:
    """Each SIPp run in ``procs`` ended as its scenario says (waits 60 s for each)."""
    for proc in procs:
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])


def reap(procs: list[subprocess.Popen[str]]) -> None:
    """SIPp runs still going after a failure are killed and reaped."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def refused_transfer(
    sipp: str, tmp_path: Path, server: ServerProcess, to: str = "202"
) -> tuple[dict[str, object], int]:
    """A trunk caller talks with 201, which transfers it to ``to``; the transfer fails
    (``server`` is stopped after). Returns the ``call.transfer_failed`` event
    and how many of 201's packets the caller heard after it (the call going on)."""
    caller, transferor = RtpParty(CALLER_FILL), RtpParty(TRANSFEROR_FILL)
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(server):
            procs.append(transferring(sipp, tmp_path, server, transferor, to))
            procs.append(trunk_caller(sipp, tmp_path, server, caller))
            parties_talk(server, caller, transferor)
            failed = server.wait_for("call.transfer_failed", timeout=20)
            heard_before = heard(caller.received, TRANSFEROR_FILL)
            finished_all(procs, server)
    finally:
        caller.close()
        transferor.close()
        reap(procs)
    return failed, heard(caller.received, TRANSFEROR_FILL) - heard_before
