"""A supervisor's phone (201) on the agent's call (202 with a trunk caller), end to end: SIPp
signals, each party's media is an RTP party sending a tone of its own, and who hears whom is
read from each party's spectrum.

The caller sends ``CALLER`` Hz, the agent ``AGENT`` Hz, the supervisor ``SUPERVISOR`` Hz.
"""

from __future__ import annotations

import itertools
import subprocess
import time
from pathlib import Path

import pytest

from callserver.media.rtp import RtpPacket
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    popen_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.rooms import magnitude, received_samples
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_service_codes import _frames
from tests.e2e.test_service_codes import _heard as _heard_prompt
from tests.e2e.transfers import (
    ANSWERS,
    as_phone,
    finished_all,
    forwarding_ports,
    reap,
    register_ext,
    sipp_phone,
    wait_event,
)

CALLER, AGENT, SUPERVISOR = 440.0, 700.0, 1000.0
SUPERVISOR_NUMBER = "+38733100201"
CODES = {"listen": "*222202", "whisper": "*223202", "barge": "*224202"}
WINDOW = 150  # packets (3 s) read while the supervisor is on the call


def _server(tmp_path: Path) -> ServerProcess:
    """acme's phones: 201 a supervisor, 202 the agent; a trunk to call from."""
    write_group(tmp_path, roles={"201": "supervisor"})
    return start_server(tmp_path, trunks=CALLING, ring_timeout=60)


def _caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty, stay_ms: int
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the agent 202, hanging up ``stay_ms`` after the answer."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-conference-stays-then-bye.xml")),
            *("-key", "rtp_port", str(rtp.port), "-d", str(stay_ms), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", "38733100202"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def _supervisor(
    sipp: str, tmp_path: Path, server: ServerProcess, code: str, scenario: str, *extra: str
) -> subprocess.Popen[str]:
    """Phone 201 (digest as 201) dialling ``code`` with the SIPp ``scenario``."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / scenario), "-s", code),
            *as_phone("201", code, server),
            *extra,
            *("-i", HOST, "-m", "1", "-nostdin", "-timeout", "40s", "-timeout_error"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )


def _agent_call(
    sipp: str, tmp_path: Path, server: ServerProcess, parties: dict[str, RtpParty], stay_ms: int
) -> list[subprocess.Popen[str]]:
    """202 registered and answering the trunk caller, both sending their tones."""
    port = register_ext(sipp, tmp_path, server, "202")
    procs = [sipp_phone(sipp, tmp_path, ANSWERS, port, parties["agent"])]
    procs.append(_caller(sipp, tmp_path, server, parties["caller"], stay_ms))
    parties["caller"].send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
    parties["agent"].send_to(forwarding_ports(server, 1)[0])
    wait_event(server, "call.bridged")
    return procs


def _refused(
    sipp: str, tmp_path: Path, server: ServerProcess, ext: str, code: str
) -> list[RtpPacket]:
    """Phone ``ext`` dials ``code``, hears a prompt and is refused (403, 404, 480 or 486);
    the packets its media received."""
    party = RtpParty(0xFF)
    try:
        proc = popen_sipp(
            [
                sipp,
                *("-sf", str(SCENARIOS / "uac-phone-call-refused-after-prompt.xml")),
                *("-key", "rtp_port", str(party.port)),
                *("-s", code, *as_phone(ext, code, server), "-i", HOST, "-m", "1"),
                *("-nostdin", "-timeout", "40s", "-timeout_error", f"{HOST}:{server.port}"),
            ],
            tmp_path,
        )
        finished_all([proc], server)
    finally:
        party.close()
    return party.received


def _window(parties: dict[str, RtpParty]) -> dict[str, tuple[int, int]]:
    """The packets each party receives over the next ``WINDOW`` packets' time."""
    start = {name: len(party.received) for name, party in parties.items()}
    time.sleep(WINDOW * 0.02)
    return {name: (start[name], len(party.received)) for name, party in parties.items()}


def _heard(party: RtpParty, window: tuple[int, int]) -> dict[float, float]:
    """The magnitude of each tone in what ``party`` received in ``window``."""
    samples = received_samples(party, *window)
    assert len(samples) > 8000, len(samples)  # over a second of audio
    return {tone: magnitude(samples, tone) for tone in (CALLER, AGENT, SUPERVISOR)}


def _hears(
    levels: dict[float, float], present: tuple[float, ...], absent: tuple[float, ...]
) -> None:
    """Every tone of ``present`` is loud, each of ``absent`` 30 times below the softest."""
    loud = min(levels[tone] for tone in present)
    assert loud > 1e4, levels
    assert all(levels[tone] < loud / 30 for tone in absent), levels


