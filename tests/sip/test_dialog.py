"""Dialog state from INVITE and response, and the requests a dialog builds (RFC 3261 §12)."""

from __future__ import annotations

from callserver.sip.dialog import Dialog, DialogState
from callserver.sip.events import Peer
from callserver.sip.message import Headers, Request, Response
from callserver.sip.uri import parse_uri

PEER = Peer("udp", "192.0.2.10", 5060)


def _invite(*extra: tuple[str, str]) -> Request:
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-d1"),
            ("From", "<sip:alice@example.org>;tag=a1"),
            ("To", "<sip:bob@example.com>"),
            ("Call-ID", "dlg-1"),
            ("CSeq", "7 INVITE"),
            ("Contact", "<sip:alice@192.0.2.10:5070>"),
            *extra,
        ]
    )
    return Request("INVITE", parse_uri("sip:bob@example.com"), headers)


def _ok(invite: Request, *extra: tuple[str, str]) -> Response:
    headers = Headers(
        [
            ("Via", invite.headers.get("Via") or ""),
            ("From", invite.headers.get("From") or ""),
            ("To", "<sip:bob@example.com>;tag=b1"),
            ("Call-ID", "dlg-1"),
            ("CSeq", "7 INVITE"),
            ("Contact", "<sip:bob@198.51.100.5:5080>"),
            *extra,
        ]
    )
    return Response(200, "OK", headers)


def test_uas_dialog_keeps_record_route_in_order_and_builds_a_loose_routed_bye() -> None:
    """The UAS route set is Record-Route in order; with lr the Request-URI is the remote target."""
    invite = _invite(("Record-Route", "<sip:p1.example.net;lr>, <sip:p2.example.net;lr>"))
    dialog = Dialog.as_uas(invite, _ok(invite), PEER)
    assert dialog.state is DialogState.CONFIRMED
    assert (dialog.id.local_tag, dialog.id.remote_tag) == ("b1", "a1")
    bye = dialog.create_request("BYE", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-bye")
    assert str(bye.uri) == "sip:alice@192.0.2.10:5070"
    assert bye.headers.get_all("Route") == ["<sip:p1.example.net;lr>", "<sip:p2.example.net;lr>"]
    assert bye.cseq().seq == 1 and bye.to().tag == "a1" and bye.from_().tag == "b1"
    assert str(dialog.next_hop()) == "sip:p1.example.net;lr"


def test_uac_dialog_reverses_record_route_and_handles_strict_routing() -> None:
    """The UAC route set is Record-Route reversed; a strict first hop becomes the Request-URI."""
    invite = _invite()
    response = _ok(invite, ("Record-Route", "<sip:p2.example.net;lr>, <sip:p1.example.net>"))
    dialog = Dialog.as_uac(invite, response, PEER)
    assert dialog.route_set == ("<sip:p1.example.net>", "<sip:p2.example.net;lr>")
    bye = dialog.create_request("BYE", "SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-b2")
    assert str(bye.uri) == "sip:p1.example.net"
    assert bye.headers.get_all("Route") == [
        "<sip:p2.example.net;lr>",
        "<sip:bob@198.51.100.5:5080>",
    ]
    assert bye.cseq().seq == 8, "the UAC continues after its INVITE's CSeq"


def test_remote_cseq_ordering_and_target_refresh() -> None:
    """Lower CSeqs are refused (§12.2.2); a re-INVITE's Contact refreshes the remote target."""
    invite = _invite()
    dialog = Dialog.as_uas(invite, _ok(invite), PEER)
    older = _invite()
    older.headers.set("CSeq", "6 INFO")
    assert not dialog.accept_remote_cseq(Request("INFO", invite.uri, older.headers))
    reinvite = _invite()
    reinvite.headers.set("CSeq", "9 INVITE")
    reinvite.headers.set("Contact", "<sip:alice@192.0.2.99:5090>")
    assert dialog.accept_remote_cseq(reinvite)
    assert str(dialog.remote_target) == "sip:alice@192.0.2.99:5090"
    ack = _invite()
    ack.headers.set("CSeq", "7 ACK")
    assert dialog.accept_remote_cseq(Request("ACK", invite.uri, ack.headers))


def test_confirming_2xx_brings_its_allow() -> None:
    """A dialog made by a 180 without Allow takes the 2xx's Allow when it is confirmed."""
    invite = _invite()
    ringing = _ok(invite)
    ringing.status, ringing.reason = 180, "Ringing"
    dialog = Dialog.as_uac(invite, ringing, PEER)
    assert dialog.state is DialogState.EARLY and dialog.remote_allow == frozenset()
    dialog.confirm(_ok(invite, ("Allow", "INVITE, ACK, BYE, INFO, UPDATE")))
    assert dialog.remote_allow == {"INVITE", "ACK", "BYE", "INFO", "UPDATE"}
