"""baresip, the test phone, proven against SIPp: it answers a call and hears the caller, calls
a SIPp uas that hears it, and registers with a digest over UDP and TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from callserver.media.dtmf import DIGITS
from tests.e2e.conftest import HOST, run_sipp
from tests.e2e.rtp_party import TELEPHONE_EVENT, RtpParty
from tests.phones.audio import dominant_frequency, rms, tone, write_ulaw, write_wav
from tests.phones.baresip import Account, Baresip, baresip_path
from tests.phones.sipp_peer import SCENARIOS, sipp_server


def _microphone(tmp_path: Path, frequency: float = 440.0) -> Path:
    return write_wav(tmp_path / "microphone.wav", tone(frequency, 4.0))


def test_baresip_answers_a_call_and_records_the_callers_tone(sipp: str, tmp_path: Path) -> None:
    """An unregistered baresip auto-answers SIPp and its received WAV holds SIPp's 1 kHz tone."""
    write_ulaw(tmp_path / "tone.ulaw", tone(1000.0, 2.0))
    with Baresip(tmp_path / "phone", _microphone(tmp_path)) as phone:
        result = run_sipp(
            sipp,
            tmp_path,
            phone.sip_port,
            *("-sf", str(SCENARIOS / "uac-calls-phone-sends-tone.xml")),
            *("-s", "phone", "-m", "1"),
            timeout=15,
        )
        assert result.returncode == 0, result.output[-2000:]
        phone.wait_for("incoming")
        phone.wait_for("established")
        phone.wait_for("closed")
    heard = phone.received_audio()
    assert len(heard) >= 8000, "less than a second of audio received"
    assert dominant_frequency(heard) == pytest.approx(1000.0, abs=10.0)
    assert rms(heard) > 2000


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_calls_a_sipp_uas_which_hears_it(sipp: str, tmp_path: Path, transport: str) -> None:
    """baresip dials a SIPp uas echoing RTP and receives back its own 440 Hz tone."""
    scenario = "uas-answers-echoes-audio-expects-bye.xml"
    with sipp_server(sipp, tmp_path, scenario, "-rtp_echo", transport=transport[0] + "1") as uas:
        account = Account(transport=transport)
        with Baresip(tmp_path / "phone", _microphone(tmp_path), account) as phone:
            phone.dial(f"sip:+38733100200@{HOST}:{uas.port};transport={transport}")
            phone.wait_for("established")
            phone.wait_for(r"incoming rtp for 'audio' established")
            phone.wait_for(r"\[0:00:03\]", timeout=8)  # a second of echo to spare under load
            phone.hang_up()
            phone.wait_for("closed")
        returncode, output = uas.finish()
    assert returncode == 0, output
    echoed = phone.received_audio()
    assert len(echoed) >= 8000, "less than a second of echoed audio"
    assert dominant_frequency(echoed[4000:]) == pytest.approx(440.0, abs=10.0)
    assert dominant_frequency(phone.sent_audio()) == pytest.approx(440.0, abs=10.0)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_baresip_registers_answering_a_401_md5_challenge_and_unregisters_on_quit(
    sipp: str, tmp_path: Path, transport: str
) -> None:
    """baresip registers over UDP or TCP answering a 401 with MD5, and removes it when it quits."""
    scenario = "uas-registrar-challenges-md5-expects-removal.xml"
    with sipp_server(sipp, tmp_path, scenario, transport=transport[0] + "1") as registrar:
        account = Account(
            user="alice",
            registrar=(HOST, registrar.port),
            transport=transport,
            auth_user="alice",
            password="secret",
        )
        with Baresip(tmp_path / "phone", _microphone(tmp_path), account) as phone:
            registered = phone.wait_for("registered", timeout=5)
        returncode, output = registrar.finish()
    assert returncode == 0, output
    assert f"/{transport.upper()}/" in registered


def test_a_missing_baresip_fails_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without baresip on PATH the phone's test fails (never skips) naming the Debian package."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception, match="apt-get install baresip-core"):
        baresip_path()


def test_baresip_sends_pressed_digits_as_rfc4733_events(sipp: str, tmp_path: Path) -> None:
    """Digits pressed on baresip's console reach the called party as RFC 4733 events."""
    party = RtpParty(fill=0xFF)
    scenario = "uas-answers-at-key-rtp-port-expects-bye.xml"
    try:
        with (
            sipp_server(sipp, tmp_path, scenario, "-key", "rtp_port", str(party.port)) as uas,
            Baresip(tmp_path / "phone", _microphone(tmp_path)) as phone,
        ):
            phone.dial(f"sip:+38733100200@{HOST}:{uas.port}")
            phone.wait_for("established")
            phone.send_digits("15#")
            phone.wait_for(r"\[0:00:02\]", timeout=5)
            phone.hang_up()
            phone.wait_for("closed")
            returncode, output = uas.finish()
    finally:
        party.close()
    assert returncode == 0, output
    events = [p for p in party.received if p.payload_type == TELEPHONE_EVENT]
    pressed = [DIGITS[p.payload[0]] for p in events if p.marker]
    assert pressed == ["1", "5", "#"]
    assert any(p.payload_type == 0 for p in party.received), "no PCMU audio received"


def test_baresip_reports_a_refused_registration(sipp: str, tmp_path: Path) -> None:
    """With a wrong password the SIPp registrar answers 403 and baresip reports the failure."""
    scenario = "uas-registrar-challenges-md5.xml"
    with sipp_server(sipp, tmp_path, scenario) as registrar:
        account = Account(
            user="alice", registrar=(HOST, registrar.port), auth_user="alice", password="wrong"
        )
        with Baresip(tmp_path / "phone", _microphone(tmp_path), account) as phone:
            failed = phone.wait_for("register_failed", timeout=5)
            registrar.finish()
    assert "403" in failed
    assert "200 OK" not in phone.output


def test_baresip_starts_on_other_ports_when_its_sip_port_was_taken(tmp_path: Path) -> None:
    """If another process binds the phone's SIP port before it starts, it starts on new ports."""
    phone = Baresip(tmp_path / "phone", _microphone(tmp_path))
    taken = phone.sip_port
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((HOST, taken))
        with phone:
            assert phone.sip_port != taken
            assert f"{HOST}:{phone.sip_port}" in phone.uri
