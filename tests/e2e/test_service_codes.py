"""Service codes dialled from a registered Centrex phone, end to end with SIPp and real RTP.

Phone 201 (language hr) registers (tests.e2e.subscribers), then dials codes as SIPp answering
the 407 with its password; its SDP names an ``RtpParty`` socket of the test, so the
confirmation it hears is read here and matched, packet by packet, against the prompt's PCMU
encoding in the phone's language. A setting is read back after a restart of the server on the
same data dir; do-not-disturb refuses a trunk's call with 486; ``#31#`` before a number sends
that call out with the number withheld, checked by a SIPp carrier; ``*39`` after a call marks
it malicious in the log and in its CDRs.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from callserver.media.prompts import PromptStore
from callserver.media.rtp import RtpPacket
from tests.e2e.conftest import (
    HOST,
    PROMPTS,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    run_sipp,
    start_server,
    stopped_on_exit,
    uas_leg,
)
from tests.e2e.rtp_party import RtpParty
from tests.e2e.subscribers import CALLING, PHONES, finished, phone, register_phone, write_group

USER = "38733100201"
STORE = PromptStore(PROMPTS, lambda language: [language])


def _server(
    tmp_path: Path,
    trunks: dict[str, object] = CALLING,
    locks: tuple[str, ...] = (),
    mcid_window: int | None = None,
) -> ServerProcess:
    """acme's group, phones 201 (prompts in hr; ``locks``: services it may not change) and
    202; ``mcid_window``: service_codes.mcid_window_seconds."""
    write_group(tmp_path)
    path = tmp_path / "centrex.yaml"
    data = yaml.safe_load(path.read_text())
    own = data["groups"]["acme-office"]["subscribers"]["+387 33 100 201"]
    own["language"] = "hr"
    own["services"] = {"locks": list(locks)}
    if mcid_window is not None:
        data["service_codes"] = {"mcid_window_seconds": mcid_window}
    path.write_text(yaml.safe_dump(data))
    return start_server(tmp_path, trunks=trunks)


def _dial(sipp: str, tmp_path: Path, server: ServerProcess, code: str) -> list[RtpPacket]:
    """Phone 201 dials ``code`` (``#`` sent as ``%23``) and hears the answer until the BYE;
    the RTP packets it received."""
    dialled = code.replace("#", "%23")
    party = RtpParty(0xFF)
    try:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-phone-dials-code-hears-confirmation.xml")),
            *("-set", "rtp_port", str(party.port), "-s", dialled, "-m", "1"),
            *("-key", "caller", USER, "-au", USER, "-ap", PHONES["201"]),
            *("-auth_uri", f"{dialled}@{HOST}:{server.port}"),
            timeout=60,
        )
    finally:
        party.close()
    assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    return party.received


def _heard(packets: list[RtpPacket], prompt: str, language: str = "hr") -> int:
    """How many of ``packets`` are 20 ms of ``prompt`` in ``language`` (PCMU), silence aside
    (a prompt after another starts anywhere in a packet: the bytes are looked up anywhere)."""
    encoded = STORE.load(prompt, language).encoded("PCMU")
    return sum(
        1
        for p in packets
        if p.payload_type == 0 and len(set(p.payload)) > 4 and encoded.find(p.payload) >= 0
    )


def _frames(prompt: str, language: str = "hr") -> int:
    """The 20 ms packets of ``prompt`` that are not silence."""
    encoded = STORE.load(prompt, language).encoded("PCMU")
    frames = (encoded[i : i + 160] for i in range(0, len(encoded) - 159, 160))
    return sum(1 for frame in frames if len(set(frame)) > 4)


def test_a_code_sets_forwarding_heard_confirmed_and_kept_over_a_restart(
    sipp: str, tmp_path: Path
) -> None:
    """*21*202# sets CFU and the phone hears 'service activated' in Croatian; after a restart
    *#21# reads it back ('forwarding to' and the digits), #21# turns it off, and a locked-free
    *26# turns on do-not-disturb, so a trunk's call to 201 gets 486 unrung; `callserver
    subscribers show` tells it all."""
    with stopped_on_exit(_server(tmp_path)) as server:
        register_phone(sipp, tmp_path, server)
        heard = _dial(sipp, tmp_path, server, "*21*202#")
        changed = server.wait_for("services.changed")
    assert changed["number"] == "+38733100201" and changed["values"] == {"forward_always": "202"}
    assert _heard(heard, "service_activated") >= _frames("service_activated") * 0.8
    with stopped_on_exit(_server(tmp_path)) as server:
        heard = _dial(sipp, tmp_path, server, "*#21#")
        assert _heard(heard, "forwarding_to") >= _frames("forwarding_to") * 0.8
        assert _heard(heard, "n2") > 0 and _heard(heard, "n0") > 0  # 2, 0, 2 read out
        heard = _dial(sipp, tmp_path, server, "#21#")
        assert _heard(heard, "service_deactivated") >= _frames("service_deactivated") * 0.8
        _dial(sipp, tmp_path, server, "*26#")
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-expect-486-forward-failed.xml"), "-m", "1"),
            *("-s", "+38733100201", "-key", "caller", "38761000000"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    shown = subprocess.run(
        [
            *(sys.executable, "-m", "callserver", "subscribers", "show", "+387 33 100 201"),
            *("--config", str(tmp_path / "callserver.yaml")),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "  language: hr" in shown and "  registrations: 1" in shown, shown
    assert any(line.split() == ["dnd", "on", "off", "on"] for line in shown.splitlines()), shown
    records = exported_cdrs(server.data_dir)
    codes = [r for r in records if str(r["called_raw"]).startswith(("*", "#", "%"))]
    assert len(codes) == 4 and all(r["disposition"] == "ANSWERED" for r in codes), records
    assert all(r["subscriber"] == "+38733100201" for r in codes), codes
    refused = [r for r in records if r["called_raw"] == "+38733100201"]
    assert [(r["sip_code"], r["end_detail"]) for r in refused] == [(486, "do not disturb")]


def test_a_locked_service_is_not_allowed_and_changes_nothing(sipp: str, tmp_path: Path) -> None:
    """Do-not-disturb locked by the operator: *26# is answered 'not allowed', nothing set."""
    with stopped_on_exit(_server(tmp_path, locks=("dnd",))) as server:
        heard = _dial(sipp, tmp_path, server, "*26#")
        assert _heard(heard, "service_not_allowed") >= _frames("service_not_allowed") * 0.8
        assert server.events("services.locked") and not server.events("services.changed")


def test_an_invalid_code_is_said_and_changes_nothing(sipp: str, tmp_path: Path) -> None:
    """*21*299# names no extension of the group: 'invalid code or number', nothing set."""
    with stopped_on_exit(_server(tmp_path)) as server:
        heard = _dial(sipp, tmp_path, server, "*21*299#")
        assert _heard(heard, "service_invalid") >= _frames("service_invalid") * 0.8
        assert not server.events("services.changed")
        assert server.events("services.invalid_target")


def test_31_withholds_the_number_of_one_call_out(sipp: str, tmp_path: Path) -> None:
    """#31#061200300 from phone 201 goes out to 061 200 300 with an anonymous From, Privacy: id
    and the phone's number in P-Asserted-Identity, as the carrier checks."""
    template = (SCENARIOS / "uas-carrier-answers-expects-privacy.xml").read_text()
    scenario = tmp_path / "carrier-privacy.xml"
    scenario.write_text(template.replace("IDENTITY", "\\+38733100201"))
    dialled = "%2331%23061200300"
    with uas_leg(sipp, tmp_path, "-sf", str(scenario)) as (carrier, port):
        routes = {"carrier": {"host": HOST, "port": port, "prefixes": ["+387"]}}
        with stopped_on_exit(_server(tmp_path, {**CALLING, "routes": routes})) as server:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(SCENARIOS / "uac-phone-call.xml"), "-m", "1", "-s", dialled),
                *("-key", "caller", USER, "-au", USER, "-ap", PHONES["201"]),
                *("-auth_uri", f"{dialled}@{HOST}:{server.port}"),
                timeout=30,
            )
            try:
                out, _ = carrier.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                out = ""
    log = "\n".join(server.raw[-40:])
    assert result.returncode == 0, result.output[-2000:] + log
    assert carrier.returncode == 0, out[-2000:] + log
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["b"]["called_raw"] == "+38761200300", legs
    assert legs["a"]["called_raw"] == "061200300", legs  # rated and capped as dialled
    assert legs["a"]["number_class"] == legs["b"]["number_class"] is not None, legs


def _withheld_call_answered(
    sipp: str,
    tmp_path: Path,
    server: ServerProcess,
    port: int,
    during: Callable[[], object] = lambda: None,
    talk_ms: int = 500,
) -> None:
    """A caller withholding its number (anonymous From, Privacy: id, its number asserted)
    calls 201, whose phone on ``port`` answers; ``during`` runs once the call is answered;
    the caller hangs up after ``talk_ms``."""
    answered = len(server.events("call.answered"))
    with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
        with ThreadPoolExecutor(1) as pool:
            caller = pool.submit(
                run_sipp,
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(SCENARIOS / "uac-withheld-caller-hangs-up-after-answer.xml")),
                *("-s", "+38733100201", "-key", "caller", "+38761000111"),
                *("-d", str(talk_ms), "-m", "1"),
                timeout=30,
            )
            deadline = time.monotonic() + 20
            while len(server.events("call.answered")) <= answered and not caller.done():
                assert time.monotonic() < deadline, "\n".join(server.raw[-40:])
                time.sleep(0.02)
            during()
            result = caller.result()
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
        finished(rung, server)


def test_39_marks_the_last_incoming_call_malicious_in_the_log_and_its_cdr(
    sipp: str, tmp_path: Path
) -> None:
    """A caller withholding its number calls 201, which answers; the server restarts, then
    201 dials *39 and hears 'service activated': the call was kept in the data dir, the log's
    call.malicious names the caller as received and its source, and `callserver cdr export`
    shows the call's legs marked malicious (the code's own call is not)."""
    port = free_port(both=False)
    with stopped_on_exit(_server(tmp_path)) as server:
        register_phone(sipp, tmp_path, server, port)
        _withheld_call_answered(sipp, tmp_path, server, port)
    with stopped_on_exit(_server(tmp_path)) as server:
        heard = _dial(sipp, tmp_path, server, "*39")
        assert _heard(heard, "service_activated") >= _frames("service_activated") * 0.8
        event = server.wait_for("call.malicious")
    assert "anonymous@anonymous.invalid" in str(event["from_header"]), event
    assert "+38761000111" in str(event["p_asserted_identity"]), event
    assert event["privacy"] == "id" and str(event["source"]).startswith(f"{HOST}:"), event
    assert str(event["call_time"]) < str(event["call_ended"]) < str(event["marked_at"]), event
    records = exported_cdrs(server.data_dir)
    marked = [r for r in records if r["malicious"]]
    assert {r["leg"] for r in marked} == {"a", "b"}, records
    assert all(
        r["call_id"] == event["call_id"] or r["linked_id"] == event["call_id"] for r in marked
    )
    assert all(r["malicious"] == event["marked_at"] for r in marked), marked
    assert [r["called_raw"] for r in records if not r["malicious"]] == ["*39"], records


def test_39_from_a_second_line_marks_the_call_going_on(sipp: str, tmp_path: Path) -> None:
    """While 201 talks with a withheld caller, it dials *39 from a second line: it hears
    'service activated' and that call, not yet ended, is marked in the log and its CDRs."""
    port = free_port(both=False)
    heard: list[list[RtpPacket]] = []
    with stopped_on_exit(_server(tmp_path)) as server:
        register_phone(sipp, tmp_path, server, port)
        _withheld_call_answered(
            sipp,
            tmp_path,
            server,
            port,
            during=lambda: heard.append(_dial(sipp, tmp_path, server, "*39")),
            talk_ms=15000,
        )
        event = server.wait_for("call.malicious")
    assert _heard(heard[0], "service_activated") >= _frames("service_activated") * 0.8
    assert event["call_ended"] is None and event["privacy"] == "id", event
    records = exported_cdrs(server.data_dir)
    marked = [r for r in records if r["malicious"]]
    assert {r["leg"] for r in marked} == {"a", "b"}, records
    assert all(r["malicious"] == event["marked_at"] for r in marked), marked


def test_39_after_the_window_has_nothing_to_mark(sipp: str, tmp_path: Path) -> None:
    """With service_codes.mcid_window_seconds 5, *39 dialled 6 s after the call ended is
    answered 'invalid code or number', logged as call.malicious_none, and no CDR is marked."""
    port = free_port(both=False)
    with stopped_on_exit(_server(tmp_path, mcid_window=5)) as server:
        register_phone(sipp, tmp_path, server, port)
        _withheld_call_answered(sipp, tmp_path, server, port)
        time.sleep(6.0)  # past the window: the server's own clock decides
        heard = _dial(sipp, tmp_path, server, "*39")
        assert _heard(heard, "service_invalid") >= _frames("service_invalid") * 0.8
        refused = server.wait_for("call.malicious_none")
        assert not server.events("call.malicious")
    assert refused["subscriber"] == "+38733100201" and refused["window"] == 5, refused
    assert not any(r["malicious"] for r in exported_cdrs(server.data_dir))


def test_forwarding_set_by_code_takes_the_next_call_to_the_target(
    sipp: str, tmp_path: Path
) -> None:
    """201 dials *21*202#; a trunk's call to 201 then rings 202's registered phone, which
    answers, and the diverted leg's CDR says unconditional, from 201."""
    with stopped_on_exit(_server(tmp_path)) as server:
        port = register_phone(sipp, tmp_path, server, user="38733100202", password=PHONES["202"])
        _dial(sipp, tmp_path, server, "*21*202#")
        with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sn", "uac", "-d", "1000", "-s", "38733100201", "-m", "1"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)
    legs = [r for r in exported_cdrs(server.data_dir) if r["leg"] == "b"]
    assert [(r["called_raw"], r["diversion_reason"], r["diverted_from"]) for r in legs] == [
        ("+38733100202", "unconditional", "+38733100201")
    ], legs
