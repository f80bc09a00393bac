"""Digest access authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).

Theory of operation
-------------------
UAC side: a 401/407 carries one or more ``WWW-Authenticate``/``Proxy-Authenticate`` values.
``select_challenge`` picks the one to answer and ``build_authorization`` computes the
``Authorization``/``Proxy-Authorization`` value for it. The caller generates ``cnonce`` (with
:mod:`secrets`) and counts ``nonce_count``, so everything here is deterministic.

UAS side: ``build_challenge`` writes the challenge, ``parse_authorization`` reads the client's
answer and ``verify_authorization`` recomputes the response and compares it in constant time.
Whether the nonce is one we issued, still fresh and not replayed (``nc``), and whether the realm
and ``uri`` are the expected ones, is for the caller to check: it owns the nonces and the clock.

Algorithms are those of RFC 7616 §3.4.2 that RFC 8760 brings to SIP: ``MD5``, ``MD5-sess``,
``SHA-256`` and ``SHA-256-sess``; names are matched case-insensitively. With qop, ``auth`` is
used whenever it is offered and ``auth-int`` (which hashes the body) only when it is the only
one; without qop the RFC 2069 form is computed, as RFC 3261 §22.4 still allows.

The header field values themselves (``Challenge``, ``Credentials``, their parsing and writing)
are read and written in ``digest_fields``; they are re-exported here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Collection, Iterable
from dataclasses import replace

from callserver.sip.digest_fields import (
    ALGORITHMS,
    AuthError,
    Challenge,
    Credentials,
    canonical_algorithm,
    format_credentials,
    parse_authorization,
    parse_challenge,
    quote_param,
)
from callserver.sip.errors import SipParseError
from callserver.sip.uri import Uri, equivalent, parse_uri

__all__ = [
    "AuthError",
    "Challenge",
    "Credentials",
    "build_authorization",
    "build_authorization_ha1",
    "build_challenge",
    "challenge_fields",
    "find_credentials",
    "names_uri",
    "parse_authorization",
    "parse_challenge",
    "password_ha1",
    "select_challenge",
    "verify_authorization",
    "verify_authorization_ha1",
]


def _md5(data: bytes) -> str:
    # MD5 here is the protocol's digest, not our choice of hash; allow it on FIPS builds.
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_HASHES: dict[str, Callable[[bytes], str]] = {"MD5": _md5, "SHA-256": _sha256}


def select_challenge(values: list[str]) -> Challenge | None:
    """Pick the challenge to answer among a response's challenge values.

    RFC 8760 §2.4 lets a UAS send one challenge per algorithm, most preferred first. We answer
    the strongest we support (SHA-256 before MD5) and, among equals, the topmost. Values that
    do not parse, are not Digest, or need an algorithm or qop we lack are skipped.

    Returns:
        The chosen challenge, or None when none is usable.
    """
    usable: list[Challenge] = []
    for value in values:
        try:
            challenge = parse_challenge(value)
            _choose_qop(challenge.qop)
        except AuthError:
            continue
        if challenge.algorithm in ALGORITHMS:
            usable.append(challenge)
    return min(usable, key=lambda c: ALGORITHMS.index(c.algorithm), default=None)


def build_authorization(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    cnonce: str,
    nonce_count: int = 1,
    body: bytes = b"",
) -> str:
    """Return the ``Authorization``/``Proxy-Authorization`` value answering ``challenge``.

    See RFC 3261 §22.2 and §22.3, RFC 7616 §3.4.1 for the response computation.

    Args:
        challenge: the challenge to answer (see :func:`select_challenge`).
        method: the request method; ``uri`` the Request-URI, both as sent.
        username: user name; ``password`` its shared secret.
        cnonce: a fresh client nonce (the caller draws it with :mod:`secrets`).
        nonce_count: how many requests this nonce has now answered, from 1.
        body: the request body, hashed only for qop ``auth-int``.

    Raises:
        AuthError: for an unsupported algorithm or qop, or a nonce count outside 1..2**32-1.
    """
    _digest(challenge.algorithm)
    ha1 = password_ha1(username, challenge.realm, password, challenge.algorithm)
    return build_authorization_ha1(
        challenge,
        method=method,
        uri=uri,
        username=username,
        ha1=ha1,
        cnonce=cnonce,
        nonce_count=nonce_count,
        body=body,
    )


def build_authorization_ha1(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    ha1: str,
    cnonce: str,
    nonce_count: int = 1,
    body: bytes = b"",
) -> str:
    """As :func:`build_authorization`, from the hex ``H(username:realm:password)`` of the
    challenge's algorithm (RFC 7616 §3.4.2) instead of the password: what a UA holding only
    the HA1 a registrar stores answers with.

    Raises:
        AuthError: for an unsupported algorithm or qop, or a nonce count outside 1..2**32-1.
    """
    if not 0 < nonce_count < 2**32:
        raise AuthError(f"nonce count {nonce_count} is not in 1..2**32-1 (RFC 7616 §3.4)")
    _digest(challenge.algorithm)
    qop = _choose_qop(challenge.qop)
    sess = challenge.algorithm.endswith("-sess")
    creds = Credentials(
        username=username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response="",
        algorithm=challenge.algorithm,
        cnonce=cnonce if qop or sess else None,
        nc=f"{nonce_count:08x}" if qop else None,
        qop=qop,
        opaque=challenge.opaque,
    )
    creds = replace(creds, response=_expected_response(creds, method, ha1, body))
    return format_credentials(creds)


def verify_authorization(
    creds: Credentials, *, method: str, password: str, body: bytes = b""
) -> bool:
    """Return True when ``creds.response`` is right for ``password`` (RFC 7616 §3.4.1).

    The comparison takes constant time. An unsupported algorithm or qop, or a qop or
    ``-sess`` algorithm without its ``cnonce``/``nc``, is simply not verified (False).
    Nonce freshness, ``nc`` replay, realm and uri are the caller's checks.
    """
    if not _verifiable(creds):
        return False
    secret = password_ha1(creds.username, creds.realm, password, creds.algorithm)
    expected = _expected_response(creds, method, secret, body)
    return hmac.compare_digest(expected.encode(), creds.response.lower().encode())


def verify_authorization_ha1(
    creds: Credentials, *, method: str, ha1_hex: str, body: bytes = b""
) -> bool:
    """Return True when ``creds.response`` is right for the stored ``ha1_hex`` (RFC 7616 §3.4.2).

    The same check as :func:`verify_authorization` for a server that keeps
    ``H(username:realm:password)`` instead of the password (RFC 7616 §5.2: a server SHOULD NOT
    keep plain passwords); ``ha1_hex`` must be the one of ``creds.algorithm``'s hash.
    """
    if not _verifiable(creds):
        return False
    expected = _expected_response(creds, method, ha1_hex.lower(), body)
    return hmac.compare_digest(expected.encode(), creds.response.lower().encode())


def _verifiable(creds: Credentials) -> bool:
    """An algorithm and qop we know, with the ``cnonce``/``nc`` they need."""
    if creds.algorithm not in ALGORITHMS or creds.qop not in (None, "auth", "auth-int"):
        return False
    if (creds.qop or creds.algorithm.endswith("-sess")) and creds.cnonce is None:
        return False
    return not (creds.qop and creds.nc is None)


def build_challenge(
    *,
    realm: str,
    nonce: str,
    algorithm: str = "SHA-256",
    opaque: str | None = None,
    stale: bool = False,
) -> str:
    """Return a ``WWW-Authenticate``/``Proxy-Authenticate`` value with qop ``auth``.

    See RFC 3261 §22.1 and RFC 8760 §2.3 (one challenge per algorithm, most preferred first).

    Raises:
        AuthError: for an algorithm other than MD5, MD5-sess, SHA-256 or SHA-256-sess.
    """
    algorithm = canonical_algorithm(algorithm)
    _digest(algorithm)
    parts = [f"realm={quote_param(realm)}", f"nonce={quote_param(nonce)}", f"algorithm={algorithm}"]
    parts.append('qop="auth"')
    if opaque is not None:
        parts.append(f"opaque={quote_param(opaque)}")
    if stale:
        parts.append("stale=TRUE")
    return "Digest " + ", ".join(parts)


def _expected_response(creds: Credentials, method: str, secret: str, body: bytes) -> str:
    """The RFC 7616 §3.4.1 ``response`` (RFC 2069 form without qop) for ``creds``, from the
    hex ``H(username:realm:password)`` ``secret``."""
    digest = _digest(creds.algorithm)
    a1 = secret
    if creds.algorithm.endswith("-sess"):
        a1 = digest(f"{secret}:{creds.nonce}:{creds.cnonce}".encode())
    a2 = f"{method}:{creds.uri}"
    if creds.qop == "auth-int":
        a2 += f":{digest(body)}"
    ha2 = digest(a2.encode())
    if creds.qop is None:
        return digest(f"{a1}:{creds.nonce}:{ha2}".encode())
    return digest(f"{a1}:{creds.nonce}:{creds.nc}:{creds.cnonce}:{creds.qop}:{ha2}".encode())


def password_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """RFC 7616 §3.4.2 A1 hashed: ``H(username ":" realm ":" passwd)`` (hex, lower case).

    Raises:
        AuthError: for an algorithm other than MD5, MD5-sess, SHA-256 or SHA-256-sess.
    """
    return _digest(canonical_algorithm(algorithm))(f"{username}:{realm}:{password}".encode())


def _digest(algorithm: str) -> Callable[[bytes], str]:
    if algorithm not in ALGORITHMS:
        raise AuthError(
            f"digest algorithm {algorithm!r} is not supported (MD5, MD5-sess, SHA-256, "
            "SHA-256-sess)"
        )
    return _HASHES[algorithm.removesuffix("-sess")]


def _choose_qop(offered: tuple[str, ...]) -> str | None:
    if not offered:
        return None
    if "auth" in offered:
        return "auth"
    if "auth-int" in offered:
        return "auth-int"
    raise AuthError(f"none of the offered qop values {offered!r} is auth or auth-int")


def find_credentials(
    values: Iterable[str], realm: str, algorithms: Collection[str]
) -> Credentials | None:
    """The first credentials among header ``values`` for ``realm`` and one of ``algorithms``;
    unparsable ones and those for other realms are passed over (RFC 3261 §22.3)."""
    for value in values:
        try:
            creds = parse_authorization(value)
        except AuthError:
            continue
        if creds.realm == realm and creds.algorithm in algorithms:
            return creds
    return None


def challenge_fields(
    name: str, *, realm: str, nonce: str, algorithms: Iterable[str], opaque: str, stale: bool
) -> tuple[tuple[str, str], ...]:
    """One ``name`` field (WWW-Authenticate or Proxy-Authenticate) per algorithm, in the
    order given, all with one nonce (RFC 3261 §22.1, RFC 8760 §2.4)."""
    return tuple(
        (
            name,
            build_challenge(
                realm=realm, nonce=nonce, algorithm=algorithm, opaque=opaque, stale=stale
            ),
        )
        for algorithm in algorithms
    )


# Phones name the transport they sent on in the credentials' uri (pyVoIP answers for
# "sip:HOST;transport=UDP" a REGISTER to "sip:HOST"): it says nothing of the resource.
_TRANSPORT_ONLY = frozenset({"transport"})


def names_uri(text: str, uri: Uri) -> bool:
    """The credentials' ``uri`` identifies the same resource as ``uri`` (RFC 7616 §3.4.6):
    equivalent by RFC 3261 §19.1.4, a ``transport`` parameter left out; an unparsable one
    names nothing."""
    try:
        return equivalent(parse_uri(text), uri, ignore=_TRANSPORT_ONLY)
    except SipParseError:
        return False
