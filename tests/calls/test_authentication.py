"""Digest authentication of INVITEs by trunk credentials (RFC 3261 §22, RFC 7616, RFC 8760)."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from structlog.testing import capture_logs

from callserver.calls.authentication import (
    Authenticated,
    AuthFailed,
    Blocked,
    Challenged,
    DigestAuthenticator,
)
from callserver.config.trunks import TrunksFile, TrunkTable
from callserver.sip.auth import Challenge, build_authorization, parse_challenge
from callserver.sip.message import Headers, Request
from callserver.sip.nonces import Nonces
from callserver.sip.uri import parse_uri

URI = "sip:38733123@callserver.example.net"
SOURCE = ("192.0.2.50", 5060)
BRANCH_TRUNK = {"digest": {"username": "branch7", "password": "s3cret"}}
HQ_TRUNK = {"match": ["198.51.100.0/24"], "digest": {"username": "hq", "password": "hq-pass"}}


def table(**digest: object) -> TrunkTable:
    """Two digest trunks, one of them bound to 198.51.100.0/24, with ``digest`` settings."""
    data = {"digest": digest, "trunks": {"branch": BRANCH_TRUNK, "hq": HQ_TRUNK}}
    return TrunkTable(TrunksFile.model_validate(data))


def authenticator(trunks: TrunkTable, lifetime: float = 300.0) -> DigestAuthenticator:
    return DigestAuthenticator(trunks.config.digest, nonces=Nonces(lifetime, secret=b"s" * 32))


def invite(extra: Iterable[tuple[str, str]] = (), uri: str = URI, cseq: int = 1) -> Request:
    """An INVITE from a trunk to 38733123 with ``extra`` header fields."""
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.50:5060;branch=z9hG4bK-auth1"),
            ("Max-Forwards", "70"),
            ("From", "<sip:0611234567@192.0.2.50>;tag=ft-1"),
            ("To", f"<{URI}>"),
            ("Call-ID", "auth-1@192.0.2.50"),
            ("CSeq", f"{cseq} INVITE"),
            *extra,
        ]
    )
    return Request("INVITE", parse_uri(uri), headers, b"v=0\r\n")


def offered(challenged: Challenged, algorithm: str) -> Challenge:
    """The challenge for ``algorithm`` among the challenge's header fields."""
    for _, value in challenged.headers:
        challenge = parse_challenge(value)
        if challenge.algorithm == algorithm:
            return challenge
    raise AssertionError(f"no {algorithm} challenge in {challenged.headers}")


def answer(
    challenge: Challenge,
    *,
    username: str = "branch7",
    password: str = "s3cret",
    field: str = "Proxy-Authorization",
    uri: str = URI,
    nc: int = 1,
) -> Request:
    """The INVITE sent again with credentials answering ``challenge``."""
    value = build_authorization(
        challenge,
        method="INVITE",
        uri=uri,
        username=username,
        password=password,
        cnonce="0a4f113b",
        nonce_count=nc,
    )
    return invite([(field, value)], cseq=2)


def first_challenge(auth: DigestAuthenticator, trunks: TrunkTable, now: float) -> Challenged:
    result = auth.authenticate(invite(), *SOURCE, trunks, now)
    assert isinstance(result, Challenged)
    return result


def test_no_credentials_get_407_with_one_challenge_per_algorithm_in_order() -> None:
    """The 407 offers SHA-256 then MD5 (RFC 8760 §2.4), qop auth, one nonce and an opaque."""
    trunks = table()
    result = first_challenge(authenticator(trunks), trunks, 0.0)
    assert result.status == 407 and not result.stale
    assert [name for name, _ in result.headers] == ["Proxy-Authenticate"] * 2
    challenges = [parse_challenge(value) for _, value in result.headers]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert {(c.realm, c.qop, c.nonce, c.opaque) for c in challenges} == {
        ("callserver", ("auth",), challenges[0].nonce, challenges[0].opaque)
    }
    assert challenges[0].opaque


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_valid_credentials_identify_the_trunk(algorithm: str) -> None:
    """A correct SHA-256 or MD5 response identifies the trunk the user name belongs to."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), algorithm)
    result = auth.authenticate(answer(challenge), *SOURCE, trunks, 1.0)
    assert result == Authenticated(trunk="branch", username="branch7")


def test_credentials_are_read_from_either_header() -> None:
    """A 407 answered with Authorization (not Proxy-Authorization) is accepted too."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    request = answer(challenge, field="Authorization")
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 1.0), Authenticated)


