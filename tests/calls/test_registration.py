"""REGISTER through the call manager: answers, the store written off the loop, expiry on time."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from callserver.calls.registration import STORE_INTERVAL, Registration, account_of
from callserver.config.centrex import Subscriber
from callserver.config.settings import Settings
from callserver.registrar.binding import Changed
from callserver.registrar.store import SqliteBindingStore
from callserver.sip.events import RequestReceived, ResponseReceived, TransactionTimedOut
from callserver.sip.message import Request, Response
from callserver.sip.parser import parse_message
from callserver.sip.peer import Peer
from tests.calls.fakes import request
from tests.calls.harness import Harness
from tests.registrar.support import (
    ACCOUNTS,
    AOR,
    TCP,
    UDP,
    authorization,
    register,
    registered,
    registrar,
)

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
        wake=lambda: setattr(harness, "woken", harness.woken + 1),
    )
    harness.manager.registration = registration
    return harness, registration


def deliver(harness: Harness, request: Request, peer: Peer, key: str) -> int:
    """Hand a REGISTER to the manager; the status it was answered with."""
    harness.deliver(RequestReceived(request=request, peer=peer, key=key, rtime=harness.loop.now))
    return harness.endpoint.responses[-1].status


def register_phone(
    harness: Harness, peer: Peer, expires: str = "600", path: tuple[str, ...] = ()
) -> int:
    """REGISTER (through the proxies of ``path``), its 401, the REGISTER again with
    credentials; the final status."""
    extra = [("Expires", expires), *(("Path", hop) for hop in path)]
    assert deliver(harness, register(extra=extra), peer, "k1") == 401
    creds = authorization(harness.endpoint.responses[-1].headers)
    return deliver(harness, register(cseq=2, extra=[*extra, creds]), peer, "k2")


async def test_a_register_is_answered_and_its_binding_stored(tmp_path: Path) -> None:
    """The manager routes REGISTER to the registrar; the binding reaches registrar.sqlite."""
    harness, registration = wired(tmp_path)
    assert register_phone(harness, UDP) == 200
    assert harness.endpoint.responses[-1].headers[0][1].endswith("expires=600")
    await registration.close()  # writes what it gathered
    reopened = SqliteBindingStore(tmp_path / "registrar.sqlite", wall=lambda: WALL)
    assert [b.aor for b in reopened.load(harness.loop.now)] == [AOR]
    reopened.close()


class CountingStore(SqliteBindingStore):
    """The SQLite store, counting its transactions and the changes in each."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, wall=lambda: WALL)
        self.batches: list[int] = []

    def apply(self, changes: Sequence[Changed], now: float) -> None:
        """Count, then write."""
        self.batches.append(len(changes))
        super().apply(changes, now)


async def test_changes_gathered_over_the_store_interval_are_written_together(
    tmp_path: Path,
) -> None:
    """A registration and its refresh within STORE_INTERVAL reach the store in one transaction,
    once the interval has passed."""
    harness, registration = wired(tmp_path)
    store = CountingStore(tmp_path / "counted.sqlite")
    registration.store = store
    register_phone(harness, UDP)
    harness.loop.advance(STORE_INTERVAL / 2)
    assert deliver(harness, register(cseq=3), UDP, "k3") == 401
    creds = authorization(harness.endpoint.responses[-1].headers)
    assert deliver(harness, register(cseq=4, extra=[creds]), UDP, "k4") == 200
    assert store.batches == []
    harness.loop.advance(STORE_INTERVAL)
    assert registration._written is not None
    await asyncio.wrap_future(registration._written)
    assert store.batches == [2]
    await registration.close()
    assert store.batches == [2]  # nothing was left to write


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


EDGE = "<sip:edge.example.net;lr>"


def qualifying(tmp_path: Path, interval: int = 30) -> tuple[Harness, Registration]:
    """The phone registered over UDP via EDGE, then a reload turns qualify on every ``interval``
    seconds."""
    harness, registration = wired(tmp_path)
    assert register_phone(harness, UDP, path=(EDGE,)) == 200
    settings = Settings(data_dir=tmp_path, registrar={"qualify": interval})
    registration.update(settings, harness.manager.admission.auth)
    return harness, registration


