"""RFC 4475 torture messages: every vector pinned to the outcome its section calls for."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from callserver.sip.errors import SipParseError
from callserver.sip.headers import CSeq, parse_address
from callserver.sip.message import Request, Response
from callserver.sip.parser import parse_message
from callserver.sip.uri import AbsoluteUri, SipUri, unescape
from callserver.sip.validate import Rejection, UasPolicy, check_request
from tests.sip.test_roundtrip import assert_paths_agree
from tests.vectors import RFC4475

VECTORS = RFC4475

# A UAS that also serves REGISTER and MESSAGE, so those vectors reach the later checks.
UAS = UasPolicy(allowed_methods=UasPolicy().allowed_methods | {"REGISTER", "MESSAGE"})


@dataclass(frozen=True)
class Outcome:
    """What a vector must do: parse (or fail with ``hint``), then pass or fail the UAS check."""

    hint: int | None = None  # parse_message's status_hint, None when it parses
    partial: bool = True  # whether a failure still carries the partial message
    check: int | None = None  # check_request(..., UAS) status; None when processed


PARSES = Outcome()
BAD = Outcome(hint=400)

EXPECTED: dict[str, Outcome] = {
    # §3.1.1 valid messages
    "wsinv": PARSES,
    "intmeth": Outcome(check=405),  # a valid but unknown method
    "esc01": PARSES,
    "escnull": PARSES,
    "esc02": Outcome(check=405),  # RE%47IST%45R is not REGISTER
    "lwsdisp": PARSES,
    "longreq": PARSES,
    "dblreq": PARSES,
    "semiuri": PARSES,
    "transports": PARSES,
    "mpart01": Outcome(check=415),  # text/plain + octet-stream: nothing we accept
    "unreason": PARSES,
    "noreason": PARSES,
    # §3.1.2 invalid messages
    "badinv01": BAD,
    "clerr": BAD,
    "ncl": BAD,
    "scalar02": BAD,
    "scalarlg": BAD,
    "quotbal": BAD,
    "ltgtruri": BAD,
    "lwsruri": BAD,
    "lwsstart": BAD,
    "trws": BAD,
    "escruri": BAD,
    "baddate": PARSES,  # only to be rejected if Date mattered, and it does not
    "regbadct": Outcome(check=400),  # addr-spec Contact with a header: Contact is lazy
    "badaspec": BAD,
    "baddn": BAD,
    "badvers": Outcome(hint=505),
    "mismatch01": BAD,
    "mismatch02": BAD,
    "bigcode": Outcome(hint=400, partial=False),  # a response: dropped
    # §3.2 transaction layer
    "badbranch": PARSES,  # falls back to RFC 2543 matching
    # §3.3 application layer
    "insuf": BAD,
    "unkscm": Outcome(check=416),
    "novelsc": Outcome(check=416),
    "unksm2": PARSES,
    "bext01": Outcome(check=420),
    "invut": Outcome(check=415),
    "regaut01": PARSES,
    "multi01": Outcome(check=400),
    "mcl01": Outcome(hint=400, check=400),
    "bcast": PARSES,
    "zeromf": Outcome(check=483),
    "cparam01": PARSES,
    "cparam02": PARSES,
    "regescrt": PARSES,
    "sdp01": Outcome(check=406),
    # §3.4 backward compatibility
    "inv2543": PARSES,
}


def load(name: str) -> bytes:
    """Read one vector (tests/vectors/rfc4475)."""
    return (VECTORS / f"{name}.dat").read_bytes()


def parsed(name: str) -> Request | Response:
    """Parse a vector expected to be well formed."""
    return parse_message(load(name))


def request(name: str) -> Request:
    """Parse a vector expected to be a well-formed request."""
    msg = parsed(name)
    assert isinstance(msg, Request)
    return msg


def test_every_vector_has_an_expectation() -> None:
    """Each of the 49 .dat files is pinned in EXPECTED, and only those."""
    assert len(EXPECTED) == 49
    assert sorted(p.stem for p in VECTORS.glob("*.dat")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_outcome(name: str) -> None:
    """The vector parses or fails with the RFC's answer, then meets the UAS check."""
    expected = EXPECTED[name]
    try:
        msg: Request | Response | None = parse_message(load(name))
        hint = None
    except SipParseError as exc:
        hint = exc.status_hint
        assert isinstance(exc.partial, Request | Response) == expected.partial
        msg = exc.partial if isinstance(exc.partial, Request | Response) else None
    assert hint == expected.hint
    if isinstance(msg, Request) and (hint is None or expected.check is not None):
        rejection = check_request(msg, UAS)
        assert (rejection.status if rejection else None) == expected.check


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_vector_one_pass_parse_agrees(name: str) -> None:
    """The one-pass parse gives each vector up or builds exactly what the general path does."""
    for datagram in (True, False):
        assert_paths_agree(load(name), datagram)
        assert_paths_agree(load(name), datagram)  # again, with every memo table primed


