"""Digest authentication of an inbound INVITE by the trunks that have credentials.

Theory of operation
-------------------
Admission asks here only when no trunk without credentials covers the INVITE's source address
and some trunk has ``digest`` credentials (config/trunks.yaml). Everything the server does
follows RFC 3261 §22 with the algorithms of RFC 7616 brought to SIP by RFC 8760, in two
halves: :meth:`DigestAuthenticator.inspect` decides what needs no password, and
:meth:`DigestAuthenticator.verify` checks the password only once the caller has found the rest
of the request acceptable (its SDP offer, its caller), so that a request refused anyway gets
the same answer with a right password as with a wrong one.

``inspect``:

0. A source in its penalty for guessing passwords (``policy.lockout``): :class:`Blocked`,
   answered with 403 or not at all, its credentials unread.
1. The credentials are read from ``Proxy-Authorization`` or ``Authorization`` (either is
   accepted, whichever challenge the client answered); only those for our realm and one of the
   configured algorithms count (RFC 3261 §22.3: a request may carry credentials for other
   realms). None: :class:`Challenged`, a 407 with one ``Proxy-Authenticate`` per configured
   algorithm in the configured order (RFC 8760 §2.4), qop ``auth`` and an opaque; or a 401
   with ``WWW-Authenticate`` when ``digest.challenge`` is 401.
2. ``uri`` must name the Request-URI (RFC 3261 §22.4 via RFC 2617 §3.2.2.5, RFC 7616
   §3.4.6): otherwise 400, as those sections ask.
3. A nonce that is not ours (tampered with, from before a restart): a fresh challenge. One of
   ours that expired: a new challenge with ``stale=true`` (RFC 7616 §3.3), which the client
   answers without asking its user. RFC 7616 would set stale only for a right response; the
   response to an expired nonce is not checked at all here, so that old nonces cannot tell a
   right password from a wrong one (a client with a wrong password meets its 403 one round
   later).
4. What is left is a :class:`Claim` for ``verify``.

``verify``:

5. A username in its penalty, asked from a source not trusted for it: 403, unchecked.
6. The user name picks the trunk and the response is recomputed with its password; a user name
   that is no trunk's is a phone's (``accounts``: the subscribers of config/centrex.yaml, as
   the registrar has them), checked against the HA1 of the algorithm used (RFC 7616 §3.4.2).
   An unknown user and a wrong password get the same 403, so user names cannot be probed; the
   response is even computed against a dummy password for an unknown user, so the two take as
   long.
7. A nonce count not larger than the last one seen with that nonce (or a second use of a
   nonce without qop): a replay, logged as ``call.auth_replay`` and answered with a fresh
   challenge (not stale: nothing says the sender knows the password).
8. A trunk that has a ``match`` as well accepts its credentials only from those addresses;
   a phone may call from anywhere (it registers from where it is).

Every refusal is logged as ``call.auth_failed`` with the user name, the source address and the
cause, and counted against the source and the username (``policy.lockout``): past
``slow_after`` failures the 407 and 403 answers carry a ``delay`` to hold them, and the failure
that reaches ``refuse_after`` starts a penalty, logged once as ``auth.penalty_started``.

Nonces live in :class:`callserver.sip.nonces.Nonces` and failures in
:class:`callserver.policy.lockout.Lockout`; both survive reloads: challenges issued before a
SIGHUP are still answered, and a penalty runs its course.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from itertools import chain

import structlog

from callserver.config.trunks import DigestSettings, LockoutSettings, TrunkTable
from callserver.policy.lockout import Lockout, LockoutPolicy, Standing
from callserver.registrar.accounts import Account, Accounts
from callserver.sip.auth import (
    Credentials,
    challenge_fields,
    find_credentials,
    names_uri,
    verify_authorization,
    verify_authorization_ha1,
)
from callserver.sip.message import Request
from callserver.sip.nonces import Nonces, NonceStatus

__all__ = [
    "AuthFailed",
    "Authenticated",
    "Blocked",
    "Challenged",
    "Claim",
    "DigestAuthenticator",
    "lockout_policy",
    "no_accounts",
]

log = structlog.get_logger("callserver.calls")

_CREDENTIAL_FIELDS = ("Proxy-Authorization", "Authorization")
_DUMMY_PASSWORD = secrets.token_urlsafe(16)  # for unknown users: same work, no match
_DUMMY_HA1 = secrets.token_hex(32)  # for a phone without an HA1 of the algorithm used


def no_accounts(username: str) -> Account | None:
    """No phones: every user name is a trunk's or nobody's."""
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Challenged:
    """Answer the INVITE with ``status`` (401/407) and its challenge ``headers``; no CDR.

    A challenge is part of a normal call set-up (RFC 3261 §22.2), not a refusal. ``delay``:
    seconds to hold the answer (a source with recent failures).
    """

    status: int
    headers: tuple[tuple[str, str], ...]
    stale: bool = False
    delay: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Authenticated:
    """The credentials are valid: the call comes from ``trunk``, or from the phone of
    ``account`` (a Centrex subscriber) when ``trunk`` is None."""

    trunk: str | None
    username: str
    account: Account | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthFailed:
    """Refuse the call with ``status``; ``cause`` is for the log, never for the caller.

    ``trunk`` is the trunk the user name belongs to, when it belongs to one; ``delay`` the
    seconds to hold the answer.
    """

    status: int
    cause: str
    username: str
    trunk: str | None = None
    delay: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Blocked:
    """The source is in its penalty for guessing passwords: answer ``status``, or nothing at
    all when it is None. No CDR: the request was not looked at."""

    status: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """Credentials with a fresh nonce of ours, to :meth:`DigestAuthenticator.verify` once the
    rest of the request is acceptable; ``delay`` holds the answer to a failure."""

    credentials: Credentials
    delay: float = 0.0


def lockout_policy(settings: LockoutSettings) -> LockoutPolicy:
    """The ``digest.lockout`` section of config/trunks.yaml as the policy's thresholds."""
    return LockoutPolicy(
        slow_after=settings.slow_after,
        refuse_after=settings.refuse_after,
        penalty=settings.penalty,
        delay=settings.delay,
        max_keys=settings.max_keys,
    )


