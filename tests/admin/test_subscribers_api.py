"""``/api/subscribers`` of an in-process server, on a real port: views, scoping, changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from callserver.calls.service_codes import ServiceCodeCalls
from callserver.media.prompts import Play
from callserver.policy.service_codes import ServiceChange
from tests.admin.provisioned import provisioned
from tests.admin.tokens import ACME, GLOBEX


async def test_the_list_gives_each_phone_its_id_customer_and_services(tmp_path: Path) -> None:
    """Every subscriber by number: its GROUP:EXT id, group, customer and services in force."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request("GET", "/api/subscribers")
    assert status == 200
    ids = [(s["id"], s["number"], s["customer"]) for s in body["subscribers"]]
    assert ids == [
        ("acme-office:201", "+38733100201", "acme"),
        ("acme-office:202", "+38733100202", "acme"),
        ("globex-office:201", "+38733200201", "globex"),
    ]
    reception = body["subscribers"][0]
    assert reception["name"] == "Reception" and reception["extension"] == "201"
    assert reception["services"] == {
        "forward_always": None,
        "forward_busy": None,
        "forward_no_answer": None,
        "no_answer_seconds": 20,
        "forward_unreachable": None,
        "call_waiting": True,
        "dnd": False,
    }
    assert reception["locks"] == ["forward_unreachable"]
    assert reception["services_set_by_phone"] == {}


async def test_an_extension_names_one_subscriber_three_ways(tmp_path: Path) -> None:
    """GROUP:EXT and the number always; a bare 201 only where the token sees one 201."""
    async with provisioned(tmp_path) as api:
        by_id = await api.request("GET", "/api/subscribers/acme-office:201")
        by_number = await api.request("GET", "/api/subscribers/+38733100201")
        by_extension = await api.request("GET", "/api/subscribers/201", ACME)
        ambiguous = await api.request("GET", "/api/subscribers/201")
    assert by_id == by_number == by_extension
    assert by_id[0] == 200 and by_id[1]["number"] == "+38733100201"
    assert ambiguous[0] == 400
    assert "acme-office:201, globex-office:201" in ambiguous[1]["error"]


async def test_another_customers_subscriber_is_404(tmp_path: Path) -> None:
    """globex's token sees its own phone only; acme's is 404 to it however it is named."""
    async with provisioned(tmp_path) as api:
        _, listed = await api.request("GET", "/api/subscribers", GLOBEX)
        named = [
            await api.request("GET", f"/api/subscribers/{name}", GLOBEX)
            for name in ("acme-office:202", "+38733100202", "202")
        ]
        change = await api.request(
            "PATCH", "/api/subscribers/acme-office:202/services", GLOBEX, {"dnd": True}
        )
    assert [s["id"] for s in listed["subscribers"]] == ["globex-office:201"]
    assert {status for status, _ in named} == {404}
    assert change[0] == 404


