"""Password guessing: authentication failures per source address and per username.

Theory of operation
-------------------
Digest authentication (RFC 3261 §22) lets anyone who can reach the server try passwords, one
request each, as fast as the network carries them (RFC 3261 §26.3.2.3 asks servers to resist
exactly this). :class:`Lockout` counts the failures of each source address and of each
username, in two :class:`FailureCounter` tables of the same shape, and gives every request a
:class:`Standing`:

* Below ``slow_after`` failures: answered at once.
* From ``slow_after`` on: answers to that key are held ``delay`` seconds (the caller schedules
  them; nothing here sleeps).
* The failure that brings a key to ``refuse_after`` starts a *penalty*: for ``penalty``
  seconds every request of that key is refused without its credentials being looked at, so
  a right password can no longer be told from a wrong one. :meth:`Lockout.failed` returns a
  :class:`PenaltyStarted` once per key and episode, for the caller to log.

Failures are forgotten ``penalty`` seconds after the last one (a key that keeps failing more
often than that keeps counting), and a penalty ends, with its count, ``penalty`` seconds after
it started: a key can try at most ``refuse_after`` passwords per ``penalty`` seconds.

A success forgives nothing: a source that guesses from behind the same address as an honest
client, or a username guessed at from many addresses while its owner keeps calling, would
otherwise never reach the penalty. Instead a success marks the pair (username, source) as
*trusted*: a trusted source is not held or refused because of its username's failures, so an
attacker elsewhere who fails on purpose cannot lock the owner out. The source's own failures
still count for it.

Memory is bounded per table by ``max_keys``: keys still counting are evicted least recently
failed first; keys in a penalty sit in a table of their own (so a spray of new keys cannot
free them early), evicted soonest-ending first when even that one is full. Trusted pairs are
bounded the same way. Time is the caller's ``now`` (monotonic seconds); nothing here reads a
clock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = [
    "FailureCounter",
    "Lockout",
    "LockoutPolicy",
    "LockoutStatistics",
    "PenaltyStarted",
    "Standing",
]

SOURCE = "source"
USERNAME = "username"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutPolicy:
    """How failures are answered: held after ``slow_after``, refused after ``refuse_after``.

    Raises:
        ValueError: a count below 1, ``slow_after`` above ``refuse_after``, a negative delay,
            a penalty that is not positive, or ``max_keys`` below 1.
    """

    slow_after: int = 3
    refuse_after: int = 10
    penalty: float = 900.0
    delay: float = 2.0
    max_keys: int = 10_000

    def __post_init__(self) -> None:
        if self.slow_after < 1 or self.refuse_after < 1:
            raise ValueError("slow_after and refuse_after must be at least 1")
        if self.slow_after > self.refuse_after:
            raise ValueError(
                f"slow_after ({self.slow_after}) is more than refuse_after ({self.refuse_after})"
            )
        if not self.delay >= 0 or not self.penalty > 0:
            raise ValueError("the delay must be 0 or more and the penalty positive")
        if self.max_keys < 1:
            raise ValueError(f"max_keys is {self.max_keys}, less than 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class Standing:
    """How a request stands: ``refused`` (a key in its penalty) and the ``delay`` of answers."""

    refused: bool = False
    delay: float = 0.0


CLEAR = Standing()


@dataclass(frozen=True, slots=True, kw_only=True)
class PenaltyStarted:
    """``key`` of ``scope`` (source or username) reached ``failures``: refused until ``until``."""

    scope: str
    key: str
    failures: int
    until: float


@dataclass(frozen=True, slots=True, kw_only=True)
class LockoutStatistics:
    """Counters since the :class:`Lockout` was made, and the keys held now."""

    failures: int
    penalties: dict[str, int]  # started, by scope
    refused: dict[str, int]  # requests refused in a penalty, by scope
    tracked: dict[str, int]  # keys counting or in a penalty now, by scope
    evicted: int


@dataclass(slots=True)
class _Entry:
    failures: int
    last: float


@dataclass(slots=True)
class _Counters:
    failures: int = 0
    evicted: int = 0
    penalties: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)


class FailureCounter:
    """Failures of one scope of keys (source addresses or usernames); see the module docstring.

    Args:
        scope: ``source`` or ``username``, carried into :class:`PenaltyStarted`.
        policy: the thresholds.
    """

    def __init__(self, scope: str, policy: LockoutPolicy) -> None:
        self.scope = scope
        self.policy = policy
        self._counting: OrderedDict[str, _Entry] = OrderedDict()  # least recently failed first
        self._penalised: OrderedDict[str, float] = OrderedDict()  # key: end, soonest first
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._counting) + len(self._penalised)

    def standing(self, key: str, now: float) -> Standing:
        """Whether ``key`` is in a penalty at ``now``, and how long its answers are held."""
        if self._in_penalty(key, now):
            return Standing(refused=True, delay=self.policy.delay)
        entry = self._entry(key, now)
        if entry is None or entry.failures < self.policy.slow_after:
            return CLEAR
        return Standing(delay=self.policy.delay)

    def fail(self, key: str, now: float) -> PenaltyStarted | None:
        """Count one failure of ``key`` at ``now``; the penalty it starts, if it starts one."""
        if self._in_penalty(key, now):
            return None  # refused requests are not checked, so they cannot fail
        entry = self._entry(key, now)
        if entry is None:
            self._forget_quiet(now)
            self._make_room(self._counting)
            entry = self._counting[key] = _Entry(failures=0, last=now)
        entry.failures += 1
        entry.last = now
        self._counting.move_to_end(key)
        if entry.failures < self.policy.refuse_after:
            return None
        del self._counting[key]
        self._make_room(self._penalised)
        until = now + self.policy.penalty
        self._penalised[key] = until
        return PenaltyStarted(scope=self.scope, key=key, failures=entry.failures, until=until)

    def update(self, policy: LockoutPolicy) -> None:
        """A reload: new thresholds; counts and penalties running keep going."""
        self.policy = policy

    def _in_penalty(self, key: str, now: float) -> bool:
        # Expire from the front: ends follow starts while the penalty stays the same; after a
        # reload changed it, a later entry may outlive an earlier one by the difference.
        while self._penalised:
            first, ends = next(iter(self._penalised.items()))
            if ends > now:
                break
            del self._penalised[first]
        return self._penalised.get(key, now) > now

    def _entry(self, key: str, now: float) -> _Entry | None:
        entry = self._counting.get(key)
        if entry is not None and now - entry.last > self.policy.penalty:
            del self._counting[key]  # forgotten: quiet for a whole penalty
            return None
        return entry

    def _forget_quiet(self, now: float) -> None:
        while self._counting:  # least recently failed first
            first, entry = next(iter(self._counting.items()))
            if now - entry.last <= self.policy.penalty:
                return
            del self._counting[first]

    def _make_room(self, table: OrderedDict[str, _Entry] | OrderedDict[str, float]) -> None:
        while len(table) >= self.policy.max_keys:
            table.popitem(last=False)
            self.evicted += 1


class Lockout:
    """Failures per source address and per username; see the module docstring.

    Args:
        policy: the thresholds (the same for both scopes).
    """

    def __init__(self, policy: LockoutPolicy | None = None) -> None:
        self.policy = policy or LockoutPolicy()
        self._sources = FailureCounter(SOURCE, self.policy)
        self._usernames = FailureCounter(USERNAME, self.policy)
        self._trusted: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._counters = _Counters()

    def update(self, policy: LockoutPolicy) -> None:
        """A reload: new thresholds; counts, penalties and trusted sources carry over."""
        self.policy = policy
        self._sources.update(policy)
        self._usernames.update(policy)

    def check_source(self, source: str, now: float) -> Standing:
        """The standing of ``source`` at ``now``; a refusal is counted."""
        return self._counted(self._sources.standing(source, now), SOURCE)

    def check_username(self, username: str, source: str, now: float) -> Standing:
        """The standing of ``username`` for a request from ``source`` at ``now``.

        A source trusted for ``username`` is neither held nor refused for the username's
        failures. A refusal is counted.
        """
        if (username, source) in self._trusted:
            return CLEAR
        return self._counted(self._usernames.standing(username, now), USERNAME)

    def failed(self, source: str, username: str | None, now: float) -> list[PenaltyStarted]:
        """Count a failed authentication of ``username`` (None: none named) from ``source``.

        Returns:
            The penalties it starts: of the source, of the username, both or none.
        """
        self._counters.failures += 1
        started = [self._sources.fail(source, now)]
        if username is not None:
            started.append(self._usernames.fail(username, now))
        for penalty in (p for p in started if p is not None):
            penalties = self._counters.penalties
            penalties[penalty.scope] = penalties.get(penalty.scope, 0) + 1
        return [penalty for penalty in started if penalty is not None]

    def succeeded(self, source: str, username: str) -> None:
        """``source`` authenticated as ``username``: trust the pair (it forgives nothing)."""
        pair = (username, source)
        if pair in self._trusted:
            self._trusted.move_to_end(pair)
            return
        while len(self._trusted) >= self.policy.max_keys:
            self._trusted.popitem(last=False)
        self._trusted[pair] = None

    def statistics(self) -> LockoutStatistics:
        """The counters, and how many keys of each scope are tracked now."""
        counters = self._counters
        return LockoutStatistics(
            failures=counters.failures,
            penalties=dict(counters.penalties),
            refused=dict(counters.refused),
            tracked={SOURCE: len(self._sources), USERNAME: len(self._usernames)},
            evicted=self._sources.evicted + self._usernames.evicted,
        )

    def _counted(self, standing: Standing, scope: str) -> Standing:
        if standing.refused:
            refused = self._counters.refused
            refused[scope] = refused.get(scope, 0) + 1
        return standing
