"""Digest authentication of an inbound INVITE by the trunks that have credentials.

Theory of operation
-------------------
Admission asks here only when no trunk without credentials covers the INVITE's source address
and some trunk has ``digest`` credentials (config/trunks.yaml). Everything the server does
follows RFC 3261 §22 with the algorithms of RFC 7616 brought to SIP by RFC 8760:

1. The credentials are read from ``Proxy-Authorization`` or ``Authorization`` (either is
   accepted, whichever challenge the client answered); only those for our realm and one of the
   configured algorithms count (RFC 3261 §22.3: a request may carry credentials for other
   realms). None: :class:`Challenged`, a 407 with one ``Proxy-Authenticate`` per configured
   algorithm in the configured order (RFC 8760 §2.4), qop ``auth`` and an opaque; or a 401
   with ``WWW-Authenticate`` when ``digest.challenge`` is 401.
2. ``uri`` must name the Request-URI (RFC 3261 §22.4 via RFC 2617 §3.2.2.5, RFC 7616
   §3.4.6): otherwise 400, as those sections ask.
3. A nonce that is not ours (tampered with, from before a restart): a fresh challenge.
4. The user name picks the trunk and the response is recomputed with its password. An unknown
   user and a wrong password get the same 403, so user names cannot be probed; the response
   is even computed against a dummy password for an unknown user, so the two take as long.
   Logged as ``call.auth_failed`` with the user name, the source address and the cause.
5. A correct response with an expired nonce: a new challenge with ``stale=true`` (RFC 7616
   §3.3), which the client answers without asking its user.
6. A nonce count not larger than the last one seen with that nonce (or a second use of a
   nonce without qop): a replay, logged as ``call.auth_replay`` and answered with a fresh
   challenge (not stale: nothing says the sender knows the password).
7. A trunk that has a ``match`` as well accepts its credentials only from those addresses.

Nonces live in :class:`callserver.sip.nonces.Nonces`, which survives reloads: challenges
issued before a SIGHUP are still answered.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog

from callserver.sip.auth import (
    AuthError,
    Credentials,
    build_challenge,
    parse_authorization,
    verify_authorization,
)
from callserver.sip.errors import SipParseError
from callserver.sip.message import Request
from callserver.sip.nonces import Nonces, NonceStatus
from callserver.sip.uri import parse_uri
from callserver.trunks import DigestSettings, TrunkTable

__all__ = ["AuthFailed", "Authenticated", "Challenged", "DigestAuthenticator"]

log = structlog.get_logger("callserver.calls")

_CREDENTIAL_FIELDS = ("Proxy-Authorization", "Authorization")
_DUMMY_PASSWORD = secrets.token_urlsafe(16)  # for unknown users: same work, no match


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenged:
    """Answer the INVITE with ``status`` (401/407) and its challenge ``headers``; no CDR.

    A challenge is part of a normal call set-up (RFC 3261 §22.2), not a refusal.
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    stale: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated:
    """The credentials are valid: the call comes from ``trunk``."""

    trunk: str
    username: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed:
    """Refuse the call with ``status``; ``cause`` is for the log, never for the caller.

    ``trunk`` is the trunk the user name belongs to, when it belongs to one.
    """

    status: int
    cause: str
    username: str
    trunk: str | None = None


