"""Password-guessing limits: failures per source and username, held answers, penalties."""

from __future__ import annotations

import pytest

from callserver.policy.lockout import (
    FailureCounter,
    Lockout,
    LockoutPolicy,
    PenaltyStarted,
    Standing,
)

POLICY = LockoutPolicy(slow_after=2, refuse_after=4, penalty=100.0, delay=1.5, max_keys=50)
SOURCE = "192.0.2.7"


def test_answers_are_held_after_slow_after_and_refused_after_refuse_after() -> None:
    """Two failures: held; the fourth starts the penalty, once; then every request is refused."""
    lockout = Lockout(POLICY)
    standings, started = [], []
    for n in range(6):
        standings.append(lockout.check_source(SOURCE, float(n)))
        started += lockout.failed(SOURCE, "branch7", float(n))
    held, refused = Standing(delay=1.5), Standing(refused=True, delay=1.5)
    assert standings == [Standing(), Standing(), held, held, refused, refused]
    assert started == [
        PenaltyStarted(scope="source", key=SOURCE, failures=4, until=103.0),
        PenaltyStarted(scope="username", key="branch7", failures=4, until=103.0),
    ]
    stats = lockout.statistics()
    assert (stats.failures, stats.penalties) == (6, {"source": 1, "username": 1})
    assert stats.refused == {"source": 2}


def test_penalty_ends_after_its_time_with_a_clean_slate() -> None:
    """At the penalty's end the key is free again and needs refuse_after failures anew."""
    counter = FailureCounter("source", POLICY)
    for n in range(4):
        counter.fail(SOURCE, float(n))
    assert counter.standing(SOURCE, 102.9).refused
    assert counter.standing(SOURCE, 103.0) == Standing()
    assert [counter.fail(SOURCE, 103.0 + n) for n in range(3)] == [None] * 3
    assert counter.fail(SOURCE, 106.0) == PenaltyStarted(
        scope="source", key=SOURCE, failures=4, until=206.0
    )


def test_failures_are_forgotten_a_penalty_after_the_last_one() -> None:
    """A quiet spell as long as the penalty forgets the count; shorter gaps keep adding up."""
    counter = FailureCounter("source", POLICY)
    for now in (0.0, 90.0, 180.0):  # each within 100 s of the one before
        counter.fail(SOURCE, now)
    assert counter.standing(SOURCE, 180.0) == Standing(delay=1.5)
    assert counter.standing(SOURCE, 280.5) == Standing()
    assert counter.fail(SOURCE, 280.5) is None
    assert counter.standing(SOURCE, 280.5) == Standing()  # one failure, not four


def test_refused_requests_are_not_counted_as_failures() -> None:
    """A failure reported for a key in its penalty does not lengthen or restart it."""
    counter = FailureCounter("source", POLICY)
    for n in range(4):
        counter.fail(SOURCE, float(n))
    assert counter.fail(SOURCE, 50.0) is None
    assert counter.standing(SOURCE, 103.0) == Standing()


def test_memory_is_bounded_and_a_spray_of_new_keys_frees_no_penalty() -> None:
    """Past max_keys the least recently failed keys go; keys in a penalty stay."""
    counter = FailureCounter("source", POLICY)
    for _ in range(4):
        counter.fail(SOURCE, 0.0)
    for n in range(500):
        counter.fail(f"198.51.{n // 250}.{n % 250}", 1.0)
    assert len(counter) == POLICY.max_keys + 1
    assert counter.evicted == 500 - POLICY.max_keys
    assert counter.standing(SOURCE, 1.0).refused


def test_penalties_are_bounded_too() -> None:
    """More keys in a penalty than max_keys: the soonest to end is let go first."""
    counter = FailureCounter("username", LockoutPolicy(slow_after=1, refuse_after=1, max_keys=3))
    for n in range(4):
        assert counter.fail(f"user{n}", float(n)) is not None
    assert len(counter) == 3
    assert not counter.standing("user0", 4.0).refused
    assert all(counter.standing(f"user{n}", 4.0).refused for n in (1, 2, 3))


def test_a_trusted_source_is_not_locked_out_by_its_usernames_failures() -> None:
    """Failures elsewhere lock a username, except for the source that authenticated as it."""
    lockout = Lockout(POLICY)
    lockout.succeeded("198.51.100.10", "branch7")
    for n in range(4):
        lockout.failed(f"203.0.113.{n}", "branch7", float(n))
    assert lockout.check_username("branch7", "203.0.113.99", 5.0).refused
    assert lockout.check_username("branch7", "198.51.100.10", 5.0) == Standing()
    assert lockout.statistics().refused == {"username": 1}


def test_a_success_forgives_no_failures() -> None:
    """A right password from the same source leaves its failures standing."""
    lockout = Lockout(POLICY)
    for n in range(3):
        lockout.failed(SOURCE, "branch7", float(n))
    lockout.succeeded(SOURCE, "branch7")
    assert lockout.failed(SOURCE, "other", 4.0)[0].key == SOURCE


def test_trusted_pairs_are_bounded() -> None:
    """Only the most recent max_keys trusted pairs are kept."""
    lockout = Lockout(LockoutPolicy(slow_after=1, refuse_after=1, max_keys=2))
    for n in range(3):
        lockout.succeeded(f"192.0.2.{n}", "branch7")
    lockout.failed("203.0.113.1", "branch7", 0.0)
    refused = [lockout.check_username("branch7", f"192.0.2.{n}", 1.0).refused for n in range(3)]
    assert refused == [True, False, False]


def test_update_keeps_counts_and_penalties() -> None:
    """A reload with new thresholds keeps the failures counted so far."""
    lockout = Lockout(POLICY)
    for n in range(3):
        lockout.failed(SOURCE, None, float(n))
    lockout.update(LockoutPolicy(slow_after=1, refuse_after=3, penalty=10.0))
    assert lockout.check_source(SOURCE, 3.0) == Standing(delay=2.0)
    assert [p.scope for p in lockout.failed(SOURCE, None, 3.0)] == ["source"]
    assert lockout.check_source(SOURCE, 12.9).refused


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"slow_after": 0}, "at least 1"),
        ({"slow_after": 5, "refuse_after": 4}, "more than refuse_after"),
        ({"delay": -1.0}, "delay"),
        ({"penalty": 0.0}, "penalty"),
        ({"max_keys": 0}, "max_keys"),
    ],
)
def test_bad_policies_are_refused(values: dict[str, float], message: str) -> None:
    """Each impossible threshold raises ValueError naming it."""
    with pytest.raises(ValueError, match=message):
        LockoutPolicy(**values)  # type: ignore[arg-type]
