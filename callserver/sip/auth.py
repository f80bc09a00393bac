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
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, replace

from callserver.sip.errors import SipParseError
from callserver.sip.uri import Uri, equivalent, parse_uri

__all__ = [
    "AuthError",
    "Challenge",
    "Credentials",
    "build_authorization",
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
# Canonical spellings, in our order of preference when several challenges are offered.
_PREFERENCE = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
_CANONICAL = {name.lower(): name for name in _PREFERENCE}
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"  # RFC 7230 §3.2.6 tchar, a superset of RFC 3261's
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|\Z)(.*)", re.DOTALL)
# One auth-param: name = token / quoted-string (with \-escapes), then a comma or the end.
_PARAM = re.compile(rf'[\s,]*({_TOKEN})\s*=\s*("(?:[^"\\]|\\.)*"|[^\s,"]*)\s*(?:,|\Z)', re.DOTALL)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


class AuthError(ValueError):
    """A challenge or credentials cannot be parsed, or ask for something we do not support."""


@dataclass(frozen=True, slots=True)
class Challenge:
    """A parsed ``WWW-Authenticate``/``Proxy-Authenticate`` Digest challenge (RFC 7616 §3.3).

    ``algorithm`` is in its canonical spelling when it is one we know; ``qop`` holds the
    offered qop values, lower-cased.
    """

    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Credentials:
    """A parsed ``Authorization``/``Proxy-Authorization`` Digest response (RFC 7616 §3.4).

    ``nc`` is kept as sent (8 hex digits), because the response was computed over that text.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str
    algorithm: str = "MD5"
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None


def parse_challenge(value: str) -> Challenge:
    """Parse one ``WWW-Authenticate``/``Proxy-Authenticate`` value (RFC 3261 §22.4, §25.1).

    Quoted and unquoted parameter values are accepted, extra white space ignored, and so are
    parameters we do not use (``domain``, ``charset``, ``userhash``).

    Raises:
        AuthError: when the scheme is not Digest, the parameters do not parse, or ``realm``
            or ``nonce`` is missing.
    """
    params = _parse_params(value, "challenge")
    _require(params, ("realm", "nonce"), "challenge")
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=_canonical(params.get("algorithm", "MD5")),
        qop=tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


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
        if challenge.algorithm in _PREFERENCE:
            usable.append(challenge)
    return min(usable, key=lambda c: _PREFERENCE.index(c.algorithm), default=None)


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
    secret = password_ha1(username, challenge.realm, password, challenge.algorithm)
    creds = replace(creds, response=_expected_response(creds, method, secret, body))
    return _format_credentials(creds)


def parse_authorization(value: str) -> Credentials:
    """Parse an ``Authorization``/``Proxy-Authorization`` Digest value (RFC 3261 §22.4).

    Raises:
        AuthError: when the scheme is not Digest, the parameters do not parse, one of
            ``username``/``realm``/``nonce``/``uri``/``response`` is missing, or ``qop`` is
            given without ``cnonce`` and ``nc`` (RFC 7616 §3.4: they MUST then be sent).
    """
    params = _parse_params(value, "credentials")
    _require(params, ("username", "realm", "nonce", "uri", "response"), "credentials")
    if "qop" in params:
        _require(params, ("cnonce", "nc"), "credentials with qop")
    return Credentials(
        username=params["username"],
        realm=params["realm"],
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        algorithm=_canonical(params.get("algorithm", "MD5")),
        cnonce=params.get("cnonce"),
        nc=params.get("nc"),
        qop=params["qop"].lower() if "qop" in params else None,
        opaque=params.get("opaque"),
    )


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
    if creds.algorithm not in _PREFERENCE or creds.qop not in (None, "auth", "auth-int"):
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
    algorithm = _canonical(algorithm)
    _digest(algorithm)
    parts = [f"realm={_quote(realm)}", f"nonce={_quote(nonce)}", f"algorithm={algorithm}"]
    parts.append('qop="auth"')
    if opaque is not None:
        parts.append(f"opaque={_quote(opaque)}")
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


def _format_credentials(creds: Credentials) -> str:
    # RFC 3261 §25.1 dig-resp: algorithm, qop and nc are tokens; the rest quoted strings.
    parts = [
        f"username={_quote(creds.username)}",
        f"realm={_quote(creds.realm)}",
        f"nonce={_quote(creds.nonce)}",
        f"uri={_quote(creds.uri)}",
        f"response={_quote(creds.response)}",
        f"algorithm={creds.algorithm}",
    ]
    if creds.cnonce is not None:
        parts.append(f"cnonce={_quote(creds.cnonce)}")
    if creds.opaque is not None:
        parts.append(f"opaque={_quote(creds.opaque)}")
    if creds.qop is not None:
        parts += [f"qop={creds.qop}", f"nc={creds.nc}"]
    return "Digest " + ", ".join(parts)


def password_ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    """RFC 7616 §3.4.2 A1 hashed: ``H(username ":" realm ":" passwd)`` (hex, lower case).

    Raises:
        AuthError: for an algorithm other than MD5, MD5-sess, SHA-256 or SHA-256-sess.
    """
    return _digest(_canonical(algorithm))(f"{username}:{realm}:{password}".encode())


def _digest(algorithm: str) -> Callable[[bytes], str]:
    if algorithm not in _PREFERENCE:
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


def _canonical(algorithm: str) -> str:
    return _CANONICAL.get(algorithm.lower(), algorithm)


def _parse_params(value: str, what: str) -> dict[str, str]:
    """Split ``Digest name=value, ...`` into lower-cased names and unquoted values."""
    scheme = _SCHEME.match(value)
    if scheme is None or scheme.group(1).lower() != "digest":
        raise AuthError(f"{what} {value[:30]!r} does not use the Digest scheme (RFC 3261 §22.4)")
    rest = scheme.group(2)
    pos, end = 0, len(rest)
    params: dict[str, str] = {}
    while pos < end:
        match = _PARAM.match(rest, pos)
        if match is None:
            if not rest[pos:].strip(" \t,"):
                break  # nothing but separators left
            raise AuthError(f"{what}: cannot parse the parameters at {rest[pos : pos + 30]!r}")
        name, raw = match.group(1, 2)
        name = name.lower()
        if name in params:
            raise AuthError(f"{what}: parameter {name!r} appears more than once")
        params[name], pos = _unquote(raw), match.end()
    return params


def _require(params: dict[str, str], names: tuple[str, ...], what: str) -> None:
    missing = [name for name in names if name not in params]
    if missing:
        raise AuthError(f"Digest {what} lacks {', '.join(missing)} (RFC 3261 §22.4)")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    if text.startswith('"'):
        inner = text[1:-1]
        return _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner
    return text


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