class DigestAuthenticator:
    """Challenges INVITEs and checks their credentials; see the module docstring.

    Args:
        settings: the ``digest`` section of config/trunks.yaml.
        nonces: the nonce issuer (tests pass one with a known secret).
    """

    def __init__(self, settings: DigestSettings, *, nonces: Nonces | None = None) -> None:
        self.settings = settings
        self.nonces = nonces or Nonces(settings.nonce_lifetime)
        self.nonces.set_lifetime(settings.nonce_lifetime)
        self._opaque = secrets.token_urlsafe(12)

    def update(self, settings: DigestSettings) -> None:
        """A reload: new realm, answer, algorithms and lifetime; issued nonces stay valid."""
        self.settings = settings
        self.nonces.set_lifetime(settings.nonce_lifetime)

    def authenticate(
        self, request: Request, host: str, port: int, table: TrunkTable, now: float
    ) -> Challenged | Authenticated | AuthFailed:
        """Authenticate ``request`` from ``host``:``port`` at ``now`` against ``table``.

        See RFC 3261 §22.2 (UAS behaviour) and §22.4, RFC 7616 §3.3 and §3.4, RFC 8760 §2.4.
        """
        creds = self._credentials(request)
        if creds is None:
            return self.challenge(now)
        if not _same_uri(creds.uri, request):
            return self._fail(request, host, creds, 400, "uri_mismatch", None)
        status = self.nonces.check(creds.nonce, now)
        if status is NonceStatus.INVALID:
            return self.challenge(now)
        trunk = table.digest_trunk(creds.username)
        if not self._verify(request, creds, table, trunk):
            cause = "unknown_user" if trunk is None else "wrong_password"
            return self._fail(request, host, creds, 403, cause, trunk)
        assert trunk is not None
        if status is NonceStatus.STALE:
            return self.challenge(now, stale=True)
        if not self.nonces.accept(creds.nonce, creds.nc, now):
            _log_replay(request, host, creds)
            return self.challenge(now)
        if not table.covers(trunk, host, port):
            return self._fail(request, host, creds, 403, "wrong_source", trunk)
        return Authenticated(trunk=trunk, username=creds.username)

    def challenge(self, now: float, *, stale: bool = False) -> Challenged:
        """A 407 (or 401) with one challenge per configured algorithm (RFC 8760 §2.4)."""
        settings = self.settings
        field = "Proxy-Authenticate" if settings.challenge == 407 else "WWW-Authenticate"
        nonce = self.nonces.issue(now)
        headers = tuple(
            (
                field,
                build_challenge(
                    realm=settings.realm,
                    nonce=nonce,
                    algorithm=algorithm,
                    opaque=self._opaque,
                    stale=stale,
                ),
            )
            for algorithm in settings.algorithms
        )
        return Challenged(status=settings.challenge, headers=headers, stale=stale)

    def _credentials(self, request: Request) -> Credentials | None:
        """The first credentials for our realm and an algorithm we offer, either header."""
        for name in _CREDENTIAL_FIELDS:
            for value in request.headers.get_all(name):
                try:
                    creds = parse_authorization(value)
                except AuthError:
                    continue
                ours = creds.realm == self.settings.realm
                if ours and creds.algorithm in self.settings.algorithms:
                    return creds
        return None

    @staticmethod
    def _verify(request: Request, creds: Credentials, table: TrunkTable, trunk: str | None) -> bool:
        digest = None if trunk is None else table.config.trunks[trunk].digest
        password = _DUMMY_PASSWORD if digest is None else digest.password.get_secret_value()
        valid = verify_authorization(
            creds, method=request.method, password=password, body=request.body
        )
        return valid and digest is not None

    @staticmethod
    def _fail(
        request: Request,
        host: str,
        creds: Credentials,
        status: int,
        cause: str,
        trunk: str | None,
    ) -> AuthFailed:
        log.warning(
            "call.auth_failed",
            call_id=request.call_id(),
            username=creds.username,
            source=host,
            cause=cause,
            trunk=trunk,
        )
        return AuthFailed(status=status, cause=cause, username=creds.username, trunk=trunk)


def _same_uri(text: str, request: Request) -> bool:
    """``uri`` names the Request-URI (compared part by part, so only the scheme's case may vary)."""
    try:
        return parse_uri(text) == request.uri
    except SipParseError:
        return False


def _log_replay(request: Request, host: str, creds: Credentials) -> None:
    log.warning(
        "call.auth_replay",
        call_id=request.call_id(),
        username=creds.username,
        source=host,
        nc=creds.nc,
    )
