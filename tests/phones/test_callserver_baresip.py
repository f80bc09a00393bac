"""baresip as a Centrex phone of `callserver run`: it registers with a digest over UDP and TCP
(and after a 423), and a SIPp caller coming in on the ``test`` trunk reaches it over the flow it
registered on, its audio decoded on the phone and compared with what was sent; the phone hangs
up, the caller cancels, two phones answer at once, the server restarts, the phone dies.

baresip's SIP trace (``sip_trace``) shows where each request came from and went to."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, exported_cdrs, launch, run_sipp, stopped_on_exit
from tests.e2e.conftest import SCENARIOS as E2E_SCENARIOS
from tests.e2e.subscribers import AOR
from tests.phones.audio import dominant_frequency, rms, tone, write_ulaw
from tests.phones.baresip import Baresip
from tests.phones.centrex import (
    NUMBER,
    centrex_server,
    microphone,
    phone_201,
    stored_bindings,
)
from tests.phones.sipp_peer import SCENARIOS, sipp_server


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_to_callserver_with_a_digest(tmp_path: Path, transport: str) -> None:
    """baresip answers the server's 401 over UDP or TCP and gets 200; the binding is stored with
    the address, port and transport its REGISTER came from."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        account = phone_201(server, transport)
        with Baresip(tmp_path / "phone", microphone(tmp_path), account) as phone:
            registered = phone.wait_for("registered", timeout=5)
            changed = server.wait_for("registrar.bindings_changed")
            (binding,) = stored_bindings(server, 1)
            assert "[1 binding]" in phone.output
        assert f"/{transport.upper()}/" in registered
        assert changed["aor"] == AOR and changed["changes"] == ["registered"]
        assert (binding.aor, binding.transport, binding.host) == (AOR, transport, HOST)
        assert f"@{HOST}:{phone.sip_port}" in binding.contact
        if transport == "udp":  # a TCP REGISTER comes from an ephemeral port
            assert binding.port == phone.sip_port
        assert server.proc.poll() is None


def test_baresip_asking_for_too_short_an_expiry_registers_with_the_min_expires(
    tmp_path: Path,
) -> None:
    """baresip asks for 30 s; the server's 423 names Min-Expires 60 and the phone registers
    again for 60 s (RFC 3261 §10.2.8, §10.3 step 7), which the 200 lists."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        account = dataclasses.replace(phone_201(server), regint=30)
        with Baresip(tmp_path / "phone", microphone(tmp_path), account, sip_trace=True) as phone:
            phone.wait_for("registered", timeout=5)
            stored_bindings(server, 1)
    asked = [re.findall(r";expires=(\d+)", text) for _, text in phone.traced("REGISTER")]
    assert asked[:3] == [["30"], ["60"], ["60"]], asked  # got 423, 401, 200; then its removal
    assert re.search(r"SIP/2.0 423 Interval Too Brief\s.*?\nMin-Expires: 60\s", phone.output, re.S)
    assert re.search(r"SIP/2.0 200 OK\s.*?\nContact: <[^>]+>;expires=60\s", phone.output, re.S)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_trunk_call_to_the_number_reaches_baresip_which_hears_the_caller(
    sipp: str, tmp_path: Path, transport: str
) -> None:
    """A SIPp caller on the trunk calls 201; baresip, registered over UDP or TCP, rings over
    that flow, auto-answers, and its decoded audio is SIPp's 1 kHz tone through the bridge."""
    write_ulaw(tmp_path / "tone.ulaw", tone(1000.0, 2.0))
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        account = phone_201(server, transport)
        mic = microphone(tmp_path)
        with Baresip(tmp_path / "phone", mic, account, sip_trace=True) as phone:
            phone.wait_for("registered", timeout=5)
            (binding,) = stored_bindings(server, 1)
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(SCENARIOS / "uac-calls-phone-sends-tone.xml")),
                *("-s", NUMBER, "-m", "1"),
                timeout=20,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            phone.wait_for("incoming")
            phone.wait_for("established")
            phone.wait_for("closed")
        assert server.wait_for("call.ringing_contacts")["contacts"] == 1
    flow = f"{transport.upper()} {HOST}:{server.port} -> {HOST}:{binding.port}"
    assert [arrival for arrival, _ in phone.traced("INVITE")] == [flow], phone.output[-4000:]
    heard = phone.received_audio()
    assert len(heard) >= 8000, "less than a second of audio received"
    assert dominant_frequency(heard) == pytest.approx(1000.0, abs=10.0)
    assert rms(heard) > 2000


