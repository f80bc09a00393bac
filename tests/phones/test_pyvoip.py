"""pyVoIP, the second test phone, proven against SIPp: it registers with a digest, answers a
call and plays audio the caller receives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pyVoIP.VoIP import CallState

from tests.e2e.conftest import HOST
from tests.phones.audio import dominant_frequency, rms, tone
from tests.phones.pyvoip import PyVoipPhone, from_unsigned8, to_unsigned8
from tests.phones.sipp_peer import sipp_server


def test_pyvoip_registers_then_answers_and_the_caller_gets_its_audio(
    sipp: str, tmp_path: Path
) -> None:
    """pyVoIP registers to SIPp with MD5, answers a SIPp call, and SIPp echoes its 600 Hz tone."""
    registrar = sipp_server(sipp, tmp_path, "uas-registrar-challenges-md5.xml")
    with registrar as server, PyVoipPhone((HOST, server.port), "alice", "secret") as phone:
        assert phone.registered
        returncode, output = server.finish()
        assert returncode == 0, output
        caller = sipp_server(
            sipp,
            tmp_path,
            "uac-calls-phone-expects-ringing.xml",
            *("-rtp_echo", "-s", "alice"),
            port=server.port,
            target=f"{HOST}:{phone.sip_port}",
        )
        with caller as call:
            phone.wait_incoming()
            phone.answer()
            phone.wait_state(CallState.ANSWERED)
            phone.play(tone(600.0, 2.0))
            heard = phone.read_audio(1.0)
            returncode, output = call.finish()
            phone.wait_state(CallState.ENDED)
    assert returncode == 0, output
    assert dominant_frequency(heard) == pytest.approx(600.0, abs=10.0)
    assert rms(heard) > 2000


def test_pyvoip_audio_conversion_keeps_the_signal() -> None:
    """int16 samples survive the 8-bit unsigned round trip within one quantisation step."""
    samples = tone(600.0, 0.1)
    back = from_unsigned8(to_unsigned8(samples))
    assert int(np.max(np.abs(samples.astype(np.int32) - back.astype(np.int32)))) <= 256
