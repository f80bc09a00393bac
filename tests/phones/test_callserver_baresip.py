"""baresip as a Centrex phone of `callserver run`: it registers with a digest over UDP and TCP,
and a SIPp caller coming in on the ``test`` trunk reaches it over the flow it registered on,
its audio decoded on the phone and compared with what was sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import HOST, run_sipp, stopped_on_exit
from tests.phones.audio import dominant_frequency, rms, tone, write_ulaw
from tests.phones.baresip import Baresip
from tests.phones.centrex import (
    AOR,
    NUMBER,
    centrex_server,
    microphone,
    phone_201,
    stored_bindings,
)
from tests.phones.sipp_peer import SCENARIOS


def _invite_arrivals(phone: Baresip) -> list[str]:
    """``TRANSPORT source -> destination`` of each INVITE in the phone's SIP trace."""
    return re.findall(r"(\w+ \S+ -> \S+)\s+INVITE ", phone.output)


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
            incoming = phone.wait_for("incoming")
            phone.wait_for("established")
            phone.wait_for("closed")
        assert server.wait_for("call.ringing_contacts")["contacts"] == 1
    assert incoming
    flow = f"{transport.upper()} {HOST}:{server.port} -> {HOST}:{binding.port}"
    assert _invite_arrivals(phone) == [flow], phone.output[-4000:]
    heard = phone.received_audio()
    assert len(heard) >= 8000, "less than a second of audio received"
    assert dominant_frequency(heard) == pytest.approx(1000.0, abs=10.0)
    assert rms(heard) > 2000
