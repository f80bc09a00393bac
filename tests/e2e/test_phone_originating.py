"""Calls from Centrex phones end to end: extension dialling inside the group, and barring.

Phone 201 is SIPp answering the 407 with its password (MD5, as SIPp 3.6 can), from 127.0.0.1
where the trunk ``test`` also is: its From names the phone, so it is challenged as one. Phone
202 is a SIPp registered from a port where another SIPp then plays the phone
(tests.e2e.subscribers).
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    run_sipp,
    start_server,
    stopped_on_exit,
)
from tests.e2e.subscribers import CALLING, PHONES, finished, phone, register_phone, write_group


def _server(tmp_path: Path, *, barring: tuple[str, ...] = ()) -> ServerProcess:
    """acme's group with phones 201 and 202 (``barring``: the group's classes)."""
    write_group(tmp_path, barring=barring)
    return start_server(tmp_path, trunks=CALLING)


def _as_phone(ext: str) -> tuple[str, ...]:
    """SIPp's arguments to call as phone ``ext``: its From user and digest credentials."""
    user = f"38733100{ext}"
    return ("-key", "caller", user, "-au", user, "-ap", PHONES[ext])


def test_a_phone_dials_an_extension_and_the_other_phone_answers(sipp: str, tmp_path: Path) -> None:
    """201 dials 202: challenged, admitted as 201, 202's registered phone rings and answers;
    the phone's leg is inside the group (nothing charged)."""
    with stopped_on_exit(_server(tmp_path)) as server:
        port = register_phone(sipp, tmp_path, server, user="38733100202", password=PHONES["202"])
        with phone(sipp, tmp_path, "uas-rings-answers-expects-bye.xml", port) as rung:
            result = run_sipp(
                sipp,
                tmp_path,
                server.port,
                *("-sf", str(SCENARIOS / "uac-phone-call.xml"), "-m", "1", "-s", "202"),
                *_as_phone("201"),
                *("-auth_uri", f"202@{HOST}:{server.port}"),
                timeout=30,
            )
            assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
            finished(rung, server)
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["subscriber"] == "+38733100201", legs
    assert legs["b"]["called_raw"] == "+38733100202", legs
    assert legs["b"]["cost"] in (None, "0", "0.0000"), legs


def test_a_phone_barred_from_international_numbers_gets_403(sipp: str, tmp_path: Path) -> None:
    """The group is barred from international numbers: a call to Germany gets 403 (after the
    challenge), and its CDR says barred."""
    with stopped_on_exit(_server(tmp_path, barring=("international",))) as server:
        result = run_sipp(
            sipp,
            tmp_path,
            server.port,
            *("-sf", str(SCENARIOS / "uac-phone-call-expect-403.xml"), "-m", "1"),
            *("-s", "004930123456", *_as_phone("201")),
            *("-auth_uri", f"004930123456@{HOST}:{server.port}"),
            timeout=30,
        )
        assert result.returncode == 0, result.output[-2000:] + "\n".join(server.raw[-40:])
    legs = {record["leg"]: record for record in exported_cdrs(server.data_dir)}
    assert legs["a"]["end_reason"] == "barred" and legs["a"]["sip_code"] == 403, legs