@pytest.mark.parametrize(
    ("username", "password", "cause"),
    [("branch7", "guess", "wrong_password"), ("nobody", "s3cret", "unknown_user")],
)
def test_wrong_password_and_unknown_user_get_the_same_403(
    username: str, password: str, cause: str
) -> None:
    """Both get 403 and are logged as call.auth_failed with user name and source address."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    request = answer(challenge, username=username, password=password)
    with capture_logs() as logs:
        result = auth.authenticate(request, *SOURCE, trunks, 1.0)
    assert isinstance(result, AuthFailed)
    assert (result.status, result.cause, result.username) == (403, cause, username)
    failed = [entry for entry in logs if entry["event"] == "call.auth_failed"]
    assert [(e["username"], e["source"], e["cause"]) for e in failed] == [
        (username, SOURCE[0], cause)
    ]


def test_expired_nonce_with_a_right_response_is_rechallenged_stale() -> None:
    """After the lifetime a correct response gets a new challenge with stale=true."""
    trunks = table()
    auth = authenticator(trunks, lifetime=300.0)
    challenge = offered(first_challenge(auth, trunks, 0.0), "MD5")
    result = auth.authenticate(answer(challenge), *SOURCE, trunks, 301.0)
    assert isinstance(result, Challenged) and result.stale and result.status == 407
    renewed = offered(result, "MD5")
    assert renewed.stale and renewed.nonce != challenge.nonce
    again = auth.authenticate(answer(renewed), *SOURCE, trunks, 302.0)
    assert isinstance(again, Authenticated)


def test_expired_nonce_is_rechallenged_stale_whatever_the_password() -> None:
    """An expired nonce tells nothing: stale=true for a wrong password too, nothing counted."""
    trunks = table()
    auth = authenticator(trunks, lifetime=300.0)
    challenge = offered(first_challenge(auth, trunks, 0.0), "MD5")
    with capture_logs() as logs:
        right = auth.authenticate(answer(challenge), *SOURCE, trunks, 301.0)
        wrong = auth.authenticate(answer(challenge, password="nope", nc=2), *SOURCE, trunks, 301.0)
    assert isinstance(right, Challenged) and isinstance(wrong, Challenged)
    assert (right.status, right.stale) == (wrong.status, wrong.stale) == (407, True)
    assert not [e for e in logs if e["event"] == "call.auth_failed"]
    assert auth.lockout.statistics().failures == 0
    renewed = offered(wrong, "MD5")
    again = auth.authenticate(answer(renewed, password="nope"), *SOURCE, trunks, 302.0)
    assert isinstance(again, AuthFailed) and again.status == 403


def test_replayed_credentials_get_a_fresh_challenge_and_are_logged() -> None:
    """The same nonce and nc twice: the second is challenged afresh (not stale), logged."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    request = answer(challenge)
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 1.0), Authenticated)
    with capture_logs() as logs:
        replay = auth.authenticate(request, *SOURCE, trunks, 2.0)
    assert isinstance(replay, Challenged) and not replay.stale
    assert [e["username"] for e in logs if e["event"] == "call.auth_replay"] == ["branch7"]
    follow_up = auth.authenticate(answer(challenge, nc=2), *SOURCE, trunks, 3.0)
    assert isinstance(follow_up, Authenticated)