def answer(status: int) -> Response:
    """A response of the phone to our OPTIONS."""
    text = (
        f"SIP/2.0 {status} Whatever\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-q\r\n"
        "From: <sip:callserver@127.0.0.1:5060>;tag=q1\r\nTo: <sip:201@192.0.2.10:5062>;tag=p\r\n"
        "Call-ID: q@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Response)
    return message


async def test_qualify_sends_options_on_the_flow_with_the_path_as_route(tmp_path: Path) -> None:
    """Every interval the phone gets an OPTIONS to its contact, on its flow, routed by its Path."""
    harness, registration = qualifying(tmp_path)
    woken = harness.woken
    harness.loop.advance(29.0)
    assert harness.endpoint.uac.requests == []
    harness.loop.advance(1.0)
    (sent,) = harness.endpoint.uac.requests
    assert (sent.method, sent.uri, sent.peer) == ("OPTIONS", "sip:201@192.0.2.10:5062", UDP)
    assert ("Route", EDGE) in sent.headers and harness.woken == woken + 1
    harness.deliver(ResponseReceived(response=answer(200), peer=UDP, key=sent.handle, rtime=0.0))
    harness.loop.advance(30.0)
    assert len(harness.endpoint.uac.requests) == 2
    await registration.close()


async def test_timer_f_makes_the_phone_unusable_and_a_later_answer_brings_it_back(
    tmp_path: Path,
) -> None:
    """An OPTIONS that timed out takes the binding out of lookups; even a 404 to the next one,
    after a 100, restores it."""
    harness, registration = qualifying(tmp_path)
    harness.loop.advance(30.0)
    first = harness.endpoint.uac.requests[-1]
    options = request("OPTIONS", "q-1")
    harness.deliver(TransactionTimedOut(key=first.handle, request=options))
    assert registration.registrar.lookup(AOR, harness.loop.now) == []
    harness.loop.advance(30.0)
    second = harness.endpoint.uac.requests[-1]
    assert second.handle != first.handle
    harness.deliver(ResponseReceived(response=answer(100), peer=UDP, key=second.handle, rtime=0))
    assert registration.registrar.lookup(AOR, harness.loop.now) == []
    harness.deliver(ResponseReceived(response=answer(404), peer=UDP, key=second.handle, rtime=0))
    assert len(registration.registrar.lookup(AOR, harness.loop.now)) == 1
    await registration.close()


async def test_events_of_other_transactions_are_left_to_the_calls(tmp_path: Path) -> None:
    """A response or timeout whose key is no OPTIONS of ours is not the registration's."""
    harness, registration = qualifying(tmp_path)
    stranger = ResponseReceived(response=answer(200), peer=UDP, key="bye-1", rtime=0.0)
    assert not registration.handle_event(stranger, harness.loop.now)
    timeout = TransactionTimedOut(key="bye-1", request=request("BYE", "c-1"))
    assert not registration.handle_event(timeout, harness.loop.now)
    await registration.close()


async def test_restored_bindings_are_qualified_and_expire_on_time_from_the_start(
    tmp_path: Path,
) -> None:
    """Registration.open arms its timer at once: a binding back from the store gets its OPTIONS
    an interval after the start and is removed when its time runs out, with no REGISTER."""
    harness = Harness.create(tmp_path)
    answer = registered(registrar(), 1.0, extra=[("Expires", "60")])
    store = SqliteBindingStore(tmp_path / "registrar.sqlite")
    store.apply(answer.changes, 1.0)
    store.close()
    settings = Settings(data_dir=tmp_path, registrar={"qualify": 30})
    registration = Registration.open(
        settings,
        ACCOUNTS.get,
        auth=harness.manager.admission.auth,
        endpoint=harness.endpoint,  # type: ignore[arg-type]
        screening=harness.manager.screening,
        loop=harness.loop,  # type: ignore[arg-type]
        wake=lambda: None,
    )
    assert len(registration.registrar.lookup(AOR, harness.loop.now)) == 1
    harness.loop.advance(30.0)
    assert [r.method for r in harness.endpoint.uac.requests] == ["OPTIONS"]
    harness.loop.advance(31.0)
    assert registration.registrar.handle_timer(harness.loop.now) == []  # the timer did it
    assert registration.registrar.lookup(AOR, harness.loop.now) == []
    await registration.close()
