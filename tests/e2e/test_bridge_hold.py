"""A forwarded call survives what phones do in a dialog: SIPp on both legs, real RTP on both.

A SIPp caller dials a number whose plan forwards it to a SIPp callee. Each SIPp names an
``RtpParty`` socket of the test as its media address, so what each party hears is read and
decoded here: the held party gets the shipped music on hold (``prompts/moh/``) while
held, and the other party's audio before and after. Re-INVITEs are answered on their own leg
with the right direction (no 481), UPDATE with and without an offer gets 200 with and without
SDP, a re-INVITE without SDP gets our offer and its answer comes in the ACK, an offer we cannot
take gets 488 and changes nothing, INFO digits reach the other leg in the form it negotiated
(RFC 4733 towards the caller, an in-band tone towards the callee, who offered no
telephone-event, an INFO while the callee holds), and the call ends with BYE leaving one CDR
for each leg.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import numpy as np

from callserver.media import g711
from callserver.media.hold_music import load_music
from callserver.media.inband import InbandDetector
from callserver.media.rtp import RtpPacket
from tests.e2e.conftest import (
    HOST,
    PROMPTS,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    media_port,
    plan_dir,
    popen_bound,
    start_server,
)
from tests.e2e.rtp_party import TELEPHONE_EVENT, RtpParty

NUMBER = "38733100200"
TARGET = "+38761200300"
CALLER_FILL, CALLEE_FILL = 0x55, 0x33  # each party's constant PCMU payload
MUSIC = load_music(PROMPTS / "moh")[0].encoded("PCMU")


def _server(tmp_path: Path, uas_port: int) -> ServerProcess:
    plans = plan_dir(
        tmp_path, NUMBER, f'steps:\n  support:\n    forward: "{TARGET}"\n    ring_timeout: 10s\n'
    )
    trunks = {
        "trunks": {"test": {"match": [HOST], "channels": 2}},
        "routes": {"pbx": {"host": HOST, "port": uas_port}},
        "default_route": "pbx",
    }
    return start_server(tmp_path, dialplans=plans, trunks=trunks)


def _sipp(sipp: str, tmp_path: Path, scenario: str, rtp: RtpParty, *args: str) -> list[str]:
    return [
        sipp,
        *("-sf", str(SCENARIOS / scenario), "-key", "rtp_port", str(rtp.port)),
        *("-i", HOST, "-mp", str(media_port()), "-m", "1", "-nostdin"),
        *("-timeout", "40s", "-timeout_error", "-trace_err"),
        *("-error_file", str(tmp_path / f"{scenario}.errors")),
        *args,
    ]


def _bridged_call(
    sipp: str, tmp_path: Path, caller_scenario: str, callee_scenario: str, press: str | None
) -> tuple[ServerProcess, RtpParty, RtpParty]:
    """Run one forwarded call; the caller presses ``press`` (RFC 4733) once a hold ended."""
    caller, callee = RtpParty(CALLER_FILL), RtpParty(CALLEE_FILL)
    uas, uas_port = popen_bound(
        lambda port: _sipp(sipp, tmp_path, callee_scenario, callee, "-p", str(port)), tmp_path
    )
    server = _server(tmp_path, uas_port)
    uac: subprocess.Popen[str] | None = None
    try:
        uac = subprocess.Popen(
            _sipp(sipp, tmp_path, caller_scenario, caller, f"{HOST}:{server.port}", "-s", NUMBER),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            cwd=tmp_path,
        )
        callee.send_to(int(str(server.wait_for("call.forwarding")["rtp_port"])))
        caller.send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
        if press is not None:
            server.wait_for("call.resumed", timeout=20)
            caller.press(press)
        uac_out, _ = uac.communicate(timeout=60)
        uas_out, _ = uas.communicate(timeout=30)
    finally:
        server.stop()
        for proc in (uas, uac):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
        caller.close()
        callee.close()
    log = "\n".join(server.raw[-60:])
    assert uac is not None and uac.returncode == 0, uac_out[-3000:] + _errors(tmp_path) + log
    assert uas.returncode == 0, uas_out[-3000:] + _errors(tmp_path) + log
    return server, caller, callee


def _errors(tmp_path: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in tmp_path.glob("*.errors"))


def _heard(packets: list[RtpPacket], other_fill: int) -> list[tuple[str, int]]:
    """What a party heard, as runs: ``relay`` (the other party's audio), ``moh``, ``other``."""
    relay, music = bytes([other_fill]) * 160, MUSIC + MUSIC[:159]
    kinds = []
    for packet in packets:
        if packet.payload_type != 0:
            continue
        if packet.payload == relay:
            kinds.append("relay")
        elif music.find(packet.payload) >= 0:
            kinds.append("moh")
        else:
            kinds.append("other")
    return [(kind, len(list(run))) for kind, run in itertools.groupby(kinds)]


def _held_then_resumed(runs: list[tuple[str, int]]) -> None:
    """Relayed audio, then at least a second of music on hold, then relayed audio again
    (``other`` packets, a digit's tone, may interrupt the relayed audio, never the music)."""
    audio = [(kind, count) for kind, count in runs if kind != "other"]
    merged = [(k, sum(c for _, c in run)) for k, run in itertools.groupby(audio, lambda r: r[0])]
    assert [kind for kind, count in merged if count >= 10] == ["relay", "moh", "relay"], runs
    assert max(count for kind, count in merged if kind == "moh") >= 50, runs


def _one_cdr_per_leg(server: ServerProcess) -> None:
    records = exported_cdrs(server.data_dir)
    assert sorted(str(r["leg"]) for r in records) == ["a", "b"], records
    legs = {r["leg"]: r for r in records}
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED", records
    assert legs["b"]["linked_id"] == legs["a"]["call_id"]
    assert legs["a"]["end_reason"] == legs["b"]["end_reason"] == "normal", records
    assert (legs["a"]["hangup_by"], legs["b"]["hangup_by"]) == ("caller", "server"), records


def _inband_digits(packets: list[RtpPacket]) -> list[str]:
    """The DTMF digits detected in-band in the PCMU audio of ``packets`` (ITU-T Q.24)."""
    detector = InbandDetector(capacity=1)
    slot = np.array([detector.add_stream()], dtype=np.intp)
    digits = []
    for packet in packets:
        if packet.payload_type == 0 and len(packet.payload) == 160:
            frame = g711.decode("PCMU", packet.payload).reshape(1, 160)
            digits += [digit for _, digit in detector.process(slot, frame)]
    return digits


def test_the_callee_holds_and_resumes_and_the_call_survives(sipp: str, tmp_path: Path) -> None:
    """The callee holds and resumes (200 recvonly, sendrecv): the caller hears music, then it."""
    server, caller, _ = _bridged_call(
        sipp,
        tmp_path,
        "uac-bridged-stays-up-then-bye.xml",
        "uas-bridged-holds-resumes-updates-then-expects-bye.xml",
        press=None,
    )
    _held_then_resumed(_heard(caller.received, CALLEE_FILL))
    events = [p.payload[0] for p in caller.received if p.payload_type == TELEPHONE_EVENT]
    assert events and set(events) == {5}, "the callee's INFO 5 reaches the caller as RFC 4733"
    assert [e["leg"] for e in server.events("call.held")] == ["a"]
    assert [e["leg"] for e in server.events("call.resumed")] == ["a"]
    _one_cdr_per_leg(server)


def test_the_caller_holds_and_resumes_and_the_call_survives(sipp: str, tmp_path: Path) -> None:
    """The caller holds and resumes (200 recvonly, sendrecv): the callee hears music, then it."""
    server, _, callee = _bridged_call(
        sipp,
        tmp_path,
        "uac-bridged-holds-resumes-updates-then-bye.xml",
        "uas-bridged-answers-then-expects-bye.xml",
        press="8",
    )
    _held_then_resumed(_heard(callee.received, CALLER_FILL))
    assert _inband_digits(callee.received) == ["8", "3"], "RFC 4733 8 and INFO 3, as tones"
    assert [e["leg"] for e in server.events("call.held")] == ["b"]
    assert [e["leg"] for e in server.events("call.resumed")] == ["b"]
    _one_cdr_per_leg(server)


def test_late_offer_zero_address_hold_488_and_inactive_on_the_forwarded_leg(
    sipp: str, tmp_path: Path
) -> None:
    """The callee renegotiates every way a phone may; the caller's INFO reaches it as INFO."""
    server, caller, _ = _bridged_call(
        sipp,
        tmp_path,
        "uac-bridged-sends-info-7-then-bye.xml",
        "uas-bridged-late-offer-hold-488-inactive-info-then-expects-bye.xml",
        press=None,
    )
    _held_then_resumed(_heard(caller.received, CALLEE_FILL))
    assert [e["leg"] for e in server.events("call.held")] == ["a"], "held once, through all"
    assert [e["leg"] for e in server.events("call.resumed")] == ["a"]
    directions = [e["direction"] for e in server.events("call.media_updated")]
    assert directions == ["recvonly", "recvonly", "inactive", "sendrecv"], directions
    _one_cdr_per_leg(server)
