"""Tests for the UAS request checks (RFC 3261 §8.2.1-§8.2.3, RFC 4475 §3.3)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from callserver.sip.message import Request
from callserver.sip.parser import parse_message
from callserver.sip.validate import Rejection, UasPolicy, check_request

POLICY = UasPolicy()
SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"


def request(
    method: str = "INVITE",
    *extra: str,
    uri: str = "sip:bob@example.com",
    body: bytes = b"",
    content_type: str | None = "application/sdp",
) -> Request:
    """Parse a request built from the usual fields plus ``extra`` lines."""
    lines = [
        f"{method} {uri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKv",
        "Max-Forwards: 70",
        "From: <sip:alice@example.net>;tag=1",
        "To: <sip:bob@example.com>",
        "Call-ID: v@192.0.2.1",
        f"CSeq: 1 {method}",
        *extra,
    ]
    if body and content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    lines.append(f"Content-Length: {len(body)}")
    msg = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    assert isinstance(msg, Request)
    return msg


def test_plain_invite_passes() -> None:
    """An INVITE with an SDP offer and nothing unusual is processed."""
    assert check_request(request(body=SDP), POLICY) is None


def test_unknown_method_is_405_with_allow() -> None:
    """An unsupported method gets 405 with Allow (RFC 3261 §8.2.1)."""
    rejection = check_request(request("SUBSCRIBE"), POLICY)
    assert rejection == Rejection(
        405,
        "Method Not Allowed",
        (("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER"),),
    )


def test_allow_lists_extra_methods_sorted() -> None:
    """Methods outside the usual set follow it, sorted."""
    policy = UasPolicy(allowed_methods=frozenset({"INVITE", "REGISTER", "MESSAGE"}))
    rejection = check_request(request("PUBLISH"), policy)
    assert rejection is not None
    assert rejection.headers == (("Allow", "INVITE, MESSAGE, REGISTER"),)


@pytest.mark.parametrize("uri", ["mailto:bob@example.com", "http://example.com/"])
def test_unsupported_scheme_is_416(uri: str) -> None:
    """A Request-URI scheme we do not serve gets 416 (RFC 3261 §8.2.2.1)."""
    assert check_request(request("OPTIONS", uri=uri), POLICY) == Rejection(
        416, "Unsupported URI Scheme"
    )


def test_tel_and_sips_uris_pass() -> None:
    """tel: and sips: Request-URIs are served by default."""
    assert check_request(request("OPTIONS", uri="tel:+38733123456"), POLICY) is None
    assert check_request(request("OPTIONS", uri="sips:bob@example.com"), POLICY) is None


def test_unknown_require_is_420_with_unsupported() -> None:
    """Unknown Require option tags are listed once each in Unsupported (RFC 3261 §8.2.2.3)."""
    rejection = check_request(
        request("OPTIONS", "Require: timer, foo, 100rel", "Require: foo"), POLICY
    )
    assert rejection == Rejection(420, "Bad Extension", (("Unsupported", "foo, 100rel"),))


def test_supported_require_passes() -> None:
    """A Require of supported tags (case-insensitively) passes."""
    assert check_request(request("OPTIONS", "Require: Timer"), POLICY) is None


def test_proxy_require_is_not_a_uas_matter() -> None:
    """Proxy-Require is for proxies; a UAS does not reject on it (RFC 3261 §20.29)."""
    assert check_request(request("OPTIONS", "Proxy-Require: foo"), POLICY) is None


def test_unknown_content_type_is_415_with_accept() -> None:
    """A body of an unknown type gets 415 with Accept (RFC 3261 §8.2.3)."""
    rejection = check_request(request(body=b"<x/>", content_type="application/xml"), POLICY)
    assert rejection == Rejection(
        415,
        "Unsupported Media Type",
        (("Accept", "application/dtmf, application/dtmf-relay, application/sdp"),),
    )


def test_content_type_parameters_and_case_ignored() -> None:
    """Media type comparison ignores case and parameters."""
    msg = request(body=SDP, content_type="Application/SDP; charset=utf-8")
    assert check_request(msg, POLICY) is None


def test_body_without_content_type_is_400() -> None:
    """A body must come with a Content-Type (RFC 3261 §7.4.1)."""
    rejection = check_request(request(body=SDP, content_type=None), POLICY)
    assert rejection is not None and rejection.status == 400


def test_unknown_content_encoding_is_415() -> None:
    """An unknown Content-Encoding gets 415 with Accept-Encoding (RFC 3261 §8.2.3)."""
    rejection = check_request(request("INVITE", "Content-Encoding: gzip", body=SDP), POLICY)
    assert rejection == Rejection(415, "Unsupported Media Type", (("Accept-Encoding", "identity"),))


def multipart(*types: str) -> bytes:
    """A multipart/mixed body with one part per type (the first one without a Content-Type)."""
    parts = [b"preamble\r\n"]
    for index, media_type in enumerate(types):
        head = b"" if index == 0 else f"Content-Type: {media_type}\r\n".encode()
        parts.append(b"--b0undary\r\n" + head + b"\r\nbody\r\n")
    parts.append(b"--b0undary--\r\n")
    return b"".join(parts)


def test_multipart_with_an_accepted_part_passes() -> None:
    """A multipart body passes if one of its parts is of an accepted type."""
    body = multipart("text/plain", "application/sdp")
    msg = request(body=body, content_type='multipart/mixed;boundary="b0undary"')
    assert check_request(msg, POLICY) is None


def test_multipart_without_accepted_parts_is_415() -> None:
    """A multipart body none of whose parts we accept gets 415."""
    body = multipart("text/plain", "application/octet-stream")
    msg = request(body=body, content_type="multipart/mixed; boundary=b0undary")
    rejection = check_request(msg, POLICY)
    assert rejection is not None and rejection.status == 415


def test_multipart_default_part_type_is_text_plain() -> None:
    """A part without Content-Type is text/plain (RFC 2046 §5.1)."""
    policy = UasPolicy(accepted_types=frozenset({"text/plain"}))
    msg = request(body=multipart("x"), content_type="multipart/mixed;boundary=b0undary")
    assert check_request(msg, policy) is None


def test_multipart_without_boundary_is_415() -> None:
    """A multipart body without a boundary cannot be read."""
    msg = request(body=multipart("application/sdp"), content_type="multipart/mixed")
    rejection = check_request(msg, POLICY)
    assert rejection is not None and rejection.status == 415


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        ("text/nobodyKnowsThis", 406),
        ("application/sdp;q=0", 406),
        ("text/plain, application/sdp", None),
        ("application/*", None),
        ("*/*;q=0.5", None),
    ],
)
def test_invite_accept_must_allow_sdp(accept: str, status: int | None) -> None:
    """An INVITE whose Accept rules out SDP cannot be answered (RFC 4475 §3.3.15)."""
    rejection = check_request(request("INVITE", f"Accept: {accept}", body=SDP), POLICY)
    assert (rejection.status if rejection else None) == status


def test_options_accept_is_not_checked() -> None:
    """Only INVITE needs an SDP answer; an OPTIONS Accept is not judged."""
    assert check_request(request("OPTIONS", "Accept: text/foo"), POLICY) is None


def test_zero_max_forwards_is_483() -> None:
    """Max-Forwards 0 gets 483 when the request might be forwarded (RFC 3261 §16.3)."""
    msg = request("INVITE", body=SDP)
    msg.headers.set("Max-Forwards", "0")
    assert check_request(msg, POLICY) == Rejection(483, "Too Many Hops")


def test_zero_max_forwards_passes_for_a_pure_endpoint() -> None:
    """An endpoint processes Max-Forwards 0 as if positive (RFC 4475 §3.3.11)."""
    msg = request("OPTIONS")
    msg.headers.set("Max-Forwards", "00")
    assert check_request(msg, UasPolicy(reject_zero_max_forwards=False)) is None


@pytest.mark.parametrize(
    "extra", ["From: <sip:x@y>;tag=2", "To: <sip:z@y>", "Call-ID: other", "Content-Length: 0"]
)
def test_duplicated_single_value_field_is_400(extra: str) -> None:
    """A single-value field given twice gets 400 naming it (RFC 4475 §3.3.8)."""
    rejection = check_request(request("OPTIONS", extra), POLICY)
    name = extra.partition(":")[0]
    assert rejection == Rejection(400, f"Duplicate {name} header field")


def test_first_duplicated_name_is_the_one_named() -> None:
    """With several fields duplicated, the reason names the first of them in the message."""
    msg = request("OPTIONS", "Subject: a", "Subject: b", "Call-ID: other")
    assert check_request(msg, POLICY) == Rejection(400, "Duplicate Call-ID header field")


def test_repeated_list_fields_are_no_duplicates() -> None:
    """Via, Route and other list-valued fields may repeat (RFC 3261 §7.3.1)."""
    msg = request(
        "OPTIONS",
        "Via: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bKw",
        "Route: <sip:a;lr>",
        "Route: <sip:b;lr>",
    )
    assert check_request(msg, POLICY) is None


def test_malformed_contact_is_400() -> None:
    """A Contact that does not parse gets 400 (RFC 4475 §3.1.2.13)."""
    msg = request("OPTIONS", "Contact: sip:a@b?Route=%3Csip:x%3E")
    assert check_request(msg, POLICY) == Rejection(400, "Malformed Contact header field")


def test_register_star_contact_passes() -> None:
    """``Contact: *`` is valid in a REGISTER (RFC 3261 §10.2.2)."""
    policy = UasPolicy(allowed_methods=frozenset({"REGISTER"}))
    assert check_request(request("REGISTER", "Contact: *", "Expires: 0"), policy) is None


def test_unknown_scheme_in_header_uris_passes() -> None:
    """Unknown URI schemes in From/To/Contact are not rejected (RFC 4475 §3.3.4)."""
    msg = request("OPTIONS", "Contact: <name:John_Smith>")
    msg.headers.set("To", "isbn:2983792873")
    assert check_request(msg, POLICY) is None


def test_ack_is_never_rejected() -> None:
    """An ACK gets no response, so no check rejects it (RFC 3261 §17.2.1)."""
    msg = request("ACK", "Require: foo", "Call-ID: dup", uri="mailto:x@y")
    assert check_request(msg, UasPolicy(allowed_methods=frozenset({"INVITE"}))) is None


def test_cancel_only_checks_duplicates() -> None:
    """CANCEL is always allowed and ignores Require (RFC 3261 §9.2), but not duplicates."""
    policy = UasPolicy(allowed_methods=frozenset({"INVITE"}))
    assert check_request(request("CANCEL", "Require: foo"), policy) is None
    rejection = check_request(request("CANCEL", "Call-ID: dup"), policy)
    assert rejection is not None and rejection.status == 400


def test_checks_run_in_rfc_order() -> None:
    """Each check gives way to the one before it: 405, 416, 420, 415, 483, 400."""
    msg = request(
        "SUBSCRIBE", "Require: foo", "Call-ID: dup", uri="mailto:a@b", body=b"x", content_type="a/b"
    )
    msg.headers.set("Max-Forwards", "0")
    steps: list[dict[str, Any]] = [
        {},
        {"allowed_methods": frozenset({"SUBSCRIBE"})},
        {"uri_schemes": frozenset({"mailto"})},
        {"supported_extensions": frozenset({"foo"})},
        {"accepted_types": frozenset({"a/b"})},
        {"reject_zero_max_forwards": False},
    ]
    policy = POLICY
    statuses = []
    for change in steps:
        policy = replace(policy, **change)
        rejection = check_request(msg, policy)
        statuses.append(rejection.status if rejection else None)
    assert statuses == [405, 416, 420, 415, 483, 400]