def test_wsinv_folding_and_whitespace() -> None:
    """§3.1.1.1: folded lines, LWS around separators and escaped quotes come out right."""
    msg = request("wsinv")
    assert msg.to().tag == "1918181833n"
    assert msg.from_().display_name == 'J Rosenberg \\"'
    assert msg.from_().tag == "98asjd8"
    assert msg.headers.get("Max-Forwards") == "0068"
    assert msg.cseq() == CSeq(9, "INVITE")
    assert [(v.transport, v.host, v.branch) for v in msg.vias()] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert msg.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert msg.headers.get("Subject") == ""
    assert len(msg.body) == 150


def test_wsinv_contact() -> None:
    """§3.1.1.1: the Contact's quoted display name and spaced parameters parse."""
    (value,) = request("wsinv").headers.values("Contact")
    contact = parse_address(value)
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (("newparam", "newvalue"), ("secondparam", None), ("q", "0.33"))


def test_intmeth_unusual_characters() -> None:
    """§3.1.1.2: token characters everywhere, quoted-pairs of control characters."""
    msg = request("intmeth")
    assert msg.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert msg.to().display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert msg.from_().display_name == "token1~` token2'+_ token3*%!.-"
    assert msg.from_().tag == "_token~1'+`*%!-."
    assert msg.call_id() == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert isinstance(msg.uri, SipUri)
    assert msg.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"


def test_esc01_escapes_kept_and_decodable() -> None:
    """§3.1.1.3: escapes are kept as written and decode to the intended text."""
    msg = request("esc01")
    assert isinstance(msg.uri, SipUri)
    assert msg.uri.user == "sips%3Auser%40example.com"
    assert unescape(msg.uri.user) == "sips:user@example.com"
    to_uri, from_uri = msg.to().uri, msg.from_().uri
    assert isinstance(to_uri, SipUri) and isinstance(from_uri, SipUri)
    assert unescape(to_uri.user or "") == "user"
    assert unescape(from_uri.user or "") == "I have spaces"


def test_escnull_nul_in_user() -> None:
    """§3.1.1.4: %00 is a valid escape and decodes to NUL."""
    msg = request("escnull")
    uri = msg.to().uri
    assert isinstance(uri, SipUri) and unescape(uri.user or "") == "null-\x00-null"
    assert len(msg.headers.get_all("Contact")) == 2


def test_esc02_percent_not_an_escape() -> None:
    """§3.1.1.5: '%' in tokens is literal and C%6Fntact is not Contact."""
    msg = request("esc02")
    assert msg.method == "RE%47IST%45R"
    assert msg.top_via().branch == "z9hG4bK209%fzsnel234"
    assert msg.to().display_name == "%Z%45"
    assert len(msg.headers.get_all("Contact")) == 2
    assert msg.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp_display_name_touching_bracket() -> None:
    """§3.1.1.6: a display name needs no LWS before '<'."""
    assert request("lwsdisp").from_().display_name == "caller"


def test_longreq_long_values() -> None:
    """§3.1.1.7: long values and 34 Via field lines in mixed case and compact form."""
    msg = request("longreq")
    assert len(msg.vias()) == 34
    assert (msg.to().display_name or "").startswith("I have a user name of extreme")


def test_dblreq_first_message_only() -> None:
    """§3.1.1.8: only the REGISTER is the message; the trailing INVITE is ignored."""
    msg = request("dblreq")
    assert msg.method == "REGISTER" and msg.body == b""


def test_semiuri_user_with_semicolon() -> None:
    """§3.1.1.9: ';' in the user part is not a URI parameter."""
    uri = request("semiuri").uri
    assert isinstance(uri, SipUri)
    assert (uri.user, uri.host, uri.params) == ("user;par=u%40example.net", "example.com", ())


def test_transports_unknown_ones_kept() -> None:
    """§3.1.1.10: SCTP and unknown transports parse."""
    vias = request("transports").vias()
    assert [v.transport for v in vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]


def test_mpart01_body_and_policy() -> None:
    """§3.1.1.11: the multipart body parses; it passes once text/plain is accepted."""
    msg = request("mpart01")
    assert len(msg.body) == 553
    policy = UasPolicy(
        allowed_methods=frozenset({"MESSAGE"}), accepted_types=frozenset({"text/plain"})
    )
    assert check_request(msg, policy) is None


def test_unreason_and_noreason_phrases() -> None:
    """§3.1.1.12-13: UTF-8 and empty reason phrases."""
    unreason, noreason = parsed("unreason"), parsed("noreason")
    assert isinstance(unreason, Response) and isinstance(noreason, Response)
    assert unreason.reason.startswith("= 2**3 * 5**2 но сто")
    assert (noreason.status, noreason.reason) == (100, "")


