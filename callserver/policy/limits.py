"""Channel limits as counters per profile (as Kamailio's dialog profiles count channels).

Theory of operation
-------------------
A *profile* is a named pool of channels: ``trunk:<id>``, ``customer:<id>`` (a customer or
Centrex group whose trunks and numbers share one pool) or ``number:<e164>``. The operator gives
some profiles a limit; a profile without one is unlimited but still counted, so a limit added by
a reload sees the calls already in progress.

A call takes its channels with :meth:`ChannelLimits.acquire` when its INVITE is accepted
(ringing counts) and names every profile it belongs to. The take is all or nothing: if any
profile is at its limit nothing is taken and a :class:`Refusal` names the first full one;
otherwise one channel is taken in each and the caller gets a :class:`Grant` to keep with the
call leg. :meth:`ChannelLimits.release` gives a grant back exactly once, whichever teardown path
gets there first (BYE either way, CANCEL, an error response, a timeout, a dialplan error,
shutdown); a second release of the same grant, or of a grant this object never issued, returns
False, changes nothing and is counted as a double release.

A forwarded call holds one channel for each leg: the outbound leg simply acquires again, with
its own profiles (the outbound trunk, the forward-to number), and keeps its own grant.

:meth:`ChannelLimits.update_limits` is a reload. Counters and grants are kept, so calls in
progress are never cut; a limit lowered below the count in use refuses new calls until enough
of them have ended for the count to drop below it.

Several nodes (a cluster, ``cluster.channels``) keep this object as the node's own view: its
``observer`` is told of every grant and release (``checked`` says the grant is a new call's,
whose channels the shared layer checks against the other nodes before the call goes on), and
``elsewhere`` holds the other nodes' channels per profile as last seen, which
:meth:`ChannelLimits.in_use` and :meth:`ChannelLimits.pools_in_use` add to this node's own
(:meth:`ChannelLimits.held` is this node's alone). Without a cluster there is no observer and
nothing elsewhere.

Over the limit the call is answered with :class:`OverLimitResponse`: by default 503 with
``Reason: Q.850;cause=34`` (no circuit/channel available, ITU-T Q.850 Table 1; carried as
in RFC 3326 §2) and ``Retry-After`` (RFC 3261 §20.33). :func:`refusal_headers` builds the headers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from callserver.policy.cps import RateRefusal

__all__ = [
    "ChannelLimits",
    "ChannelObserver",
    "Grant",
    "LimitStatistics",
    "OverLimitResponse",
    "Refusal",
    "profile_kind",
    "refusal_headers",
]

# Q.850 cause 34 "no circuit/channel available", in the RFC 3326 §2 Reason header syntax.
_CAUSE_34 = 'Q.850;cause=34;text="No circuit/channel available"'


@dataclass(frozen=True, slots=True)
class Grant:
    """The channels one call leg holds: one in each of ``profiles``; give it back to release."""

    id: int
    profiles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Nothing was taken: ``profile`` (the first full one) has ``in_use`` of ``limit`` busy."""

    profile: str
    limit: int
    in_use: int


@dataclass(frozen=True, slots=True)
class LimitStatistics:
    """Counters of a :class:`ChannelLimits` since it was made.

    ``refused`` counts refusals by the kind of the full profile (``trunk``, ``customer``,
    ``number``: the text before the first colon). ``double_releases`` counts releases that
    changed nothing (a grant released before, or one this object never issued).
    """

    granted: int
    released: int
    refused: Mapping[str, int]
    double_releases: int
    active_grants: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OverLimitResponse:
    """The answer to a call over a limit; None leaves that header out.

    RFC 3261 §21.5.4: a 503 server "MAY indicate when the client should retry the request in a
    Retry-After header field"; ``reason`` is an RFC 3326 Reason header value.
    """

    status: int = 503
    reason: str | None = _CAUSE_34
    retry_after: int | None = 30


class ChannelObserver(Protocol):
    """Told of every grant and release of a :class:`ChannelLimits` (a cluster's shared layer)."""

    def acquired(self, grant: Grant, checked: bool) -> None:
        """``grant`` was taken; ``checked``: a new call's, checked by the observer's owner."""

    def released(self, grant: Grant) -> None:
        """``grant`` was given back (once)."""


def profile_kind(profile: str) -> str:
    """The kind of ``profile``: ``"trunk"`` for ``"trunk:gw1"``, the whole name if no colon."""
    return profile.partition(":")[0]


def refusal_headers(
    response: OverLimitResponse, refusal: Refusal | RateRefusal
) -> tuple[tuple[str, str], ...]:
    """The header fields to send with ``response.status`` for ``refusal``.

    A channel refusal gets the configured Reason and Retry-After, the same whichever profile was
    full, so a caller learns nothing of how the operator's pools are laid out. A call-rate
    refusal gets no Reason (cause 34 names channels) and a Retry-After of the whole seconds
    until its bucket has a token again, at least 1 (delta-seconds, RFC 3261 §20.33).

    Args:
        response: the configured answer.
        refusal: what :meth:`ChannelLimits.acquire` or ``CallRateLimiter.admit`` returned.

    Returns:
        ``(name, value)`` pairs, Reason before Retry-After.
    """
    if isinstance(refusal, RateRefusal):
        return (("Retry-After", str(_delta_seconds(refusal.retry_after))),)
    headers: list[tuple[str, str]] = []
    if response.reason is not None:
        headers.append(("Reason", response.reason))
    if response.retry_after is not None:
        headers.append(("Retry-After", str(response.retry_after)))
    return tuple(headers)


