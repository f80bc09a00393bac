"""Digest nonces: stateless freshness checks and bounded replay memory (RFC 7616 §3.3, §5.5)."""

from __future__ import annotations

import base64
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.sip.nonces import Nonces, NonceStatus

SECRET = b"k" * 32


def nonces(lifetime: float = 300.0, **kwargs: int) -> Nonces:
    return Nonces(lifetime, secret=SECRET, **kwargs)


def test_fresh_until_the_lifetime_then_stale() -> None:
    """A nonce is fresh up to its lifetime after issue, stale after it."""
    issuer = nonces(300.0)
    nonce = issuer.issue(1000.0)
    assert issuer.check(nonce, 1000.0) is NonceStatus.FRESH
    assert issuer.check(nonce, 1300.0) is NonceStatus.FRESH
    assert issuer.check(nonce, 1300.5) is NonceStatus.STALE


def test_nonces_are_unique_and_token_safe() -> None:
    """Two nonces issued at the same time differ and use only URL-safe base64 characters."""
    issuer = nonces()
    first, second = issuer.issue(5.0), issuer.issue(5.0)
    assert first != second
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert set(first) <= allowed


def test_another_secret_or_garbage_is_invalid() -> None:
    """A nonce of another process (secret), garbage, or one from the future is invalid."""
    nonce = nonces().issue(10.0)
    assert Nonces(300.0, secret=b"x" * 32).check(nonce, 10.0) is NonceStatus.INVALID
    issuer = nonces()
    for text in ("", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "!!!", nonce[:-4]):
        assert issuer.check(text, 10.0) is NonceStatus.INVALID
    assert issuer.check(nonce, 9.0) is NonceStatus.INVALID


def test_tampered_issue_time_is_invalid() -> None:
    """Rewriting the issue time to make an old nonce look fresh breaks its MAC."""
    issuer = nonces(300.0)
    nonce = issuer.issue(0.0)
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)))
    raw[:8] = struct.pack(">d", 1000.0)
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert issuer.check(nonce, 1000.0) is NonceStatus.STALE
    assert issuer.check(forged, 1000.0) is NonceStatus.INVALID


@given(st.binary(min_size=1, max_size=80), st.integers(0, 55))
def test_any_bit_flip_is_invalid(noise: bytes, position: int) -> None:
    """XOR-ing any byte of a nonce with non-zero noise makes it invalid."""
    issuer = nonces()
    nonce = issuer.issue(1.0)
    raw = bytearray(base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4)))
    flip = noise[0] or 1
    raw[position] ^= flip
    changed = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    assert issuer.check(changed, 1.0) is NonceStatus.INVALID


def test_nonce_count_must_increase() -> None:
    """With qop, each use needs a larger nc than the last; equal or smaller is a replay."""
    issuer = nonces()
    nonce = issuer.issue(0.0)
    assert issuer.accept(nonce, "00000001", 1.0)
    assert not issuer.accept(nonce, "00000001", 2.0)
    assert issuer.accept(nonce, "00000003", 3.0)
    assert not issuer.accept(nonce, "00000002", 4.0)
    assert issuer.statistics().replays == 2


def test_without_qop_a_nonce_is_single_use() -> None:
    """A response without qop (no nc) may use its nonce once, and then no nc is accepted."""
    issuer = nonces()
    nonce = issuer.issue(0.0)
    assert issuer.accept(nonce, None, 1.0)
    assert not issuer.accept(nonce, None, 2.0)
    assert not issuer.accept(nonce, "ffffffff", 3.0)
    counted = issuer.issue(0.0)
    assert issuer.accept(counted, "00000001", 1.0)
    assert not issuer.accept(counted, None, 2.0)


@pytest.mark.parametrize("nc", ["00000000", "1", "0000000g", "000000001"])
def test_malformed_nonce_count_is_refused(nc: str) -> None:
    """An nc that is not 8 hex digits from 00000001 is never accepted."""
    issuer = nonces()
    assert not issuer.accept(issuer.issue(0.0), nc, 1.0)


def test_accept_refuses_invalid_and_stale_nonces() -> None:
    """accept never records a nonce that is not ours or has expired."""
    issuer = nonces(10.0)
    assert not issuer.accept("bogus", "00000001", 1.0)
    assert not issuer.accept(issuer.issue(0.0), "00000001", 11.0)
    assert issuer.statistics().remembered == 0


def test_expired_entries_are_dropped() -> None:
    """Remembered nonces are forgotten once expired; their replays are still refused."""
    issuer = nonces(10.0)
    old = issuer.issue(0.0)
    assert issuer.accept(old, "00000001", 1.0)
    young = issuer.issue(15.0)
    assert issuer.accept(young, "00000001", 15.0)
    assert issuer.statistics().remembered == 1
    issuer.set_lifetime(100.0)  # a reload that makes the old nonce fresh again
    assert issuer.check(old, 20.0) is NonceStatus.FRESH
    assert not issuer.accept(old, "00000002", 20.0)


def test_the_cap_evicts_the_oldest_and_evicted_nonces_cannot_be_replayed() -> None:
    """Past max_entries the oldest entry goes; a nonce it held is refused, newer ones work."""
    issuer = nonces(max_entries=2)
    first, second, third = (issuer.issue(float(t)) for t in (1, 2, 3))
    for nonce in (first, second, third):
        assert issuer.accept(nonce, "00000001", 4.0)
    stats = issuer.statistics()
    assert (stats.remembered, stats.evicted) == (2, 1)
    assert not issuer.accept(first, "00000002", 5.0)  # forgotten: refused, never replayable
    assert issuer.accept(third, "00000002", 5.0)
    assert issuer.accept(issuer.issue(6.0), "00000001", 6.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(1, 6), st.floats(0, 400)),
        max_size=60,
    ),
    st.integers(1, 5),
)
def test_memory_is_bounded_and_no_replay_is_ever_accepted(
    uses: list[tuple[int, int, float]], cap: int
) -> None:
    """For any sequence of uses, memory stays under the cap and accepted counts only rise."""
    issuer = nonces(100.0, max_entries=cap)
    pool = [issuer.issue(float(i * 10)) for i in range(8)]
    highest: dict[int, int] = {}
    now = 80.0
    for index, count, step in uses:
        now += step / 100
        if issuer.accept(pool[index], f"{count:08x}", now):
            assert count > highest.get(index, 0)
            highest[index] = count
        assert issuer.statistics().remembered <= cap


def test_bad_arguments_are_refused() -> None:
    """A lifetime that is not positive or a cap below one is a ValueError."""
    with pytest.raises(ValueError, match="lifetime must be positive"):
        Nonces(0.0)
    with pytest.raises(ValueError, match="max_entries"):
        Nonces(1.0, max_entries=0)
    with pytest.raises(ValueError, match="lifetime must be positive"):
        Nonces(1.0).set_lifetime(-1.0)
