"""The Digest challenge and credentials header field values (RFC 3261 §22.4, §25.1; RFC 7616).

``WWW-Authenticate``/``Proxy-Authenticate`` values read into a :class:`Challenge` and
``Authorization``/``Proxy-Authorization`` values into :class:`Credentials`, and credentials
written back. Parameter values may be quoted or not, with extra white space and parameters we
do not use; algorithm names are kept in their canonical spelling when they are ones we know.
What the values are computed from and checked against is ``auth``'s part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ALGORITHMS",
    "AuthError",
    "Challenge",
    "Credentials",
    "canonical_algorithm",
    "format_credentials",
    "parse_authorization",
    "parse_challenge",
    "quote_param",
]

# Canonical spellings, in our order of preference when several challenges are offered.
ALGORITHMS = ("SHA-256", "SHA-256-sess", "MD5", "MD5-sess")
_CANONICAL = {name.lower(): name for name in ALGORITHMS}
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
        algorithm=canonical_algorithm(params.get("algorithm", "MD5")),
        qop=tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip()),
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


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
        algorithm=canonical_algorithm(params.get("algorithm", "MD5")),
        cnonce=params.get("cnonce"),
        nc=params.get("nc"),
        qop=params["qop"].lower() if "qop" in params else None,
        opaque=params.get("opaque"),
    )


def format_credentials(creds: Credentials) -> str:
    """Write ``creds`` as an ``Authorization``/``Proxy-Authorization`` value (RFC 3261 §25.1)."""
    # RFC 3261 §25.1 dig-resp: algorithm, qop and nc are tokens; the rest quoted strings.
    parts = [
        f"username={quote_param(creds.username)}",
        f"realm={quote_param(creds.realm)}",
        f"nonce={quote_param(creds.nonce)}",
        f"uri={quote_param(creds.uri)}",
        f"response={quote_param(creds.response)}",
        f"algorithm={creds.algorithm}",
    ]
    if creds.cnonce is not None:
        parts.append(f"cnonce={quote_param(creds.cnonce)}")
    if creds.opaque is not None:
        parts.append(f"opaque={quote_param(creds.opaque)}")
    if creds.qop is not None:
        parts += [f"qop={creds.qop}", f"nc={creds.nc}"]
    return "Digest " + ", ".join(parts)


def canonical_algorithm(algorithm: str) -> str:
    """``algorithm`` in the spelling of :data:`ALGORITHMS` when it is one of them, matched
    case-insensitively (RFC 7616 §3.4.2); any other name as given."""
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


def quote_param(text: str) -> str:
    """``text`` as a quoted-string auth-param value, ``\\`` and ``"`` escaped (RFC 3261 §25.1)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    if text.startswith('"'):
        inner = text[1:-1]
        return _ESCAPE.sub(r"\1", inner) if "\\" in inner else inner
    return text