def _unbroken(party: RtpParty, window: tuple[int, int]) -> None:
    """What ``party`` received in ``window`` is the relay as without a supervisor: one packet
    after another, each sequence number and timestamp the last one's plus one packet (the
    sender's own steps), the marker on none of them (no new talkspurt)."""
    packets = party.received[window[0] : window[1]]
    steps = {
        ((b.sequence_number - a.sequence_number) & 0xFFFF, (b.timestamp - a.timestamp) & 0xFFFFFFFF)
        for a, b in itertools.pairwise(packets)
    }
    assert steps == {(1, 160)}, steps
    assert not any(p.marker for p in packets)


def _parties() -> dict[str, RtpParty]:
    """The caller, the agent and the supervisor, each sending its tone."""
    return {
        "caller": tone_party(CALLER),
        "agent": tone_party(AGENT),
        "supervisor": tone_party(SUPERVISOR),
    }


@pytest.mark.parametrize("mode", ["whisper", "barge"])
def test_whisper_and_barge_reach_whom_they_should_and_end_with_the_call(
    sipp: str, tmp_path: Path, mode: str
) -> None:
    """Whisper: the agent hears the caller and the supervisor, the caller only the agent;
    barge: each hears the other two (and a second supervisor is refused, 486); the supervisor
    hears both parties. The caller hangs up: the supervisor's call gets BYE, and the CDRs name
    the monitored call and the supervisor."""
    parties = _parties()
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            procs += _agent_call(sipp, tmp_path, server, parties, 9000)
            keys = ("-key", "rtp_port", str(parties["supervisor"].port))
            scenario = "uac-phone-picks-up-then-expects-bye.xml"
            procs.append(_supervisor(sipp, tmp_path, server, CODES[mode], scenario, *keys))
            supervising = wait_event(server, "call.supervising")
            parties["supervisor"].send_to(int(str(supervising["rtp_port"])))
            time.sleep(1.0)  # play-out buffers fill
            window = _window(parties)
            if mode == "barge":  # one supervisor a call: a second one is refused
                _refused(sipp, tmp_path, server, "201", CODES["listen"])
            finished_all(procs, server)
            ended = wait_event(server, "call.supervision_ended")
            server.wait_for("call.ended")
    finally:
        for party in parties.values():
            party.close()
        reap(procs)
    heard = {name: _heard(party, window[name]) for name, party in parties.items()}
    _hears(heard["supervisor"], (CALLER, AGENT), (SUPERVISOR,))
    _hears(heard["agent"], (CALLER, SUPERVISOR), (AGENT,))
    _unbroken(parties["agent"], window["agent"])
    _unbroken(parties["caller"], window["caller"])
    if mode == "whisper":
        _hears(heard["caller"], (AGENT,), (SUPERVISOR, CALLER))
    else:
        _hears(heard["caller"], (AGENT, SUPERVISOR), (CALLER,))
    assert ended["by"] == "monitored call", ended
    _check_records(server, mode)
    if mode == "barge":
        (again,) = server.events("call.supervision_refused")
        assert (again["status"], again["reason"]) == (486, "202 is monitored already"), again


def test_listen_is_silent_and_the_call_goes_on_when_the_supervisor_hangs_up(
    sipp: str, tmp_path: Path
) -> None:
    """Listen: the supervisor hears both parties, neither party hears it; the supervisor
    hangs up after 6 s and the caller and the agent still hear each other afterwards, their
    packets unbroken from before the supervisor came to after it left."""
    parties = _parties()
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            procs += _agent_call(sipp, tmp_path, server, parties, 12000)
            time.sleep(0.5)
            before = {name: len(parties[name].received) for name in ("agent", "caller")}
            keys = ("-key", "rtp_port", str(parties["supervisor"].port), "-d", "6000")
            scenario = "uac-phone-call-rtp-party.xml"
            listening = _supervisor(sipp, tmp_path, server, CODES["listen"], scenario, *keys)
            procs.append(listening)
            supervising = wait_event(server, "call.supervising")
            parties["supervisor"].send_to(int(str(supervising["rtp_port"])))
            time.sleep(1.0)
            window = _window(parties)
            finished_all([listening], server)
            ended = wait_event(server, "call.supervision_ended")
            after = _window({k: v for k, v in parties.items() if k != "supervisor"})
            finished_all(procs, server)
            server.wait_for("call.ended")
    finally:
        for party in parties.values():
            party.close()
        reap(procs)
    heard = {name: _heard(party, window[name]) for name, party in parties.items()}
    _hears(heard["supervisor"], (CALLER, AGENT), (SUPERVISOR,))
    _hears(heard["agent"], (CALLER,), (SUPERVISOR, AGENT))
    _hears(heard["caller"], (AGENT,), (SUPERVISOR, CALLER))
    assert ended["by"] == "supervisor", ended
    _hears(_heard(parties["agent"], after["agent"]), (CALLER,), (SUPERVISOR, AGENT))
    _hears(_heard(parties["caller"], after["caller"]), (AGENT,), (SUPERVISOR, CALLER))
    for name in ("agent", "caller"):  # from before the supervisor came to after it left
        _unbroken(parties[name], (before[name], after[name][1]))
    _check_records(server, "listen")


