"""Tests for the routes a forwarded or outgoing number takes (``calls.destination.routes_for``)."""

from __future__ import annotations

from callserver.calls.destination import routes_for
from callserver.config.trunks import TrunksFile
from callserver.policy.outbound import OutboundPlan


def _routes(
    target: str,
    route: str | None = None,
    *,
    default: str | None = "fallback",
    emergency: str | None = "sos",
) -> list[str]:
    config = TrunksFile.model_validate(
        {
            "routes": {
                "bih-a": {"host": "192.0.2.1", "prefixes": ["+387"]},
                "bih-b": {"host": "192.0.2.2", "prefixes": ["+387"]},
                "mobile": {"host": "192.0.2.3", "prefixes": ["+387 6"]},
                "sos": {"host": "192.0.2.4"},
                "fallback": {"host": "192.0.2.5"},
            },
            "default_route": default,
            "emergency": {"route": emergency},
        }
    )
    return [r.name for r in routes_for(config, OutboundPlan.of(config), target, route)]


def test_a_named_route_is_the_only_one() -> None:
    """A forward step that names a route goes through it, whatever the prefix."""
    assert _routes("+38761200300", "fallback") == ["fallback"]


def test_the_longest_prefix_wins_and_its_routes_keep_the_file_order() -> None:
    """+387 6 is the mobile route's; +387 33 has two routes, tried in the order written."""
    assert _routes("+38761200300") == ["mobile"]
    assert _routes("+38733100200") == ["bih-a", "bih-b"]


def test_an_emergency_number_takes_the_emergency_route() -> None:
    """112 goes to the route named for emergency calls, not the default one."""
    assert _routes("112") == ["sos"]


def test_a_number_without_a_prefix_route_takes_the_default_one_or_none() -> None:
    """+49 has no prefix here: the default route, and nothing without one."""
    assert _routes("+4930123456") == ["fallback"]
    assert _routes("+4930123456", default=None) == []


def test_an_emergency_number_without_an_emergency_route_takes_its_prefix_routes() -> None:
    """No route named for emergency calls: 112 is routed as any number (here: the default)."""
    assert _routes("112", emergency=None) == ["fallback"]
