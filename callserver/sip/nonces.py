"""Digest nonces: stateless issuing, freshness and replay checks (RFC 7616 §3.3, §5.5).

Theory of operation
-------------------
Issuing stores nothing. A nonce is the URL-safe base64 (no padding) of::

    issue time (8 bytes, IEEE 754 double, big-endian) || 16 random bytes || HMAC-SHA256(t || r)

keyed with a secret drawn from :mod:`secrets` when the :class:`Nonces` is made (one per
process, kept across reloads). :meth:`Nonces.check` recomputes the MAC in constant time, so
it knows, without any table, whether a nonce is one of ours (``INVALID`` when not, or when it
claims to come from the future), and whether it is older than ``lifetime`` (``STALE``: RFC 7616
§3.3 lets the server then challenge again with ``stale=true``, so that the client retries with
a new nonce without asking its user). A flood of unanswered challenges costs no memory.

Replay protection (RFC 7616 §5.5) needs memory, but only for nonces that carried a response
verified as correct: :meth:`Nonces.accept` is called after the response checked out, and
remembers the highest nonce count (``nc``) seen with each nonce. With qop, every request MUST
carry a larger ``nc`` than the last one (RFC 7616 §3.4: the count lets the server detect
replays); a response without qop (RFC 2069 form) has no count, so its nonce is good once.

The memory is bounded twice over. An entry is dropped once its nonce has expired (it is then
``STALE`` anyway), checked from the oldest entry on every :meth:`Nonces.accept`; and past
``max_entries`` (100 000 by default) the oldest entry is evicted. Whenever an entry leaves, its
issue time raises a *floor*: a nonce issued at or before the floor that is no longer remembered
is refused as a possible replay. That costs an honest client at most one more challenge, and
guarantees that a forgotten nonce can never be replayed, even after a reload lengthens the
lifetime.

Time is the caller's ``now`` (monotonic seconds, the event's ``rtime``); nothing here reads a
clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum

__all__ = ["DEFAULT_MAX_ENTRIES", "NonceStatistics", "NonceStatus", "Nonces"]

DEFAULT_MAX_ENTRIES = 100_000
_TIME = struct.Struct(">d")
_RANDOM_BYTES = 16
_MAC_BYTES = hashlib.sha256().digest_size
_LENGTH = _TIME.size + _RANDOM_BYTES + _MAC_BYTES
_SINGLE_USE = 2**32  # above any 8-hex-digit nc: a nonce used without qop takes no other count


class NonceStatus(Enum):
    """What :meth:`Nonces.check` found."""

    FRESH = "fresh"  # ours and within its lifetime
    STALE = "stale"  # ours, but expired: challenge again with stale=true
    INVALID = "invalid"  # not ours, tampered with, or not a nonce at all


@dataclass(frozen=True, slots=True)
class NonceStatistics:
    """How many nonces are remembered for replay checks, and how many left early (the cap)."""

    remembered: int
    evicted: int
    replays: int


class Nonces:
    """Issues nonces and checks their freshness and reuse; see the module docstring.

    Args:
        lifetime: seconds a nonce stays fresh after it is issued.
        secret: the HMAC key; drawn from :mod:`secrets` when None (tests pass one).
        max_entries: the most nonces remembered for replay checks.

    Raises:
        ValueError: a lifetime that is not positive, or a cap below 1.
    """

    def __init__(
        self,
        lifetime: float,
        *,
        secret: bytes | None = None,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, not {max_entries}")
        self.lifetime = _check_lifetime(lifetime)
        self.max_entries = max_entries
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._seen: OrderedDict[str, tuple[float, int]] = OrderedDict()  # nonce: (issued, nc)
        self._floor = float("-inf")
        self._last: tuple[str, float] | None = None  # the last nonce found ours, its issue time
        self._evicted = 0
        self._replays = 0

    def set_lifetime(self, lifetime: float) -> None:
        """A reload: nonces already issued are judged by the new lifetime from now on.

        Raises:
            ValueError: a lifetime that is not positive.
        """
        self.lifetime = _check_lifetime(lifetime)

    def issue(self, now: float) -> str:
        """A new nonce issued at ``now`` (RFC 7616 §3.3: unique for each 401/407)."""
        body = _TIME.pack(now) + secrets.token_bytes(_RANDOM_BYTES)
        return base64.urlsafe_b64encode(body + self._mac(body)).rstrip(b"=").decode("ascii")

    def check(self, nonce: str, now: float) -> NonceStatus:
        """Whether ``nonce`` is ours and still fresh at ``now`` (RFC 7616 §3.3 ``stale``)."""
        issued = self._issued(nonce, now)
        if issued is None:
            return NonceStatus.INVALID
        return NonceStatus.FRESH if now - issued <= self.lifetime else NonceStatus.STALE

    def accept(self, nonce: str, nc: str | None, now: float) -> bool:
        """Record one use of ``nonce`` with count ``nc``; False if that is a replay.

        Call it once the response was verified; a nonce that is not fresh is refused. With
        qop, ``nc`` (8 hex digits) must be larger than any count this nonce was used with
        before; without qop (``nc`` None) the nonce must not have been used at all (RFC 7616
        §3.4, §5.5).
        """
        issued = self._issued(nonce, now)
        count = _SINGLE_USE if nc is None else _parse_nc(nc)
        if issued is None or count is None or now - issued > self.lifetime:
            return False
        self._expire(now)
        seen = self._seen.get(nonce)
        forgotten = seen is None and issued <= self._floor
        if forgotten or (seen is not None and (nc is None or count <= seen[1])):
            self._replays += 1
            return False
        if seen is None:
            self._evict_past_cap()
        self._seen[nonce] = (issued, count)
        return True

    def statistics(self) -> NonceStatistics:
        """Counters of the replay memory since this object was made."""
        return NonceStatistics(len(self._seen), self._evicted, self._replays)

    def _issued(self, nonce: str, now: float) -> float | None:
        """The issue time of one of our nonces, None if it is not ours or from the future.

        The last nonce found ours is remembered: ``accept`` follows ``check`` of the same
        nonce, and its MAC need not be computed twice.
        """
        if self._last is not None and nonce == self._last[0]:
            issued = self._last[1]
            return issued if issued <= now else None
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (binascii.Error, ValueError):
            return None
        body, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if len(raw) != _LENGTH or not hmac.compare_digest(mac, self._mac(body)):
            return None
        issued = float(_TIME.unpack(body[: _TIME.size])[0])
        self._last = (nonce, issued)
        return issued if issued <= now else None

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self._secret, body, hashlib.sha256).digest()

    def _expire(self, now: float) -> None:
        while self._seen:
            nonce, (issued, _) = next(iter(self._seen.items()))
            if now - issued <= self.lifetime:
                return
            self._forget(nonce, issued)

    def _evict_past_cap(self) -> None:
        while len(self._seen) >= self.max_entries:
            nonce, (issued, _) = next(iter(self._seen.items()))
            self._forget(nonce, issued)
            self._evicted += 1

    def _forget(self, nonce: str, issued: float) -> None:
        del self._seen[nonce]
        self._floor = max(self._floor, issued)


def _check_lifetime(lifetime: float) -> float:
    if not lifetime > 0:
        raise ValueError(f"the nonce lifetime must be positive, not {lifetime}")
    return lifetime


def _parse_nc(nc: str) -> int | None:
    """The nonce count, 8 hex digits from 00000001 (RFC 7616 §3.4), None if malformed."""
    if len(nc) != 8 or not all(c in "0123456789abcdefABCDEF" for c in nc):
        return None
    count = int(nc, 16)
    return count if count > 0 else None