class DigestAuthenticator:
    """Challenges INVITEs and checks their credentials; see the module docstring.

    Args:
        settings: the ``digest`` section of config/trunks.yaml.
        nonces: the nonce issuer (tests pass one with a known secret).
        lockout: the failure counts (made from ``settings.lockout`` when None).
        accounts: the phones' accounts by user name (``app.py`` sets the server's).
    """

    def __init__(
        self,
        settings: DigestSettings,
        *,
        nonces: Nonces | None = None,
        lockout: Lockout | None = None,
        accounts: Accounts = no_accounts,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.nonces = nonces or Nonces(settings.nonce_lifetime)
        self.nonces.set_lifetime(settings.nonce_lifetime)
        self.lockout = lockout or Lockout(lockout_policy(settings.lockout))
        self._opaque = secrets.token_urlsafe(12)

    def update(self, settings: DigestSettings) -> None:
        """A reload: new realm, answer, algorithms, lifetime and thresholds; issued nonces
        stay valid, failures and penalties carry over."""
        self.settings = settings
        self.nonces.set_lifetime(settings.nonce_lifetime)
        self.lockout.update(lockout_policy(settings.lockout))

    def authenticate(
        self, request: Request, host: str, port: int, table: TrunkTable, now: float
    ) -> Challenged | Authenticated | AuthFailed | Blocked:
        """:meth:`source_standing`, :meth:`inspect` and :meth:`verify` in a row, for a request
        with nothing else to check. See RFC 3261 §22.2 and §22.4, RFC 7616 §3.3 and §3.4."""
        standing = self.source_standing(host, now)
        if isinstance(standing, Blocked):
            return standing
        inspected = self.inspect(request, host, standing, now)
        if not isinstance(inspected, Claim):
            return inspected
        return self.verify(request, inspected, host, port, table, now)

    def source_standing(self, host: str, now: float) -> Standing | Blocked:
        """Step 0: :class:`Blocked` for a source in its penalty, else how it stands."""
        standing = self.lockout.check_source(host, now)
        if not standing.refused:
            return standing
        answer = self.settings.lockout.answer
        return Blocked(status=None if answer == "drop" else answer)

    def inspect(
        self, request: Request, host: str, standing: Standing, now: float
    ) -> Challenged | AuthFailed | Claim:
        """Steps 1-4 of the module docstring for a source that stands as ``standing``.

        See RFC 3261 §22.2 (UAS behaviour), RFC 7616 §3.3 (stale), RFC 8760 §2.4.
        """
        creds = self._credentials(request)
        if creds is None:
            return replace(self.challenge(now), delay=standing.delay)
        if not names_uri(creds.uri, request.uri):
            return self._fail(request, host, creds, 400, "uri_mismatch", None, standing, now)
        status = self.nonces.check(creds.nonce, now)
        if status is not NonceStatus.FRESH:
            stale = status is NonceStatus.STALE
            return replace(self.challenge(now, stale=stale), delay=standing.delay)
        return Claim(credentials=creds, delay=standing.delay)

    def verify(
        self, request: Request, claim: Claim, host: str, port: int, table: TrunkTable, now: float
    ) -> Authenticated | AuthFailed | Challenged:
        """Steps 5-8 of the module docstring: the password, the nonce count, the source.

        See RFC 3261 §22.4, RFC 7616 §3.4 (nc) and §5.5 (replay).
        """
        creds = claim.credentials
        user = self.lockout.check_username(creds.username, host, now)
        standing = Standing(delay=max(claim.delay, user.delay))
        trunk = table.digest_trunk(creds.username)
        if user.refused:
            return self._fail(request, host, creds, 403, "username_locked", trunk, standing, now)
        account = None if trunk is not None else self.accounts(creds.username)
        if not self._verify(request, creds, table, trunk, account):
            known = trunk is not None or account is not None
            cause = "wrong_password" if known else "unknown_user"
            return self._fail(request, host, creds, 403, cause, trunk, standing, now)
        if not self.nonces.accept(creds.nonce, creds.nc, now):
            _log_replay(request, host, creds)
            return replace(self.challenge(now), delay=standing.delay)
        if trunk is not None and not table.covers(trunk, host, port):
            return self._fail(request, host, creds, 403, "wrong_source", trunk, standing, now)
        self.lockout.succeeded(host, creds.username)
        return Authenticated(trunk=trunk, username=creds.username, account=account)

    def challenge(self, now: float, *, stale: bool = False) -> Challenged:
        """A 407 (or 401) with one challenge per configured algorithm (RFC 8760 §2.4)."""
        settings = self.settings
        field = "Proxy-Authenticate" if settings.challenge == 407 else "WWW-Authenticate"
        headers = challenge_fields(
            field,
            realm=settings.realm,
            nonce=self.nonces.issue(now),
            algorithms=settings.algorithms,
            opaque=self._opaque,
            stale=stale,
        )
        return Challenged(status=settings.challenge, headers=headers, stale=stale)

    def _credentials(self, request: Request) -> Credentials | None:
        """The first credentials for our realm and an algorithm we offer, either header."""
        values = chain.from_iterable(map(request.headers.get_all, _CREDENTIAL_FIELDS))
        return find_credentials(values, self.settings.realm, self.settings.algorithms)

    @staticmethod
    def _verify(
        request: Request,
        creds: Credentials,
        table: TrunkTable,
        trunk: str | None,
        account: Account | None,
    ) -> bool:
        """The response against the trunk's password or the phone's HA1 (RFC 7616 §3.4.1)."""
        if account is not None:
            stored = account.ha1.get(creds.algorithm.removesuffix("-sess"))
            valid = verify_authorization_ha1(
                creds, method=request.method, ha1_hex=stored or _DUMMY_HA1, body=request.body
            )
            return valid and stored is not None and account.realm == creds.realm
        digest = None if trunk is None else table.config.trunks[trunk].digest
        password = _DUMMY_PASSWORD if digest is None else digest.password.get_secret_value()
        valid = verify_authorization(
            creds, method=request.method, password=password, body=request.body
        )
        return valid and digest is not None

    def _fail(
        self,
        request: Request,
        host: str,
        creds: Credentials,
        status: int,
        cause: str,
        trunk: str | None,
        standing: Standing,
        now: float,
    ) -> AuthFailed:
        """Log and count a failure; a locked username counts against its source alone."""
        log.warning(
            "call.auth_failed",
            call_id=request.call_id(),
            username=creds.username,
            source=host,
            cause=cause,
            trunk=trunk,
        )
        counted = None if cause == "username_locked" else creds.username
        for penalty in self.lockout.failed(host, counted, now):
            log.warning(
                "auth.penalty_started",
                scope=penalty.scope,
                source=host,
                username=creds.username,
                failures=penalty.failures,
                penalty=self.settings.lockout.penalty,
            )
        return AuthFailed(
            status=status, cause=cause, username=creds.username, trunk=trunk, delay=standing.delay
        )


def _log_replay(request: Request, host: str, creds: Credentials) -> None:
    log.warning(
        "call.auth_replay",
        call_id=request.call_id(),
        username=creds.username,
        source=host,
        nc=creds.nc,
    )
