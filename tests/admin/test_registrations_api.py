"""``/api/registrations`` of an in-process server, on a real port: phones registered with
their digest credentials, listed, scoped and unregistered."""

from __future__ import annotations

import asyncio
from pathlib import Path

from callserver.registrar.binding import Binding
from callserver.registrar.store import SqliteBindingStore
from tests.admin.provisioned import provisioned
from tests.admin.tokens import ACME, GLOBEX


async def test_registered_phones_are_listed_with_their_customer_and_agent(
    tmp_path: Path,
) -> None:
    """Two customers' phones register; the operator sees both with contact, expiry, agent."""
    async with provisioned(tmp_path) as api:
        assert api.register("+38733100201", "38733100201", "phone-201-secret").startswith(
            b"SIP/2.0 200"
        )
        assert api.register("+38733200201", "38733100203", "phone-203-secret", 5064).startswith(
            b"SIP/2.0 200"
        )
        status, body = await api.request("GET", "/api/registrations")
    assert status == 200
    acme, globex = body["registrations"]
    assert acme == {
        "aor": "+38733100201",
        "contact": "sip:38733100201@127.0.0.1:5062",
        "customer": "acme",
        "expires_in": 600,
        "user_agent": "Yealink T46U",
        "source": "127.0.0.1:5062",
        "transport": "udp",
        "state": "active",
        "q": None,
        "node": None,
    }
    assert (globex["aor"], globex["customer"]) == ("+38733200201", "globex")


async def test_a_customer_sees_its_own_phones_and_may_not_unregister(tmp_path: Path) -> None:
    """acme's token lists acme's binding alone, filters by ?aor=, and DELETE is 403 to it."""
    async with provisioned(tmp_path) as api:
        api.register("+38733100201", "38733100201", "phone-201-secret")
        api.register("+38733200201", "38733100203", "phone-203-secret", 5064)
        _, acme = await api.request("GET", "/api/registrations", ACME)
        _, other = await api.request("GET", "/api/registrations?aor=%2B38733100201", GLOBEX)
        refused = await api.request("DELETE", "/api/registrations/+38733100201", ACME)
        bad = await api.request("GET", "/api/registrations?customer=acme")
    assert [r["aor"] for r in acme["registrations"]] == ["+38733100201"]
    assert other["registrations"] == []
    assert refused[0] == 403 and "operator token" in refused[1]["error"]
    assert bad[0] == 400


async def test_unregistering_removes_the_bindings_from_lookups_and_the_store(
    tmp_path: Path,
) -> None:
    """DELETE answers the bindings removed; calls no longer find the phone, and the store
    (which kept its User-Agent) forgets it."""
    stored = tmp_path / "data" / "registrar.sqlite"
    async with provisioned(tmp_path) as api:
        api.register("+38733100201", "38733100201", "phone-201-secret")
        registration = api.server.calls.registration
        assert registration is not None
        await asyncio.sleep(0.3)  # the store's write interval is 0.1 s
        [kept] = _stored(stored)
        status, body = await api.request("DELETE", "/api/registrations/+38733100201")
        again = await api.request("DELETE", "/api/registrations/+38733100201")
        now = asyncio.get_running_loop().time()
        assert registration.lookup("+38733100201", now) == []
        _, listed = await api.request("GET", "/api/registrations")
    assert kept.user_agent == "Yealink T46U"
    assert status == 200
    assert [b["contact"] for b in body["unregistered"]] == ["sip:38733100201@127.0.0.1:5062"]
    assert again[0] == 404 and "no registration of +38733100201" in again[1]["error"]
    assert listed["registrations"] == []
    assert _stored(stored) == []


def _stored(path: Path) -> list[Binding]:
    """The bindings the registrar's database holds (read beside the server, as WAL allows)."""
    store = SqliteBindingStore(path)
    try:
        return store.load(0.0)
    finally:
        store.close()
