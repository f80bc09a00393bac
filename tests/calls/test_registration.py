"""REGISTER through the call manager: answers, the store written off the loop, expiry on time."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from callserver.calls.registration import Registration, account_of
from callserver.config.centrex import Subscriber
from callserver.config.settings import Settings
from callserver.registrar.store import SqliteBindingStore
from callserver.sip.events import RequestReceived
from callserver.sip.message import Request
from callserver.sip.peer import Peer
from tests.calls.harness import Harness
from tests.registrar.support import AOR, TCP, UDP, authorization, register, registrar

WALL = 1_900_000_000.0


def wired(tmp_path: Path) -> tuple[Harness, Registration]:
    """A harness whose manager hands REGISTERs to a registrar of the test accounts."""
    harness = Harness.create(tmp_path)
    store = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=lambda: WALL)
    registration = Registration(
        registrar(),
        store,
        endpoint=harness.endpoint,  # type: ignore[arg-type]
        screening=harness.manager.screening,
        loop=harness.loop,  # type: ignore[arg-type]
    )
    harness.manager.registration = registration
    return harness, registration


def deliver(harness: Harness, request: Request, peer: Peer, key: str) -> int:
    """Hand a REGISTER to the manager; the status it was answered with."""
    harness.deliver(RequestReceived(request=request, peer=peer, key=key, rtime=harness.loop.now))
    return harness.endpoint.responses[-1].status


def register_phone(harness: Harness, peer: Peer, expires: str = "600") -> int:
    """REGISTER, its 401, the REGISTER again with credentials; the final status."""
    extra = [("Expires", expires)]
    assert deliver(harness, register(extra=extra), peer, "k1") == 401
    creds = authorization(harness.endpoint.responses[-1].headers)
    return deliver(harness, register(cseq=2, extra=[*extra, creds]), peer, "k2")


async def test_a_register_is_answered_and_its_binding_stored(tmp_path: Path) -> None:
    """The manager routes REGISTER to the registrar; the binding reaches registrar.sqlite."""
    harness, registration = wired(tmp_path)
    assert register_phone(harness, UDP) == 200
    assert harness.endpoint.responses[-1].headers[0][1].endswith("expires=600")
    await asyncio.sleep(0)  # the turn of the loop that gathers the changes
    await registration.close()
    reopened = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=lambda: WALL)
    assert [b.aor for b in reopened.load(harness.loop.now)] == [AOR]
    reopened.close()


async def test_a_binding_expires_on_time_and_leaves_the_store(tmp_path: Path) -> None:
    """The expiry timer removes the binding when it is due, and the store forgets it."""
    harness, registration = wired(tmp_path)
    register_phone(harness, UDP, expires="60")
    harness.loop.advance(59.0)
    assert registration.registrar.lookup(AOR, harness.loop.now) != []
    harness.loop.advance(1.0)
    assert registration.registrar.lookup(AOR, harness.loop.now) == []
    await asyncio.sleep(0)
    await registration.close()
    reopened = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=lambda: WALL)
    assert reopened.load(harness.loop.now) == []
    reopened.close()


async def test_a_closed_connection_makes_its_binding_unusable(tmp_path: Path) -> None:
    """stream_closed on the REGISTER's TCP connection takes its binding out of lookups."""
    harness, registration = wired(tmp_path)
    register_phone(harness, TCP)
    registration.stream_closed(Peer("tcp", "192.0.2.11", 40312, conn_id=99), harness.loop.now)
    assert len(registration.registrar.lookup(AOR, harness.loop.now)) == 1
    registration.stream_closed(TCP, harness.loop.now)
    assert registration.registrar.lookup(AOR, harness.loop.now) == []
    await registration.close()


async def test_without_a_registrar_register_gets_405(tmp_path: Path) -> None:
    """A manager with no registration answers REGISTER 405 instead of 200."""
    harness = Harness.create(tmp_path)
    assert deliver(harness, register(), UDP, "k1") == 405


async def test_a_reload_brings_new_expiry_limits_and_keeps_the_bindings(tmp_path: Path) -> None:
    """update() sets the new registrar section; the bindings made before stay."""
    harness, registration = wired(tmp_path)
    register_phone(harness, UDP)
    settings = Settings(data_dir=tmp_path, registrar={"min_expires": 900, "default_expires": 900})
    registration.update(settings, harness.manager.admission.auth)
    assert registration.registrar.expiry.minimum == 900
    assert len(registration.registrar.lookup(AOR, harness.loop.now)) == 1
    assert deliver(harness, register(cseq=5, extra=[("Expires", "600")]), UDP, "k3") == 423
    await registration.close()


def test_account_of_a_subscriber_takes_its_number_as_aor_and_the_default_max_contacts() -> None:
    """A centrex.yaml phone becomes the registrar's account; no max_contacts means the default."""
    phone = Subscriber(
        number="+38733100201",
        group="acme-office",
        extension="201",
        name=None,
        username="38733100201",
        realm="callserver",
        ha1=MappingProxyType({"MD5": "0" * 32, "SHA-256": "1" * 64}),
        barring=(),
        clir=False,
        max_contacts=None,
    )
    account = account_of(phone, 5)
    assert (account.aor, account.username, account.realm) == (AOR, "38733100201", "callserver")
    assert account.ha1 == {"MD5": "0" * 32, "SHA-256": "1" * 64}
    assert account.max_contacts == 5
    assert account_of(replace(phone, max_contacts=2), 5).max_contacts == 2