@pytest.mark.parametrize("name", ["ltgtruri", "lwsruri", "lwsstart", "trws", "escruri"])
def test_bad_request_lines_still_answerable(name: str) -> None:
    """§3.1.2.7-11: the 400 can be built from the partial's Via, From, To, Call-ID, CSeq."""
    with pytest.raises(SipParseError) as info:
        parse_message(load(name))
    partial = info.value.partial
    assert isinstance(partial, Request) and partial.method in ("INVITE", "OPTIONS")
    assert partial.top_via() and partial.from_() and partial.to() and partial.cseq()


def test_badvers_partial_keeps_version() -> None:
    """§3.1.2.16: the 505 partial records the version that was offered."""
    with pytest.raises(SipParseError) as info:
        parse_message(load("badvers"))
    assert isinstance(info.value.partial, Request)
    assert info.value.partial.version == "SIP/7.0"


def test_badbranch_empty_transaction_id() -> None:
    """§3.2.1: a bare magic cookie parses; the transaction layer decides."""
    assert request("badbranch").top_via().branch == "z9hG4bK"


def test_unkscm_and_novelsc_schemes() -> None:
    """§3.3.2-3: unknown schemes parse as absolute URIs; serving them is policy."""
    unkscm, novelsc = request("unkscm"), request("novelsc")
    assert unkscm.uri == AbsoluteUri("nobodyknowsthisscheme", "totallyopaquecontent")
    assert novelsc.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")
    beep = UasPolicy(uri_schemes=frozenset({"sip", "soap.beep"}))
    assert check_request(novelsc, beep) is None


def test_unksm2_header_uris_of_unknown_schemes() -> None:
    """§3.3.4: To, From and Contact with unknown schemes parse and are not rejected."""
    msg = request("unksm2")
    assert msg.to().uri == AbsoluteUri("isbn", "2983792873")
    assert msg.from_().uri == AbsoluteUri("http", "//www.example.com")
    assert check_request(msg, UAS) is None


def test_bext01_unsupported_lists_require_tags() -> None:
    """§3.3.5: 420 with Unsupported listing the Require option tags."""
    assert check_request(request("bext01"), UAS) == Rejection(
        420, "Bad Extension", (("Unsupported", "nothingSupportsThis, nothingSupportsThisEither"),)
    )


def test_invut_415_with_accept() -> None:
    """§3.3.6: 415 listing what we accept."""
    rejection = check_request(request("invut"), UAS)
    assert rejection is not None and rejection.status == 415
    assert rejection.headers == (
        ("Accept", "application/dtmf, application/dtmf-relay, application/sdp"),
    )


def test_regaut01_not_a_registrar() -> None:
    """§3.3.7: an endpoint that is not a registrar answers 405; a registrar-capable one passes."""
    msg = request("regaut01")
    rejection = check_request(msg, UasPolicy())
    assert rejection is not None and rejection.status == 405
    assert check_request(msg, UAS) is None


def test_zeromf_for_a_pure_endpoint() -> None:
    """§3.3.11: an endpoint processes Max-Forwards 0 as if positive."""
    assert check_request(request("zeromf"), UasPolicy(reject_zero_max_forwards=False)) is None


def test_cparam_contact_vs_uri_parameters() -> None:
    """§3.3.12-13: addr-spec parameters belong to the header, bracketed ones to the URI."""
    (plain,) = request("cparam01").headers.values("Contact")
    (bracketed,) = request("cparam02").headers.values("Contact")
    header_param, uri_param = parse_address(plain), parse_address(bracketed)
    assert header_param.params == (("unknownparam", None),)
    assert isinstance(header_param.uri, SipUri) and header_param.uri.params == ()
    assert uri_param.params == ()
    assert isinstance(uri_param.uri, SipUri) and uri_param.uri.params == (("unknownparam", None),)


def test_regescrt_escaped_header_kept() -> None:
    """§3.3.14: the escaped Route header stays in the Contact URI."""
    (value,) = request("regescrt").headers.values("Contact")
    uri = parse_address(value).uri
    assert isinstance(uri, SipUri)
    assert uri.headers == (("Route", "%3Csip:sip.example.com%3E"),)


def test_bcast_broadcast_via_parses() -> None:
    """§3.3.10: the response parses; dropping it is the endpoint's business."""
    msg = parsed("bcast")
    assert isinstance(msg, Response)
    assert msg.vias()[1].host == "255.255.255.255"


def test_inv2543_rfc2543_syntax() -> None:
    """§3.4.1: no branch, addr-spec To with a header parameter."""
    msg = request("inv2543")
    assert msg.top_via().branch is None
    assert msg.to().params == (("user", "phone"),)
    assert check_request(msg, UAS) is None