def test_baresip_hangs_up_over_its_tcp_flow_and_the_caller_gets_the_bye(
    sipp: str, tmp_path: Path
) -> None:
    """baresip registered over TCP answers a trunk call and hangs up: its BYE goes out on the
    connection it registered on and the server ends the caller's side with a BYE."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        account = phone_201(server, "tcp")
        with Baresip(tmp_path / "phone", microphone(tmp_path), account, sip_trace=True) as phone:
            phone.wait_for("registered", timeout=5)
            (binding,) = stored_bindings(server, 1)
            caller = sipp_server(
                sipp,
                tmp_path,
                str(E2E_SCENARIOS / "uac-expect-server-bye.xml"),  # absolute: not under SCENARIOS
                *("-s", NUMBER),
                target=f"{HOST}:{server.port}",
            )
            with caller as call:
                phone.wait_for("established")
                phone.wait_for(r"\[0:00:01\]", timeout=5)
                phone.hang_up()
                phone.wait_for("closed")
                returncode, output = call.finish()
        assert returncode == 0, output + "\n".join(server.raw[-40:])
        assert server.wait_for("call.ended")["reason"] == "bye_sent"
    flow = f"TCP {HOST}:{binding.port} -> {HOST}:{server.port}"
    assert [sent for sent, _ in phone.traced("BYE")] == [flow], phone.output[-4000:]


def test_the_caller_cancels_while_baresip_rings_and_it_stops_ringing(
    sipp: str, tmp_path: Path
) -> None:
    """The caller sends CANCEL after the 180 of a ringing baresip: the phone gets a CANCEL, its
    session closes unanswered, and the caller gets 487."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        account = phone_201(server, answermode="manual")
        with Baresip(tmp_path / "phone", microphone(tmp_path), account, sip_trace=True) as phone:
            phone.wait_for("registered", timeout=5)
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(E2E_SCENARIOS / "uac-cancel-expect-487.xml"), "-s", NUMBER),
                *("-m", "1"),
                timeout=20,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            phone.wait_for("incoming")
            phone.wait_for("session_closed")
    (cancel,) = [text for _, text in phone.traced("CANCEL")]
    assert "\nReason:" not in cancel  # nobody answered elsewhere
    assert "Call established" not in phone.output


def test_a_baresip_whose_tcp_connection_closed_is_not_rung(sipp: str, tmp_path: Path) -> None:
    """baresip registered over TCP dies without unregistering: the closed connection leaves
    its binding unusable, so a caller gets 480 at once and nothing is sent to its contact."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        with Baresip(tmp_path / "phone", microphone(tmp_path), phone_201(server, "tcp")) as phone:
            phone.wait_for("registered", timeout=5)
            stored_bindings(server, 1)
            phone.kill()
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(E2E_SCENARIOS / "uac-expect-480.xml"), "-s", NUMBER, "-m", "1"),
            *("-key", "caller", "38761000000"),
            timeout=20,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        assert server.events("call.ringing_contacts") == []
        assert len(stored_bindings(server, 1)) == 1  # kept, for when it registers again
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["b"]["end_detail"] == "not registered", legs


def test_baresip_registered_before_a_restart_is_rung_after_it(sipp: str, tmp_path: Path) -> None:
    """The server stops and starts again on its port and data directory while baresip stays
    registered: the stored binding rings the phone, with no new REGISTER, and it answers."""
    first = centrex_server(tmp_path)
    with (
        stopped_on_exit(first),
        Baresip(tmp_path / "phone", microphone(tmp_path), phone_201(first)) as phone,
    ):
        phone.wait_for("registered", timeout=5)
        stored_bindings(first, 1)
        assert first.stop() == 0
        config = str(tmp_path / "callserver.yaml")
        with stopped_on_exit(
            launch(["run", "--config", config], first.port, first.data_dir)
        ) as again:
            result = run_sipp(
                sipp,
                tmp_path,
                again.port,
                *("-sf", str(SCENARIOS / "uac-calls-phone-expects-ringing.xml")),
                *("-s", NUMBER, "-m", "1"),
                timeout=20,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(again.raw[-40:])
            phone.wait_for("established")
            phone.wait_for("closed")
            assert again.events("registrar.bindings_changed") == []


def test_two_baresips_answering_at_once_leave_the_caller_bridged_to_one(
    sipp: str, tmp_path: Path
) -> None:
    """Two auto-answering baresips of 201 answer at once: the first 200 wins and hears the
    caller's tone; the other is CANCELled, or if its 200 crossed the CANCEL, ACKed and hung up
    at once (RFC 3261 §9.1, §15); one phone leg has a CDR."""
    write_ulaw(tmp_path / "tone.ulaw", tone(1000.0, 2.0))
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        phones = [
            Baresip(tmp_path / name, microphone(tmp_path), phone_201(server), sip_trace=True)
            for name in ("desk", "soft")
        ]
        with phones[0], phones[1]:
            for phone in phones:
                phone.wait_for("registered", timeout=5)
            stored_bindings(server, 2)
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(SCENARIOS / "uac-calls-phone-sends-tone.xml")),
                *("-s", NUMBER, "-m", "1"),
                timeout=20,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            for phone in phones:
                phone.wait_for("session_closed")
    heard = [len(p.received_audio()) if any(p.snd_path.glob("*-dec.wav")) else 0 for p in phones]
    winner = phones[heard.index(max(heard))]
    # The loser's RTP, sent to the leg's one port, may arrive first: the winner's takes over.
    assert max(heard) >= 8000 and min(heard) < 800, heard  # the other is never bridged
    assert dominant_frequency(winner.received_audio()) == pytest.approx(1000.0, abs=10.0)
    legs = [str(record["leg"]) for record in exported_cdrs(server.data_dir)]
    assert sorted(legs) == ["a", "b"], legs
