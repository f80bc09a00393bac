"""pyVoIP as a Centrex phone of `callserver run`: it registers with a digest and answers calls
coming in on the ``test`` trunk, alone or beside a baresip registered for the same number;
the audio crosses the server's bridge both ways and is compared with what was sent."""

from __future__ import annotations

from pathlib import Path

import pytest
from pyVoIP.VoIP import CallState

from tests.e2e.conftest import HOST, exported_cdrs, run_scenario, stopped_on_exit
from tests.e2e.subscribers import AOR, CALLER, PASSWORD, USERNAME
from tests.phones.audio import dominant_frequency, rms, tone
from tests.phones.baresip import Account, Baresip
from tests.phones.centrex import (
    DEFAULT_ALGORITHMS,
    NUMBER,
    centrex_server,
    microphone,
    phone_201,
    stored_bindings,
)
from tests.phones.pyvoip import PyVoipPhone
from tests.phones.sipp_peer import sipp_server


def test_pyvoip_answers_a_trunk_call_and_each_side_hears_the_other(tmp_path: Path) -> None:
    """pyVoIP registered as 201 (SHA-256 and MD5 offered) answers an unregistered baresip calling
    through the trunk: baresip hears pyVoIP's 600 Hz, pyVoIP baresip's 440 Hz, via the bridge."""
    with (
        stopped_on_exit(centrex_server(tmp_path, DEFAULT_ALGORITHMS)) as server,
        PyVoipPhone((HOST, server.port), USERNAME, PASSWORD) as phone,
    ):
        (binding,) = stored_bindings(server, 1)
        assert (binding.aor, binding.port) == (AOR, phone.sip_port)
        with Baresip(tmp_path / "caller", microphone(tmp_path), Account(user="caller")) as caller:
            caller.dial(f"sip:{NUMBER}@{HOST}:{server.port}")
            phone.wait_incoming()
            phone.answer()
            phone.wait_state(CallState.ANSWERED)
            phone.play(tone(600.0, 4.0))
            caller.wait_for("established")
            heard = phone.read_audio(1.0)
            caller.wait_for(r"\[0:00:03\]", timeout=6)
            caller.hang_up()
            caller.wait_for("closed")
            phone.wait_state(CallState.ENDED)
    assert dominant_frequency(heard) == pytest.approx(440.0, abs=10.0)
    answer = caller.received_audio()
    assert len(answer) >= 8000, "the caller received less than a second of audio"
    assert dominant_frequency(answer) == pytest.approx(600.0, abs=10.0)
    assert rms(answer) > 1000


def test_two_phones_of_one_number_ring_pyvoip_answers_and_baresip_stops_ringing(
    sipp: str, tmp_path: Path
) -> None:
    """baresip (ringing, not answering) and pyVoIP both registered as 201 ring for a SIPp
    caller; pyVoIP answers, baresip's call ends unanswered, pyVoIP hears its tone echoed."""
    with stopped_on_exit(centrex_server(tmp_path)) as server:
        ringing_only = phone_201(server, answermode="manual")
        desk = Baresip(tmp_path / "desk", microphone(tmp_path), ringing_only, sip_trace=True)
        with desk, PyVoipPhone((HOST, server.port), USERNAME, PASSWORD) as soft:
            desk.wait_for("registered", timeout=5)
            assert len(stored_bindings(server, 2)) == 2
            caller = sipp_server(
                sipp,
                tmp_path,
                "uac-calls-phone-expects-ringing.xml",
                *("-rtp_echo", "-s", NUMBER),
                target=f"{HOST}:{server.port}",
            )
            with caller as call:
                desk.wait_for("incoming")
                soft.wait_incoming()
                soft.answer()
                soft.wait_state(CallState.ANSWERED)
                desk.wait_for("session_closed")
                soft.play(tone(600.0, 2.0))
                heard = soft.read_audio(1.0)
                returncode, output = call.finish()
                soft.wait_state(CallState.ENDED)
        assert returncode == 0, output + "\n".join(server.raw[-40:])
        assert server.wait_for("call.ringing_contacts")["contacts"] == 2
    assert "Call established" not in desk.output
    (cancel,) = [text for _, text in desk.traced("CANCEL")]
    assert '\nReason: SIP;cause=200;text="Call completed elsewhere"\n' in cancel
    assert dominant_frequency(heard) == pytest.approx(600.0, abs=10.0)
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["disposition"] == legs["b"]["disposition"] == "ANSWERED", legs


def test_pyvoip_left_ringing_by_its_cancel_frees_the_caller_64_t1_later(
    sipp: str, tmp_path: Path
) -> None:
    """pyVoIP rings past calls.ring_timeout (2 s) and answers the CANCEL but never the INVITE
    (pyVoIP 1.6 sends no 487): 64*T1 (T1 0.1 s) after the CANCEL the server gives the INVITE
    up (RFC 3261 §9.1) and the caller gets 480 instead of waiting for ever."""
    with (
        stopped_on_exit(centrex_server(tmp_path, ring_timeout=2, t1=0.1)) as server,
        PyVoipPhone((HOST, server.port), USERNAME, PASSWORD) as phone,
    ):
        stored_bindings(server, 1)
        result = run_scenario(sipp, tmp_path, server, "uac-expect-480.xml", *CALLER)
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        assert phone.wait_incoming().state == CallState.RINGING  # it never learnt otherwise
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["sip_code"] == 480 and legs["b"]["sip_code"] == 408, legs