def _check_records(server: ServerProcess, mode: str) -> None:
    """The supervisor's record names the caller's call and the mode; the caller's and the
    agent's records name the supervisor."""
    records = exported_cdrs(server.data_dir)
    supervisor = next(r for r in records if r["called_raw"] == CODES[mode])
    caller = next(r for r in records if r["leg"] == "a" and r["trunk"] == "test")
    agent = next(r for r in records if r["leg"] == "b")
    assert (supervisor["monitored_call"], supervisor["monitor_mode"]) == (caller["call_id"], mode)
    assert supervisor["disposition"] == "ANSWERED" and supervisor["steps"] == [mode], supervisor
    assert caller["monitored_by"] == agent["monitored_by"] == SUPERVISOR_NUMBER, (caller, agent)


def test_refusals_say_why(sipp: str, tmp_path: Path) -> None:
    """202 is no supervisor (403), 201 names an extension that does not exist (404) and one
    whose phone is in no call (480): each hears its own prompt first (no supervisor, no such
    extension, not in a call), each CDR says why."""
    refusals = [("202", "*222201", 403), ("201", "*222299", 404), ("201", "*224202", 480)]
    prompts = ["service_not_allowed", "supervise_no_agent", "supervise_not_in_call"]
    with stopped_on_exit(_server(tmp_path)) as server:
        for (ext, code, _status), prompt in zip(refusals, prompts, strict=True):
            heard = _refused(sipp, tmp_path, server, ext, code)
            assert _heard_prompt(heard, prompt, "en") >= _frames(prompt, "en") * 0.8, prompt
            for other in set(prompts) - {prompt}:  # each refusal its own prompt
                assert _heard_prompt(heard, other, "en") < _frames(other, "en") * 0.2, other
        server.wait_for("call.ended")
        refused = server.events("call.supervision_refused")
    assert [(e["code"], e["status"]) for e in refused] == [(c, s) for _e, c, s in refusals]
    records = {r["called_raw"]: r for r in exported_cdrs(server.data_dir)}
    details = {
        code: (records[code]["sip_code"], records[code]["end_detail"]) for _, code, _ in refusals
    }
    assert details == {
        "*222201": (403, "not a supervisor"),
        "*222299": (404, "no extension 299"),
        "*224202": (480, "202 is not in a call"),
    }
    assert all(records[code]["monitored_call"] is None for _, code, _ in refusals)


def test_a_whisper_reaches_the_agent_the_caller_holds(sipp: str, tmp_path: Path) -> None:
    """The caller puts the agent on hold while the supervisor whispers: the agent hears the
    music on hold with the supervisor's voice on it."""
    parties = _parties()
    procs: list[subprocess.Popen[str]] = []
    try:
        with stopped_on_exit(_server(tmp_path)) as server:
            port = register_ext(sipp, tmp_path, server, "202")
            procs.append(sipp_phone(sipp, tmp_path, ANSWERS, port, parties["agent"]))
            procs.append(_holding_caller(sipp, tmp_path, server, parties["caller"]))
            parties["caller"].send_to(int(str(server.wait_for("call.answered")["rtp_port"])))
            parties["agent"].send_to(forwarding_ports(server, 1)[0])
            wait_event(server, "call.bridged")
            keys = ("-key", "rtp_port", str(parties["supervisor"].port))
            scenario = "uac-phone-picks-up-then-expects-bye.xml"
            procs.append(_supervisor(sipp, tmp_path, server, CODES["whisper"], scenario, *keys))
            supervising = wait_event(server, "call.supervising")
            parties["supervisor"].send_to(int(str(supervising["rtp_port"])))
            wait_event(server, "call.held")
            time.sleep(1.0)  # the hold music and the whisper's play-out under way
            window = _window(parties)
            finished_all(procs, server)
            wait_event(server, "call.supervision_ended")
    finally:
        for party in parties.values():
            party.close()
        reap(procs)
    heard = _heard(parties["agent"], window["agent"])
    assert heard[SUPERVISOR] > 1e6, heard  # the whisper, over the music (no 1 kHz in it)


def _holding_caller(
    sipp: str, tmp_path: Path, server: ServerProcess, rtp: RtpParty
) -> subprocess.Popen[str]:
    """SIPp on the trunk calling the agent 202; 4 s after the answer it holds (sendonly) for
    6 s, then hangs up."""
    return popen_sipp(
        [
            sipp,
            *("-sf", str(SCENARIOS / "uac-bridged-holds-then-bye.xml")),
            *("-key", "rtp_port", str(rtp.port), "-i", HOST, "-m", "1"),
            *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", "38733100202"),
            f"{HOST}:{server.port}",
        ],
        tmp_path,
    )
