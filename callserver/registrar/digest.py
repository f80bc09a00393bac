"""Digest authentication of a REGISTER against stored HA1 values (RFC 3261 §10.3 steps 3-4,
§22; RFC 7616; RFC 8760).

Theory of operation
-------------------
The same steps as the trunks' INVITE authentication, with the same shared pieces: the
stateless nonces of :class:`callserver.sip.nonces.Nonces` and the failure counts of
:class:`callserver.policy.lockout.Lockout` (one of each for the whole server, so failures on
REGISTER and INVITE count toward the same per-source and per-username limits). In order:

1. A source in its penalty: 403, its credentials unread.
2. No credentials for our realm and an algorithm we offer: 401 with one ``WWW-Authenticate``
   per algorithm, SHA-256 first (RFC 8760 §2.4).
3. ``uri`` not naming the Request-URI: 400 (RFC 7616 §3.4.6). A nonce not ours: a fresh 401;
   one of ours that expired: 401 with ``stale=true`` (RFC 7616 §3.3).
4. A username in its penalty, asked from a source not trusted for it: 403, unchecked.
5. The username picks the :class:`Account`; the response is recomputed with its HA1 of the
   algorithm used (``verify_authorization_ha1``). An unknown username, a wrong password and an
   AOR (the To user) that is not the account's all get the same 403, and an unknown username is
   checked against a dummy HA1, so that none can be told from another (no enumeration).
6. A nonce count not larger than the last one seen with the nonce: a replay, answered with a
   fresh 401.

Every refusal counts against the source and the username; the ``delay`` of their standing is
returned for the adapter to hold the answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from callserver.policy.lockout import Lockout, Standing
from callserver.registrar.accounts import Account, Accounts
from callserver.registrar.contacts import RegisterRejected
from callserver.sip.auth import (
    Credentials,
    challenge_fields,
    find_credentials,
    names_uri,
    verify_authorization_ha1,
)
from callserver.sip.message import Request
from callserver.sip.nonces import Nonces, NonceStatus

__all__ = ["Authorized", "RegisterDigest"]

_DUMMY_HA1 = secrets.token_hex(32)  # for unknown usernames: the same work, never a match


@dataclass(frozen=True, slots=True, kw_only=True)
class Authorized:
    """The REGISTER's credentials are valid for ``account``; hold the answer ``delay`` s."""

    account: Account
    delay: float = 0.0


class RegisterDigest:
    """Challenges REGISTERs and checks their credentials; see the module docstring.

    Args:
        accounts: the account of a username, or None.
        realm: the realm of the challenges.
        nonces: the server's nonce issuer; ``lockout`` its failure counts.
        algorithms: offered in this order.
    """

    def __init__(
        self,
        accounts: Accounts,
        *,
        realm: str,
        nonces: Nonces,
        lockout: Lockout,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
    ) -> None:
        self.accounts = accounts
        self.realm = realm
        self.nonces = nonces
        self.lockout = lockout
        self.algorithms = algorithms
        self._opaque = secrets.token_urlsafe(12)

    def authorize(self, request: Request, aor: str, host: str, now: float) -> Authorized:
        """Steps 1-6 of the module docstring for a REGISTER of ``aor`` from ``host``.

        Raises:
            RegisterRejected: 401 (a challenge), 400 or 403, with its ``delay`` set.
        """
        standing = self.lockout.check_source(host, now)
        if standing.refused:
            raise RegisterRejected(403, "Forbidden")
        creds = self._credentials(request)
        if creds is None:
            raise self._challenge(now, standing)
        if not names_uri(creds.uri, request.uri):
            reason = "Digest uri is not the Request-URI"
            raise self._fail(host, creds.username, 400, reason, standing.delay, now)
        status = self.nonces.check(creds.nonce, now)
        if status is not NonceStatus.FRESH:
            raise self._challenge(now, standing, stale=status is NonceStatus.STALE)
        user = self.lockout.check_username(creds.username, host, now)
        delay = max(standing.delay, user.delay)
        account = None if user.refused else self.accounts(creds.username)
        if not self._verify(request, creds, account) or user.refused:
            counted = None if user.refused else creds.username
            raise self._fail(host, counted, 403, "Forbidden", delay, now)
        assert account is not None
        if aor not in (account.aor, account.username):
            raise self._fail(host, creds.username, 403, "Forbidden", delay, now)
        if not self.nonces.accept(creds.nonce, creds.nc, now):
            raise self._challenge(now, Standing(delay=delay))
        self.lockout.succeeded(host, creds.username)
        return Authorized(account=account, delay=delay)

    def _credentials(self, request: Request) -> Credentials | None:
        values = request.headers.get_all("Authorization")
        return find_credentials(values, self.realm, self.algorithms)

    @staticmethod
    def _verify(request: Request, creds: Credentials, account: Account | None) -> bool:
        stored = None if account is None else account.ha1.get(creds.algorithm.removesuffix("-sess"))
        secret = _DUMMY_HA1 if stored is None else stored
        valid = verify_authorization_ha1(
            creds, method=request.method, ha1_hex=secret, body=request.body
        )
        return valid and stored is not None

    def _challenge(
        self, now: float, standing: Standing, *, stale: bool = False
    ) -> RegisterRejected:
        """401 with one challenge per algorithm (RFC 3261 §22.1, RFC 8760 §2.4)."""
        headers = challenge_fields(
            "WWW-Authenticate",
            realm=self.realm,
            nonce=self.nonces.issue(now),
            algorithms=self.algorithms,
            opaque=self._opaque,
            stale=stale,
        )
        return RegisterRejected(401, "Unauthorized", headers, delay=standing.delay)

    def _fail(
        self, host: str, username: str | None, status: int, reason: str, delay: float, now: float
    ) -> RegisterRejected:
        """Count a failure against ``host`` and ``username`` (None: a locked username)."""
        self.lockout.failed(host, username, now)
        return RegisterRejected(status, reason, delay=delay)