# A Retry-After a client can act on: never 0 (that would invite an immediate retry) and never
# more than a day, even for a bucket that cannot refill (retry_after is then infinite).
def _delta_seconds(seconds: float) -> int:
    if not seconds < 86_400:
        return 86_400
    return max(1, math.ceil(seconds))


class ChannelLimits:
    """Channel counters per profile with optional limits; see the module docstring.

    Args:
        limits: the maximum channels of each limited profile; absent profiles are unlimited.

    Raises:
        ValueError: if a limit is negative.
    """

    def __init__(self, limits: Mapping[str, int] | None = None) -> None:
        self._limits: dict[str, int] = {}
        self._counts: dict[str, int] = {}  # profiles with a channel in use; never 0 or less
        self._active: dict[int, Grant] = {}
        self._next_id = 0
        self._released = 0
        self._double_releases = 0
        self._refused: dict[str, int] = {}
        self.observer: ChannelObserver | None = None  # a cluster's shared layer
        self.elsewhere: dict[str, int] = {}  # the other nodes' channels per profile, last seen
        self.update_limits(limits or {})

    @property
    def limits(self) -> Mapping[str, int]:
        """The limits in force (a read-only view)."""
        return MappingProxyType(self._limits)

    def acquire(self, profiles: Sequence[str], *, checked: bool = False) -> Grant | Refusal:
        """Take one channel in every profile of ``profiles``, or none at all.

        A profile named twice is taken once. Called when the INVITE is accepted: ringing counts.
        ``checked`` marks a new call's channels for the ``observer`` (module docstring).

        Returns:
            A :class:`Grant` to keep with the call leg and pass to :meth:`release`, or a
            :class:`Refusal` naming the first profile already at its limit.
        """
        wanted = tuple(dict.fromkeys(profiles))
        for profile in wanted:
            limit = self._limits.get(profile)
            in_use = self._counts.get(profile, 0)
            # After a reload lowered the limit the count may stand above it: still refuse.
            if limit is not None and in_use >= limit:
                kind = profile_kind(profile)
                self._refused[kind] = self._refused.get(kind, 0) + 1
                return Refusal(profile=profile, limit=limit, in_use=in_use)
        for profile in wanted:
            self._counts[profile] = self._counts.get(profile, 0) + 1
        self._next_id += 1
        grant = Grant(id=self._next_id, profiles=wanted)
        self._active[grant.id] = grant
        if self.observer is not None:
            self.observer.acquired(grant, checked)
        return grant

    def release(self, grant: Grant) -> bool:
        """Give back the channels of ``grant``, exactly once.

        Returns:
            True if the channels were released now; False (and nothing changes) if ``grant``
            was released before or was not issued by this object.
        """
        # Identity, not equality: an equal Grant built elsewhere is not the one we issued.
        if self._active.get(grant.id) is not grant:
            self._double_releases += 1
            return False
        del self._active[grant.id]
        for profile in grant.profiles:
            left = self._counts[profile] - 1
            if left:
                self._counts[profile] = left
            else:
                del self._counts[profile]
        self._released += 1
        if self.observer is not None:
            self.observer.released(grant)
        return True

    def update_limits(self, limits: Mapping[str, int]) -> None:
        """Replace the limits (a reload); counters and grants carry over.

        Calls in progress are never cut: a lowered limit only refuses new calls until the count
        drops below it. A profile left out of ``limits`` becomes unlimited.

        Raises:
            ValueError: if a limit is negative (then nothing changes).
        """
        for profile, limit in limits.items():
            if limit < 0:
                raise ValueError(f"channel limit of {profile!r} is {limit}, less than 0")
        self._limits = dict(limits)

    def pools_in_use(self) -> dict[str, int]:
        """Every profile with a channel held now (here and elsewhere), and how many."""
        pools = dict(self._counts)
        for profile, count in self.elsewhere.items():
            if count > 0:
                pools[profile] = pools.get(profile, 0) + count
        return pools

    def in_use(self, profile: str) -> int:
        """How many channels of ``profile`` are held now, here and elsewhere (as last seen)."""
        return self._counts.get(profile, 0) + max(0, self.elsewhere.get(profile, 0))

    def held(self, profile: str) -> int:
        """How many channels of ``profile`` this node holds now."""
        return self._counts.get(profile, 0)

    def pools_held(self) -> dict[str, int]:
        """Every profile with a channel this node holds now, and how many (a snapshot)."""
        return dict(self._counts)

    def is_held(self, grant: Grant) -> bool:
        """Whether ``grant`` (the very object issued) is held now: not released yet."""
        return self._active.get(grant.id) is grant

    def count_refusal(self, profile: str) -> None:
        """Count a refusal decided elsewhere (the cluster's shared counters) as this node's."""
        kind = profile_kind(profile)
        self._refused[kind] = self._refused.get(kind, 0) + 1

    def limit(self, profile: str) -> int | None:
        """The limit of ``profile``; None if it is unlimited."""
        return self._limits.get(profile)

    def statistics(self) -> LimitStatistics:
        """A snapshot of the counters and how many grants are held now."""
        return LimitStatistics(
            granted=self._next_id,
            released=self._released,
            refused=dict(self._refused),
            double_releases=self._double_releases,
            active_grants=len(self._active),
        )
