"""policy/outbound.py: routes by longest prefix in file order, and emergency numbers."""

from __future__ import annotations

import pytest

from callserver.config.trunks import TrunksFile
from callserver.policy.outbound import OutboundPlan, route_prefix


def plan(routes: dict[str, list[str]], emergency: dict[str, object] | None = None) -> OutboundPlan:
    data = {
        "routes": {
            name: {"host": f"192.0.2.{index + 1}", "prefixes": prefixes}
            for index, (name, prefixes) in enumerate(routes.items())
        },
        "emergency": emergency or {},
    }
    return OutboundPlan.of(TrunksFile.model_validate(data))


@pytest.mark.parametrize(
    ("written", "key"),
    [("+", "+"), ("+387 33", "+38733"), ("033", "+38733"), ("00385", "+385"), ("12", "12")],
)
def test_prefixes_are_written_like_numbers(written: str, key: str) -> None:
    """A prefix normalises as a number does: the national 0 and 00 become + and the code."""
    assert route_prefix(written) == key


def test_longest_prefix_wins() -> None:
    """A number takes the routes of its longest matching prefix, not a shorter one's."""
    routes = plan({"world": ["+"], "bih": ["+387"], "sarajevo": ["+387 33"]})
    assert routes.routes_for("+38733123456") == ("sarajevo",)
    assert routes.routes_for("+38761123456") == ("bih",)
    assert routes.routes_for("+4930123456") == ("world",)


def test_routes_with_the_same_prefix_keep_the_file_order() -> None:
    """Several routes of one prefix come back in the order the file writes them, for failover."""
    routes = plan({"second": ["+387"], "first": ["+"], "third": ["+387", "+"]})
    assert routes.routes_for("+38761123456") == ("second", "third")
    assert routes.routes_for("+4930123456") == ("first", "third")


def test_no_matching_prefix_means_no_route() -> None:
    """A number no prefix covers, and a short code without a bare prefix, get ()."""
    routes = plan({"bih": ["+387"], "none": []})
    assert routes.routes_for("+4930123456") == ()
    assert routes.routes_for("1282") == ()
    assert routes.routes_for("+387") == ("bih",)


def test_short_codes_have_bare_prefixes() -> None:
    """A bare prefix carries short codes and never an E.164 number."""
    routes = plan({"services": ["12"], "world": ["+"]})
    assert routes.routes_for("1282") == ("services",)
    assert routes.routes_for("+1212555") == ("world",)


def test_lookup_is_by_prefix_length() -> None:
    """The plan keeps one dict per prefix length, longest first, not a list of routes."""
    routes = plan({"a": ["+", "+387"], "b": ["+387 33", "+387"]})
    assert routes.lengths == (6, 4, 1)
    assert dict(routes.by_length[4]) == {"+387": ("a", "b")}


def test_emergency_numbers_as_dialled_go_to_their_route() -> None:
    """112 and the other default numbers, written any way, name the emergency route."""
    routes = plan({"pstn": ["+"], "psap": []}, {"route": "psap"})
    assert [routes.emergency_route(n) for n in ("112", "122", "123", "124")] == ["psap"] * 4
    assert routes.emergency_route("1 12") == "psap"
    assert routes.emergency_route("113") is None
    assert routes.emergency_route("+38733112") is None
    assert routes.emergency_route("not a number") is None


def test_emergency_numbers_without_a_route() -> None:
    """Without emergency.route the listed numbers are emergency numbers with no route of theirs."""
    routes = plan({"pstn": ["+"]}, {"numbers": ["112", "911"]})
    assert routes.is_emergency("911")
    assert not routes.is_emergency("122")
    assert routes.emergency_route("112") is None


@pytest.mark.parametrize("written", ["+387 6x", "abroad", "", "+387 33 100 200 300 400"])
def test_bad_prefixes_are_refused(written: str) -> None:
    """A pattern, letters, nothing or more than E.164's digits is a ValueError naming the prefix."""
    with pytest.raises(ValueError, match="prefix"):
        route_prefix(written)
