"""baresip transfers a call: its ``/transfer`` command (blind transfer, REFER; baresip 1.0 has
no attended transfer) sends the caller to the other baresip.

A SIPp caller on the trunk calls phone 201 (baresip, 440 Hz microphone); 201 answers and
transfers it to extension 202 (baresip, 600 Hz). The caller's media end is an ``RtpParty`` of
the test: it hears 201's tone, then 202's, and 202 hears the caller.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from callserver.media.g711 import ulaw_decode
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
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, write_group
from tests.phones.audio import dominant_frequency, tone, write_wav
from tests.phones.baresip import Baresip
from tests.phones.centrex import group_phone

NUMBER = "38733100201"


def _server(tmp_path: Path) -> ServerProcess:
    """acme's group with phones 201 and 202, MD5 only (baresip 1.0)."""
    write_group(tmp_path)
    return start_server(tmp_path, trunks={**CALLING, "digest": {"algorithms": ["MD5"]}})


def _microphone(tmp_path: Path, frequency: float) -> Path:
    """20 s of ``frequency`` Hz: baresip hangs up when its microphone file ends."""
    return write_wav(tmp_path / f"long-{int(frequency)}.wav", tone(frequency, 20.0))


def _heard(packets: list[RtpPacket]) -> np.ndarray:
    """The PCMU audio in ``packets``, decoded."""
    audio = [ulaw_decode(p.payload) for p in packets if p.payload_type == 0]
    return np.concatenate(audio) if audio else np.zeros(0, dtype=np.int16)


def test_baresip_blind_transfer_sends_the_caller_to_the_other_phone(
    sipp: str, tmp_path: Path
) -> None:
    """201 answers, then ``/transfer``s the caller to 202: 202 answers, the caller hears
    201's 440 Hz and then 202's 600 Hz, 202 hears the caller, 201's leg ends transferred."""
    caller = RtpParty(0x55)
    uac: subprocess.Popen[str] | None = None
    server = _server(tmp_path)
    try:
        with (
            stopped_on_exit(server),
            Baresip(
                tmp_path / "p202", _microphone(tmp_path, 600.0), group_phone(server, "202")
            ) as c,
            Baresip(
                tmp_path / "p201", _microphone(tmp_path, 440.0), group_phone(server, "201")
            ) as b,
        ):
            b.wait_for("registered", timeout=5)
            c.wait_for("registered", timeout=5)
            uac = popen_sipp(
                [
                    sipp,
                    *("-sf", str(SCENARIOS / "uac-bridged-stays-up-then-bye.xml")),
                    *("-key", "rtp_port", str(caller.port), "-i", HOST, "-m", "1"),
                    *("-nostdin", "-timeout", "40s", "-timeout_error", "-s", NUMBER),
                    f"{HOST}:{server.port}",
                ],
                tmp_path,
            )
            caller.send_to(int(str(server.wait_for("call.answered", timeout=10)["rtp_port"])))
            b.wait_for("established", timeout=10)
            b.wait_for(r"\[0:00:02\]", timeout=6)
            before = len(caller.received)
            b.send(f"/transfer sip:202@{HOST}:{server.port}\n")
            c.wait_for("established", timeout=10)
            b.wait_for("closed", timeout=10)
            out, _ = uac.communicate(timeout=30)
            assert uac.returncode == 0, out[-3000:] + "\n".join(server.raw[-60:])
            c.wait_for("closed", timeout=10)
    finally:
        caller.close()
        if uac is not None and uac.poll() is None:
            uac.kill()
            uac.communicate()
    first, second = _heard(caller.received[:before]), _heard(caller.received[before + 25 :])
    assert dominant_frequency(first) == pytest.approx(440.0, abs=10.0)
    assert len(second) >= 8000, "the caller heard less than a second after the transfer"
    assert dominant_frequency(second) == pytest.approx(600.0, abs=10.0)
    fill = int(ulaw_decode(bytes([0x55]))[0])  # the caller's constant sample
    heard = c.received_audio().astype(np.int32)
    assert np.count_nonzero(np.abs(heard - fill) <= 8) >= 8000, "202 did not hear the caller"
    records = exported_cdrs(server.data_dir)
    legs = {(r["leg"], r["called_raw"]): r for r in records}
    assert legs["b", "+38733100201"]["end_reason"] == "transferred", records
    moved = legs["b", "+38733100202"]
    assert moved["transferred_from"] == legs["b", "+38733100201"]["call_id"], moved
    assert moved["disposition"] == "ANSWERED", moved