def test_uri_other_than_the_request_uri_is_refused() -> None:
    """Credentials computed for another URI get 400 (RFC 2617 §3.2.2.5), however right."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    request = answer(challenge, uri="sip:callserver.example.net")
    result = auth.authenticate(request, *SOURCE, trunks, 1.0)
    assert isinstance(result, AuthFailed)
    assert (result.status, result.cause) == (400, "uri_mismatch")


def test_match_and_digest_trunk_needs_both() -> None:
    """A trunk with match and digest refuses right credentials from outside its network."""
    trunks = table()
    auth = authenticator(trunks)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    outside = auth.authenticate(
        answer(challenge, username="hq", password="hq-pass"), *SOURCE, trunks, 1.0
    )
    assert isinstance(outside, AuthFailed)
    assert (outside.status, outside.cause, outside.trunk) == (403, "wrong_source", "hq")
    inside = auth.authenticate(
        answer(challenge, username="hq", password="hq-pass", nc=2),
        "198.51.100.7",
        5060,
        trunks,
        2.0,
    )
    assert inside == Authenticated(trunk="hq", username="hq")


def test_401_mode_uses_www_authenticate_and_authorization() -> None:
    """With digest.challenge 401 the challenge is WWW-Authenticate, answered by Authorization."""
    trunks = table(challenge=401, algorithms=["MD5"])
    auth = authenticator(trunks)
    result = first_challenge(auth, trunks, 0.0)
    assert result.status == 401
    assert [name for name, _ in result.headers] == ["WWW-Authenticate"]
    request = answer(offered(result, "MD5"), field="Authorization")
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 1.0), Authenticated)


def test_foreign_realm_unoffered_algorithm_and_unknown_nonce_are_challenged() -> None:
    """Credentials for another realm, an algorithm not offered, or a nonce not ours: challenge."""
    trunks = table(algorithms=["SHA-256"])
    auth = authenticator(trunks)
    ours = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    foreign = Challenge(realm="elsewhere", nonce=ours.nonce, algorithm="SHA-256", qop=("auth",))
    md5 = Challenge(realm="callserver", nonce=ours.nonce, algorithm="MD5", qop=("auth",))
    stranger = Challenge(realm="callserver", nonce="abc", algorithm="SHA-256", qop=("auth",))
    for challenge in (foreign, md5, stranger):
        result = auth.authenticate(answer(challenge), *SOURCE, trunks, 1.0)
        assert isinstance(result, Challenged) and not result.stale, challenge


def test_malformed_credentials_are_ignored() -> None:
    """A header that is not Digest credentials counts as none: the caller is challenged."""
    trunks = table()
    auth = authenticator(trunks)
    request = invite([("Proxy-Authorization", "Basic dXNlcjpwYXNz"), ("Authorization", "Digest")])
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 0.0), Challenged)


def test_response_without_qop_is_accepted_once() -> None:
    """An RFC 2069 response (no qop, no nc) may use its nonce only once."""
    trunks = table()
    auth = authenticator(trunks)
    ours = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    legacy = Challenge(realm=ours.realm, nonce=ours.nonce, algorithm="SHA-256")
    request = answer(legacy)
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 1.0), Authenticated)
    assert isinstance(auth.authenticate(request, *SOURCE, trunks, 2.0), Challenged)


def test_update_keeps_issued_nonces() -> None:
    """After a reload with a new lifetime, a challenge issued before it can still be answered."""
    trunks = table()
    auth = authenticator(trunks, lifetime=300.0)
    challenge = offered(first_challenge(auth, trunks, 0.0), "SHA-256")
    reloaded = table(nonce_lifetime=600)
    auth.update(reloaded.config.digest)
    result = auth.authenticate(answer(challenge), *SOURCE, reloaded, 500.0)
    assert isinstance(result, Authenticated)


def guarded(trunks: TrunkTable, **lockout: object) -> DigestAuthenticator:
    """An authenticator whose lockout settings are ``lockout`` (over the defaults)."""
    data = trunks.config.model_dump()
    data["digest"]["lockout"] = lockout
    settings = TrunksFile.model_validate(data).digest
    return DigestAuthenticator(settings, nonces=Nonces(300.0, secret=b"s" * 32))


def guesses(
    auth: DigestAuthenticator, trunks: TrunkTable, passwords: list[str], source: str = SOURCE[0]
) -> list[object]:
    """One challenge, then each password in turn with the next nonce count, from ``source``."""
    challenge = offered(first_challenge(auth, trunks, 0.0), "MD5")
    return [
        auth.authenticate(answer(challenge, password=word, nc=n), source, 5060, trunks, float(n))
        for n, word in enumerate(passwords, start=1)
    ]


def test_refuse_after_failures_blocks_the_source_and_logs_once() -> None:
    """After three wrong passwords the right one is not even read: no answer, one log line."""
    trunks = table()
    auth = guarded(trunks, slow_after=2, refuse_after=3, penalty=60)
    with capture_logs() as logs:
        results = guesses(auth, trunks, ["a", "b", "c", "s3cret", "s3cret"])
    assert [type(r).__name__ for r in results] == ["AuthFailed"] * 3 + ["Blocked"] * 2
    assert results[-1] == Blocked(status=None)
    started = [e for e in logs if e["event"] == "auth.penalty_started"]
    assert [(e["scope"], e["source"], e["username"], e["failures"]) for e in started] == [
        ("source", SOURCE[0], "branch7", 3),
        ("username", SOURCE[0], "branch7", 3),
    ]
    assert len([e for e in logs if e["event"] == "call.auth_failed"]) == 3


def test_penalty_answer_403_and_the_end_of_the_penalty() -> None:
    """With answer 403 a blocked source gets 403; after the penalty it is challenged again."""
    trunks = table()
    auth = guarded(trunks, slow_after=1, refuse_after=1, penalty=60, answer=403)
    assert isinstance(guesses(auth, trunks, ["a"])[0], AuthFailed)
    assert auth.authenticate(invite(), *SOURCE, trunks, 60.9) == Blocked(status=403)
    assert isinstance(auth.authenticate(invite(), *SOURCE, trunks, 61.0), Challenged)


def test_answers_are_held_after_slow_after_failures() -> None:
    """Past slow_after failures the challenge and the 403 carry the delay; before, none."""
    trunks = table()
    auth = guarded(trunks, slow_after=2, refuse_after=10, delay=1.5)
    results = guesses(auth, trunks, ["a", "b", "c"])
    assert [r.delay for r in results if isinstance(r, AuthFailed)] == [0.0, 0.0, 1.5]
    challenge = auth.authenticate(invite(), *SOURCE, trunks, 4.0)
    assert isinstance(challenge, Challenged) and challenge.delay == 1.5
    elsewhere = auth.authenticate(invite(), "198.51.100.7", 5060, trunks, 4.0)
    assert isinstance(elsewhere, Challenged) and elsewhere.delay == 0.0


def test_a_locked_username_gets_the_wrong_password_answer_except_from_its_trusted_source() -> None:
    """Guesses from many sources lock branch7: a right password from a new source gets the
    same 403 as a wrong one, unchecked; the source that authenticated before gets in."""
    trunks = table()
    auth = guarded(trunks, slow_after=5, refuse_after=5, penalty=600)
    trusted = "198.51.100.20"
    assert isinstance(guesses(auth, trunks, ["s3cret"], source=trusted)[0], Authenticated)
    for n in range(5):
        guesses(auth, trunks, ["wrong"], source=f"203.0.113.{n}")
    with capture_logs() as logs:
        (locked,) = guesses(auth, trunks, ["s3cret"], source="203.0.113.99")
        (wrong,) = guesses(auth, trunks, ["nope"], source="203.0.113.98")
    assert isinstance(locked, AuthFailed) and isinstance(wrong, AuthFailed)
    assert (locked.status, locked.trunk) == (wrong.status, wrong.trunk) == (403, "branch")
    causes = [e["cause"] for e in logs if e["event"] == "call.auth_failed"]
    assert causes == ["username_locked", "username_locked"]
    (owner,) = guesses(auth, trunks, ["s3cret"], source=trusted)
    assert owner == Authenticated(trunk="branch", username="branch7")
