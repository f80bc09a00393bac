"""``/api/limits`` and ``/api/customers`` of an in-process server, on a real port."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from callserver.admin.pools import channel_pools
from tests.admin.provisioned import provisioned
from tests.admin.tokens import ACME, GLOBEX


def _pool(body: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    return next(p for p in body["pools"] if (p["kind"], p["name"]) == (kind, name))


async def test_the_operator_sees_every_pool_with_its_limits_and_owner(tmp_path: Path) -> None:
    """Trunks, customers, groups and limited numbers, each with its customer or none."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request("GET", "/api/limits")
    assert status == 200
    pools = {(p["kind"], p["name"]) for p in body["pools"]}
    assert pools == {
        ("customer", "acme"),
        ("customer", "globex"),
        ("group", "acme-office"),
        ("group", "globex-office"),
        ("number", "38733100299"),
        ("number", "38761999999"),
        ("trunk", "acme-pbx"),
        ("trunk", "carrier-in"),
        ("trunk", "globex-pbx"),
    }
    assert _pool(body, "trunk", "acme-pbx") == {
        "kind": "trunk",
        "name": "acme-pbx",
        "customer": "acme",
        "channels_in_use": 0,
        "channels": 2,
        "cps": 50.0,
    }
    assert _pool(body, "trunk", "carrier-in")["customer"] is None
    assert _pool(body, "number", "38733100299")["customer"] == "acme"
    assert _pool(body, "number", "38761999999")["customer"] is None
    assert _pool(body, "group", "acme-office")["channels"] == 4
    assert body["calls_in_progress"] == 0
    assert set(body["rejections"].values()) == {0}


async def test_a_call_holds_a_channel_in_its_pools_and_a_refusal_counts(tmp_path: Path) -> None:
    """Two calls fill the acme trunk's 2 channels; the third is refused and counted for acme."""
    async with provisioned(tmp_path) as api:
        assert (await api.call("limits-1")).startswith(b"SIP/2.0 200")
        assert (await api.call("limits-2")).startswith(b"SIP/2.0 200")
        assert (await api.call("limits-3")).startswith(b"SIP/2.0 503")
        _, operator = await api.request("GET", "/api/limits")
        _, acme = await api.request("GET", "/api/limits", ACME)
        _, globex = await api.request("GET", "/api/limits", GLOBEX)
    for body in (operator, acme):
        assert _pool(body, "trunk", "acme-pbx")["channels_in_use"] == 2
        assert _pool(body, "customer", "acme")["channels_in_use"] == 2
        assert body["calls_in_progress"] == 2
        assert body["rejections"]["channel_limit"] == 1
    assert globex["calls_in_progress"] == 0
    assert globex["rejections"]["channel_limit"] == 0


async def test_a_customer_token_sees_its_own_pools_only(tmp_path: Path) -> None:
    """acme's token gets acme's trunk, customer, group and number; no operator pool."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request("GET", "/api/limits", ACME)
    assert status == 200
    assert {(p["kind"], p["name"]) for p in body["pools"]} == {
        ("customer", "acme"),
        ("group", "acme-office"),
        ("number", "38733100299"),
        ("trunk", "acme-pbx"),
    }


async def test_kind_filters_and_bad_parameters_are_400(tmp_path: Path) -> None:
    """?kind=trunk gives the trunks alone; an unknown kind or parameter is 400 naming it."""
    async with provisioned(tmp_path) as api:
        _, trunks = await api.request("GET", "/api/limits?kind=trunk")
        bad_kind = await api.request("GET", "/api/limits?kind=trunks")
        unknown = await api.request("GET", "/api/limits?customer=acme")
    assert {p["kind"] for p in trunks["pools"]} == {"trunk"}
    assert bad_kind[0] == 400 and "customer, group, number, trunk" in bad_kind[1]["error"]
    assert unknown[0] == 400 and "takes kind" in unknown[1]["error"]


async def test_the_metrics_and_the_api_read_the_same_pools(tmp_path: Path) -> None:
    """channel_pools is the one reading: the API lists exactly what it returns."""
    async with provisioned(tmp_path) as api:
        await api.call("same-1")
        _, body = await api.request("GET", "/api/limits")
        read = channel_pools(api.server.admission)
    assert [(p["kind"], p["name"], p["channels_in_use"]) for p in body["pools"]] == [
        (p.kind, p.name, p.in_use) for p in read
    ]


async def test_customers_show_their_package_and_use(tmp_path: Path) -> None:
    """The list gives channels, agent licences, trunks, numbers and groups of each customer."""
    async with provisioned(tmp_path) as api:
        await api.call("customers-1")
        status, body = await api.request("GET", "/api/customers")
    assert status == 200
    acme, globex = body["customers"]
    assert {k: v for k, v in acme.items() if k != "numbers"} == {
        "name": "acme",
        "channels": 3,
        "channels_in_use": 1,
        "agents": 2,
        "agents_logged_in": 0,
        "trunks": ["acme-pbx"],
        "groups": ["acme-office"],
    }
    assert len(acme["numbers"]) == 100 and acme["numbers"][0] == "+38733100200"
    assert (globex["name"], globex["trunks"], globex["agents"]) == ("globex", ["globex-pbx"], 0)


async def test_one_customer_adds_its_barring_recording_and_groups(tmp_path: Path) -> None:
    """GET /api/customers/acme is the package as trunks.yaml and centrex.yaml set it."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request("GET", "/api/customers/acme", ACME)
    assert status == 200
    assert body["barring"] == ["premium"]
    assert body["recording"] == {"calls": "none", "mode": "mixed", "announcement": []}
    assert body["recording_retention_days"] == 90
    assert body["centrex_groups"] == [
        {
            "id": "acme-office",
            "numbers": ["+38733100200-+38733100299"],
            "channels": 4,
            "channels_in_use": 0,
            "barring": [],
            "subscribers": 2,
        }
    ]


async def test_a_customer_token_sees_no_other_customer(tmp_path: Path) -> None:
    """acme's list holds acme alone; globex is 404 to it, as a name that does not exist."""
    async with provisioned(tmp_path) as api:
        _, listed = await api.request("GET", "/api/customers", ACME)
        other = await api.request("GET", "/api/customers/globex", ACME)
        missing = await api.request("GET", "/api/customers/nobody")
    assert [c["name"] for c in listed["customers"]] == ["acme"]
    assert other == (404, {"error": "no customer 'globex' in config/trunks.yaml"})
    assert missing == (404, {"error": "no customer 'nobody' in config/trunks.yaml"})


async def test_agents_logged_in_count_against_the_licences(tmp_path: Path) -> None:
    """An acme phone logged in as an agent shows as one of acme's 2 licences in use."""
    async with provisioned(tmp_path) as api:
        at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        api.server.phones.centre.centre.login("+38733100201", 0.0, at)
        _, body = await api.request("GET", "/api/customers/acme")
    assert (body["agents"], body["agents_logged_in"]) == (2, 1)