async def test_a_change_is_kept_and_read_back_by_the_phones_code(tmp_path: Path) -> None:
    """Forwarding on busy to an extension and do-not-disturb set by PATCH are in force, in the
    phone's store, and read back by *#67# as the phone's own change would be."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request(
            "PATCH",
            "/api/subscribers/acme-office:201/services",
            ACME,
            {"forward_busy": "202", "forward_no_answer": "+387 61 100 100", "dnd": True},
        )
        store = api.server.phones.services
        codes = api.server.phones.service_codes
        assert store is not None and isinstance(codes, ServiceCodeCalls)
        reception = api.server.centrex.subscriber("+38733100201")
        assert reception is not None
        read_back = ServiceChange(procedure="interrogate", service="forward_busy")
        heard = codes.perform(reception, read_back, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        in_force = store.settings_of("+38733100201")
    assert status == 200
    assert body["services"]["forward_busy"] == "202"
    assert body["services"]["forward_no_answer"] == "+38761100100"
    assert body["services_set_by_phone"] == {
        "forward_busy": "202",
        "forward_no_answer": "+38761100100",
        "dnd": True,
    }
    assert (in_force.forward_busy, in_force.dnd) == ("202", True)
    assert heard[0] == Play("forwarding_to")


async def test_bad_values_are_400_saying_what_is_expected(tmp_path: Path) -> None:
    """Its own extension, an extension not in its group, a ring time out of range, a flag
    that is no boolean, an unknown setting and a body that is no object are each 400."""
    cases = [
        ({"forward_always": "201"}, "is not a target"),
        ({"forward_always": "299"}, "is not a target"),
        ({"forward_always": "+38733100201"}, "is not a target"),
        ({"forward_always": 61100100}, "is not a target"),
        ({"no_answer_seconds": 90}, "5 to 60 seconds"),
        ({"dnd": "yes"}, "is not true or false"),
        ({"clir": True}, "is not a service a phone sets"),
        ({}, "send a JSON object"),
        (["dnd"], "send a JSON object"),
        (b"{dnd", "the body is not JSON"),
    ]
    async with provisioned(tmp_path) as api:
        for body, message in cases:
            status, answer = await api.request(
                "PATCH", "/api/subscribers/+38733100201/services", body=body
            )
            assert (status, message in answer["error"]) == (400, True), (body, answer)
        _, after = await api.request("GET", "/api/subscribers/+38733100201")
    assert after["services_set_by_phone"] == {}


async def test_a_locked_service_is_403_and_nothing_changes(tmp_path: Path) -> None:
    """forward_unreachable is locked for acme's group: refused whole, with the rest."""
    async with provisioned(tmp_path) as api:
        status, body = await api.request(
            "PATCH",
            "/api/subscribers/acme-office:202/services",
            body={"forward_unreachable": "VM", "dnd": True},
        )
        _, after = await api.request("GET", "/api/subscribers/acme-office:202")
    assert status == 403
    assert body["error"].startswith("forward_unreachable of +38733100202 is locked")
    assert after["services_set_by_phone"] == {}


async def test_turning_a_forwarding_off_is_null(tmp_path: Path) -> None:
    """null turns a forwarding set before off again, as #21# does from the phone."""
    async with provisioned(tmp_path) as api:
        path = "/api/subscribers/globex-office:201/services"
        await api.request("PATCH", path, GLOBEX, {"forward_always": "VM"})
        status, body = await api.request("PATCH", path, GLOBEX, {"forward_always": None})
    assert status == 200
    assert body["services"]["forward_always"] is None
    assert body["services_set_by_phone"] == {"forward_always": None}


async def test_list_filters_and_unknown_parameters(tmp_path: Path) -> None:
    """?group= and ?customer= filter; any other parameter is 400."""
    async with provisioned(tmp_path) as api:
        _, group = await api.request("GET", "/api/subscribers?group=globex-office")
        _, customer = await api.request("GET", "/api/subscribers?customer=acme")
        bad = await api.request("GET", "/api/subscribers?extension=201")
    assert [s["id"] for s in group["subscribers"]] == ["globex-office:201"]
    assert len(customer["subscribers"]) == 2
    assert bad[0] == 400 and "takes customer, group" in bad[1]["error"]


async def test_a_customer_naming_another_customer_is_404_as_in_every_list(
    tmp_path: Path,
) -> None:
    """acme's token asking for globex's subscribers is 404, as ?customer= is in the other
    lists (admin.params.customer_scope); its own is its list; an empty one is 400."""
    async with provisioned(tmp_path) as api:
        other = await api.request("GET", "/api/subscribers?customer=globex", ACME)
        own = await api.request("GET", "/api/subscribers?customer=acme", ACME)
        empty = await api.request("GET", "/api/subscribers?customer=", ACME)
    assert other[0] == 404 and "globex" in other[1]["error"], other
    assert own[0] == 200 and {s["customer"] for s in own[1]["subscribers"]} == {"acme"}
    assert empty[0] == 400 and empty[1]["error"].startswith("query parameter customer"), empty
