"""Tests for SIP digest authentication (RFC 3261 §22, RFC 7616, RFC 8760)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.sip.auth import (
    AuthError,
    Challenge,
    Credentials,
    build_authorization,
    build_authorization_ha1,
    build_challenge,
    names_uri,
    parse_authorization,
    parse_challenge,
    password_ha1,
    select_challenge,
    verify_authorization,
    verify_authorization_ha1,
)
from callserver.sip.uri import parse_uri

# RFC 2617 §3.5.
RFC2617_CHALLENGE = (
    'Digest realm="testrealm@host.com", qop="auth,auth-int", '
    'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)
# RFC 7616 §3.9.1 (note "Circle of Life" here, "Circle Of Life" in RFC 2617).
RFC7616_CHALLENGE = (
    'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
    'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
)
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"


def _sip_challenge(**changes: Any) -> Challenge:
    return replace(Challenge(realm="sip.example.net", nonce="abc123"), **changes)


def _authorize(challenge: Challenge, password: str = "s3cret", body: bytes = b"") -> str:
    return build_authorization(
        challenge,
        method="INVITE",
        uri="sip:+38733123@sip.example.net",
        username="trunk7",
        password=password,
        cnonce="0a4f113b",
        body=body,
    )


def test_rfc2617_md5_example() -> None:
    """The RFC 2617 §3.5 Mufasa example gives response 6629fae4...; qop=auth is chosen."""
    value = build_authorization(
        parse_challenge(RFC2617_CHALLENGE),
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle Of Life",
        cnonce="0a4f113b",
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_examples(algorithm: str, response: str) -> None:
    """The RFC 7616 §3.9.1 SHA-256 and MD5 examples give their published responses."""
    value = build_authorization(
        parse_challenge(RFC7616_CHALLENGE.format(algorithm=algorithm)),
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    creds = parse_authorization(value)
    assert (creds.response, creds.algorithm, creds.qop, creds.nc) == (
        response,
        algorithm,
        "auth",
        "00000001",
    )
    assert verify_authorization(creds, method="GET", password="Circle of Life")


def test_parse_challenge_reads_every_field() -> None:
    """Quoted escapes, unquoted tokens, odd spacing, case and unknown parameters are handled."""
    value = (
        'DIGEST  realm = "a \\"quoted\\" realm\\\\x" ,nonce="n,1",\tdomain="sip:a sip:b",'
        ' algorithm=sha-256-SESS, qop="Auth-Int , auth", opaque="op", stale=true, charset=UTF-8'
    )
    assert parse_challenge(value) == Challenge(
        realm='a "quoted" realm\\x',
        nonce="n,1",
        algorithm="SHA-256-sess",
        qop=("auth-int", "auth"),
        opaque="op",
        stale=True,
    )


def test_parse_challenge_defaults() -> None:
    """Without algorithm, qop, opaque or stale, the RFC 3261 defaults apply (MD5, no qop)."""
    assert parse_challenge('Digest realm="r", nonce="n", qop=auth, stale=FALSE') == Challenge(
        realm="r", nonce="n", qop=("auth",)
    )
    assert parse_challenge('Digest nonce="n",realm="r",') == Challenge(realm="r", nonce="n")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Basic realm="r"', "does not use the Digest scheme"),
        ("", "does not use the Digest scheme"),
        ('Digestrealm="r", nonce="n"', "does not use the Digest scheme"),
        ('Digest realm="r"', "lacks nonce"),
        ("Digest", "lacks realm, nonce"),
        ('Digest realm="r", nonce="n", qop="auth', "cannot parse the parameters"),
        ('Digest realm="r" nonce="n"', "cannot parse the parameters"),
        ('Digest realm="r", nonce="n", realm="s"', "parameter 'realm' appears more than once"),
    ],
)
def test_parse_challenge_rejects(value: str, message: str) -> None:
    """Other schemes, missing parameters and broken parameter lists raise AuthError."""
    with pytest.raises(AuthError, match=message):
        parse_challenge(value)


def test_auth_int_only_hashes_the_body() -> None:
    """With only auth-int offered, the response covers the body, so another body fails."""
    value = _authorize(_sip_challenge(qop=("auth-int",)), body=b"v=0\r\n")
    creds = parse_authorization(value)
    assert creds.qop == "auth-int"
    assert verify_authorization(creds, method="INVITE", password="s3cret", body=b"v=0\r\n")
    assert not verify_authorization(creds, method="INVITE", password="s3cret", body=b"v=1\r\n")


def test_rfc2069_form_without_qop() -> None:
    """Without qop the response is H(HA1:nonce:HA2) and neither cnonce nor nc is sent."""
    value = _authorize(_sip_challenge())
    ha1 = hashlib.md5(b"trunk7:sip.example.net:s3cret").hexdigest()
    ha2 = hashlib.md5(b"INVITE:sip:+38733123@sip.example.net").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()
    assert f'response="{expected}"' in value
    assert "cnonce" not in value
    assert "nc=" not in value
    assert verify_authorization(parse_authorization(value), method="INVITE", password="s3cret")


def test_sha256_sess_follows_rfc7616_formula() -> None:
    """SHA-256-sess hashes H(user:realm:pass):nonce:cnonce into HA1 (RFC 7616 §3.4.2)."""
    value = _authorize(_sip_challenge(algorithm="SHA-256-sess", qop=("auth",)))

    def sha(text: str) -> str:
        return hashlib.sha256(text.encode()).hexdigest()

    ha1 = sha(f"{sha('trunk7:sip.example.net:s3cret')}:abc123:0a4f113b")
    ha2 = sha("INVITE:sip:+38733123@sip.example.net")
    expected = sha(f"{ha1}:abc123:00000001:0a4f113b:auth:{ha2}")
    assert parse_authorization(value).response == expected


def test_nonce_count_is_eight_hex_digits() -> None:
    """nonce_count 10 is sent as nc=0000000a, and out-of-range counts raise."""
    challenge = _sip_challenge(qop=("auth",))
    value = build_authorization(
        challenge,
        method="BYE",
        uri="sip:a@b",
        username="u",
        password="p",
        cnonce="c",
        nonce_count=10,
    )
    assert parse_authorization(value).nc == "0000000a"
    with pytest.raises(AuthError, match="nonce count 0"):
        build_authorization(
            challenge,
            method="BYE",
            uri="sip:a@b",
            username="u",
            password="p",
            cnonce="c",
            nonce_count=0,
        )


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"algorithm": "SHA-512-256"}, "'SHA-512-256' is not supported"),
        ({"qop": ("auth-conf",)}, "none of the offered qop values"),
    ],
)
def test_unsupported_challenges_raise(params: dict[str, Any], message: str) -> None:
    """An algorithm or qop we cannot compute raises AuthError instead of a wrong answer."""
    with pytest.raises(AuthError, match=message):
        _authorize(_sip_challenge(**params))


def test_select_challenge_prefers_sha256() -> None:
    """Offered MD5 first and SHA-256 second, the SHA-256 challenge is chosen (RFC 8760 §2.4)."""
    md5 = 'Digest realm="r", nonce="n1", algorithm=MD5, qop="auth"'
    sha = 'Digest realm="r", nonce="n2", algorithm=SHA-256, qop="auth"'
    assert select_challenge([md5, sha]) == parse_challenge(sha)
    assert select_challenge([sha, md5]) == parse_challenge(sha)


def test_select_challenge_skips_what_it_cannot_answer() -> None:
    """Other schemes, garbage and unsupported algorithms are skipped; ties keep the topmost."""
    values = [
        'Basic realm="r"',
        "Digest garbage",
        'Digest realm="r", nonce="x", algorithm=SHA-512-256',
        'Digest realm="r", nonce="x", qop="auth-conf"',
        'Digest realm="r", nonce="first"',
        'Digest realm="r", nonce="second"',
    ]
    assert select_challenge(values) == Challenge(realm="r", nonce="first")
    assert select_challenge(values[:4]) is None
    assert select_challenge([]) is None


def test_parse_authorization_reads_every_field() -> None:
    """Credentials keep nc as sent and accept a quoted qop from lenient clients."""
    value = (
        'Digest username="bob", realm="r", nonce="n", uri="sip:x@y", response="AB12",'
        ' algorithm=md5-sess, cnonce="c", nc=00000002, qop="auth", opaque="o", userhash=false'
    )
    assert parse_authorization(value) == Credentials(
        username="bob",
        realm="r",
        nonce="n",
        uri="sip:x@y",
        response="AB12",
        algorithm="MD5-sess",
        cnonce="c",
        nc="00000002",
        qop="auth",
        opaque="o",
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest username="u", realm="r", nonce="n", uri="sip:x"', "lacks response"),
        ('Digest username="u", realm="r", nonce="n", uri="s", response="a", qop=auth', "cnonce"),
        ("Basic dXNlcjpwYXNz", "does not use the Digest scheme"),
    ],
)
def test_parse_authorization_rejects(value: str, message: str) -> None:
    """Missing parameters (or qop without cnonce and nc) and other schemes raise AuthError."""
    with pytest.raises(AuthError, match=message):
        parse_authorization(value)


def test_verify_rejects_wrong_inputs() -> None:
    """A wrong password, method or tampered response fails; an upper-case response passes."""
    creds = parse_authorization(_authorize(_sip_challenge(qop=("auth",))))
    assert verify_authorization(creds, method="INVITE", password="s3cret")
    assert not verify_authorization(creds, method="INVITE", password="s3cret!")
    assert not verify_authorization(creds, method="BYE", password="s3cret")
    tampered = replace(creds, response="0" * 32)
    assert not verify_authorization(tampered, method="INVITE", password="s3cret")
    upper = replace(creds, response=creds.response.upper())
    assert verify_authorization(upper, method="INVITE", password="s3cret")


@pytest.mark.parametrize(
    "changes",
    [
        {"algorithm": "SHA-512-256"},
        {"qop": "auth-conf"},
        {"cnonce": None},
        {"nc": None},
        {"response": "é"},
    ],
)
def test_verify_refuses_unverifiable_credentials(changes: dict[str, Any]) -> None:
    """Unsupported algorithm or qop, or a missing cnonce/nc, is never verified."""
    creds = parse_authorization(_authorize(_sip_challenge(qop=("auth",))))
    broken = replace(creds, **changes)
    assert not verify_authorization(broken, method="INVITE", password="s3cret")


def test_build_challenge_round_trips() -> None:
    """Our challenge defaults to SHA-256 with qop auth and parses back field for field."""
    value = build_challenge(realm='sip "core"', nonce="n0", opaque="op", stale=True)
    assert value == (
        'Digest realm="sip \\"core\\"", nonce="n0", algorithm=SHA-256, qop="auth", '
        'opaque="op", stale=TRUE'
    )
    assert parse_challenge(value) == Challenge(
        realm='sip "core"',
        nonce="n0",
        algorithm="SHA-256",
        qop=("auth",),
        opaque="op",
        stale=True,
    )
    assert (
        parse_challenge(build_challenge(realm="r", nonce="n", algorithm="md5")).algorithm == "MD5"
    )
    with pytest.raises(AuthError, match="not supported"):
        build_challenge(realm="r", nonce="n", algorithm="SHA-1")


_TEXT = st.text(st.characters(exclude_categories=["Cs", "Cc"]), max_size=16)


@given(
    realm=_TEXT,
    nonce=_TEXT,
    username=_TEXT,
    password=_TEXT,
    uri=_TEXT,
    body=st.binary(max_size=32),
    algorithm=st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]),
    qop=st.sampled_from([(), ("auth",), ("auth-int",), ("auth-int", "auth")]),
    opaque=st.none() | _TEXT,
    nonce_count=st.integers(1, 2**32 - 1),
)
def test_build_parse_verify_round_trip(
    realm: str,
    nonce: str,
    username: str,
    password: str,
    uri: str,
    body: bytes,
    algorithm: str,
    qop: tuple[str, ...],
    opaque: str | None,
    nonce_count: int,
) -> None:
    """Whatever the values, our own Authorization verifies with the password and not without."""
    challenge = parse_challenge(
        build_challenge(realm=realm, nonce=nonce, algorithm=algorithm, opaque=opaque)
    )
    challenge = Challenge(challenge.realm, challenge.nonce, challenge.algorithm, qop, opaque)
    value = build_authorization(
        challenge,
        method="REGISTER",
        uri=uri,
        username=username,
        password=password,
        cnonce="c0ffee",
        nonce_count=nonce_count,
        body=body,
    )
    creds = parse_authorization(value)
    assert (creds.username, creds.realm, creds.uri, creds.opaque) == (username, realm, uri, opaque)
    assert verify_authorization(creds, method="REGISTER", password=password, body=body)
    assert not verify_authorization(creds, method="REGISTER", password=password + "x", body=body)
    stored = password_ha1(username, realm, password, algorithm)
    assert verify_authorization_ha1(creds, method="REGISTER", ha1_hex=stored, body=body)
    wrong = password_ha1(username, realm, password + "x", algorithm)
    assert not verify_authorization_ha1(creds, method="REGISTER", ha1_hex=wrong, body=body)


_PARAM_SOUP = st.text('realmnoceuriqp="\\, =\t', max_size=60) | st.text(max_size=60)


@given(_PARAM_SOUP)
def test_arbitrary_parameters_only_raise_auth_error(params: str) -> None:
    """Any parameter text either parses into strings or raises AuthError; nothing else escapes."""
    for parse in (parse_challenge, parse_authorization):
        try:
            result = parse("Digest " + params)
        except AuthError:
            continue
        assert isinstance(result.realm, str)
        assert isinstance(result.nonce, str)


def test_password_ha1_is_the_rfc7616_hash_of_user_realm_password() -> None:
    """password_ha1 hashes username:realm:password with the algorithm's hash, -sess or not."""
    md5 = hashlib.md5(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    sha = hashlib.sha256(b"Mufasa:http-auth@example.org:Circle of Life").hexdigest()
    assert password_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "md5") == md5
    assert password_ha1("Mufasa", "http-auth@example.org", "Circle of Life", "SHA-256-sess") == sha
    with pytest.raises(AuthError, match="not supported"):
        password_ha1("Mufasa", "realm", "pw", "SHA-512")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("sip:127.0.0.1", True),
        ("sip:127.0.0.1;transport=UDP", True),
        ("SIP:127.0.0.1;transport=tcp", True),
        ("sip:127.0.0.1:5060", False),
        ("sip:127.0.0.2;transport=UDP", False),
        ("sip:201@127.0.0.1", False),
        ("not a uri", False),
    ],
)
def test_names_uri_compares_as_rfc3261_leaving_out_the_transport(text: str, named: bool) -> None:
    """Credentials for the Request-URI with a transport parameter name it; another port, host
    or user, or an unparsable uri, does not."""
    assert names_uri(text, parse_uri("sip:127.0.0.1")) is named


def test_the_ha1_form_gives_the_rfc2617_response_without_the_password() -> None:
    """From H(username:realm:password) alone the RFC 2617 §3.5 example's response is the same
    (what the softphone answers its registrar with: centrex.yaml holds only the HA1)."""
    challenge = parse_challenge(RFC2617_CHALLENGE)
    ha1 = password_ha1("Mufasa", "testrealm@host.com", "Circle Of Life", "MD5")
    value = build_authorization_ha1(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        ha1=ha1,
        cnonce="0a4f113b",
    )
    assert parse_authorization(value).response == "6629fae49393a05397450978507c4ef1"
