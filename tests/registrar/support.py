"""REGISTER requests, accounts and a registrar with a pinned nonce secret, for the tests."""

from __future__ import annotations

from collections.abc import Iterable

from callserver.policy.lockout import Lockout, LockoutPolicy
from callserver.registrar.accounts import Account
from callserver.registrar.contacts import ExpiryPolicy
from callserver.registrar.digest import RegisterDigest
from callserver.registrar.registrar import RegisterAnswer, Registrar, ThrottlePolicy
from callserver.sip.auth import build_authorization, parse_challenge, password_ha1
from callserver.sip.message import Headers, Request
from callserver.sip.nonces import Nonces
from callserver.sip.peer import Peer
from callserver.sip.uri import parse_uri

REALM = "centrex.example.net"
URI = "sip:centrex.example.net"
AOR = "+38733100201"
UDP = Peer("udp", "192.0.2.10", 5062)
TCP = Peer("tcp", "192.0.2.11", 40312, conn_id=7)


def account(
    aor: str = AOR, username: str = "201", password: str = "pw201", max_contacts: int = 3
) -> Account:
    """An account whose HA1 values are those of ``password``."""
    return Account(
        aor=aor,
        username=username,
        realm=REALM,
        ha1={alg: password_ha1(username, REALM, password, alg) for alg in ("MD5", "SHA-256")},
        max_contacts=max_contacts,
    )


ACCOUNTS = {a.username: a for a in (account(), account("+38733100202", "202", "pw202"))}


def registrar(
    expiry: ExpiryPolicy | None = None, lockout: Lockout | None = None, burst: float = 100.0
) -> Registrar:
    """A registrar over :data:`ACCOUNTS` with a known nonce secret."""
    digest = RegisterDigest(
        ACCOUNTS.get,
        realm=REALM,
        nonces=Nonces(300.0, secret=b"r" * 32),
        lockout=lockout or Lockout(LockoutPolicy()),
    )
    return Registrar(digest, expiry=expiry, throttle=ThrottlePolicy(rate=1.0, burst=burst))


def register(
    contacts: Iterable[str] = ("<sip:201@192.0.2.10:5062>",),
    *,
    to: str = f"<sip:{AOR}@{REALM}>",
    cseq: int = 1,
    call_id: str = "reg-1@192.0.2.10",
    extra: Iterable[tuple[str, str]] = (),
) -> Request:
    """A REGISTER of ``to`` with ``contacts`` and ``extra`` header fields."""
    headers = Headers(
        [
            ("Via", "SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-reg"),
            ("Max-Forwards", "70"),
            ("From", f"{to};tag=r1"),
            ("To", to),
            ("Call-ID", call_id),
            ("CSeq", f"{cseq} REGISTER"),
            *(("Contact", c) for c in contacts),
            *extra,
        ]
    )
    return Request("REGISTER", parse_uri(URI), headers)


def authorization(
    headers: tuple[tuple[str, str], ...],
    *,
    username: str = "201",
    password: str = "pw201",
    alg: str = "SHA-256",
    nc: int = 1,
    uri: str = URI,
) -> tuple[str, str]:
    """An Authorization header answering the ``alg`` challenge among a 401's ``headers``
    with credentials for ``uri`` (the Request-URI by default)."""
    for _, value in headers:
        challenge = parse_challenge(value)
        if challenge.algorithm == alg:
            value = build_authorization(
                challenge,
                method="REGISTER",
                uri=uri,
                username=username,
                password=password,
                cnonce="c0ffee",
                nonce_count=nc,
            )
            return ("Authorization", value)
    raise AssertionError(f"no {alg} challenge in {headers}")


def registered(
    reg: Registrar,
    now: float,
    contacts: Iterable[str] = ("<sip:201@192.0.2.10:5062>",),
    *,
    flow: Peer = UDP,
    cseq: int = 1,
    call_id: str = "reg-1@192.0.2.10",
    extra: Iterable[tuple[str, str]] = (),
    username: str = "201",
    password: str = "pw201",
    to: str = f"<sip:{AOR}@{REALM}>",
    source: str | None = None,
) -> RegisterAnswer:
    """The answer to a REGISTER sent again with credentials after its 401 (both from
    ``source`` behind a SIP edge when given)."""
    contacts, extra = tuple(contacts), tuple(extra)
    first = reg.register(
        register(contacts, cseq=cseq, call_id=call_id, extra=extra, to=to),
        flow,
        now,
        source=source,
    )
    assert first.status == 401, first
    creds = authorization(first.headers, username=username, password=password)
    request = register(contacts, cseq=cseq + 1, call_id=call_id, extra=(*extra, creds), to=to)
    return reg.register(request, flow, now, source=source)
