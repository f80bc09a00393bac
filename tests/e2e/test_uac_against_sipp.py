"""Our UAC (the future forwarding leg) against SIPp as the called party."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.sip.dialog import DialogId
from callserver.sip.events import DialogConfirmed, DialogTerminated, Peer, ResponseReceived
from callserver.sip.headers import parse_address
from callserver.sip.uri import parse_uri
from tests.e2e.conftest import HOST, SCENARIOS, start_uas
from tests.e2e.uac_driver import UacDriver

OFFER = (
    b"v=0\r\no=callserver 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 20000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


async def _call(driver: UacDriver, port: int, **kwargs: object) -> None:
    endpoint = driver.endpoint
    assert endpoint is not None
    loop_now = __import__("asyncio").get_running_loop().time
    handle = endpoint.uac.invite(
        parse_uri(f"sip:service@{HOST}:{port}"),
        from_addr=parse_address(f"<sip:callserver@{HOST}>"),
        to_addr=parse_address(f"<sip:service@{HOST}:{port}>"),
        peer=Peer("udp", HOST, port),
        now=loop_now(),
        body=OFFER,
        **kwargs,  # type: ignore[arg-type]
    )
    driver.pump()
    ok = await driver.wait_for(
        lambda e: isinstance(e, ResponseReceived) and e.key == handle and e.response.status >= 200
    )
    assert isinstance(ok, ResponseReceived) and ok.response.status == 200, ok
    confirmed = await driver.wait_for(lambda e: isinstance(e, DialogConfirmed))
    assert isinstance(confirmed, DialogConfirmed) and isinstance(confirmed.dialog_id, DialogId)
    endpoint.bye(confirmed.dialog_id, loop_now())
    driver.pump()
    await driver.wait_for(lambda e: isinstance(e, DialogTerminated))
    bye_ok = await driver.wait_for(
        lambda e: isinstance(e, ResponseReceived) and e.response.cseq().method == "BYE"
    )
    assert isinstance(bye_ok, ResponseReceived) and bye_ok.response.status == 200


@pytest.mark.parametrize("scenario", ["builtin-uas", "digest"])
async def test_our_uac_calls_sipp(sipp: str, tmp_path: Path, scenario: str) -> None:
    """INVITE, 200, ACK, BYE against SIPp's uas; with digest, the 401 is answered (MD5)."""
    if scenario == "digest":
        proc, port = start_uas(sipp, tmp_path, "-sf", str(SCENARIOS / "uas-expect-digest-auth.xml"))
        kwargs: dict[str, object] = {"credentials": ("alice", "secret")}
    else:
        proc, port = start_uas(sipp, tmp_path, "-sn", "uas")
        kwargs = {}
    driver = await UacDriver.open()
    try:
        await _call(driver, port, **kwargs)
        output, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, output[-3000:]
    finally:
        driver.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
