"""Every list and object the admin API reads checks its query parameters one way
(``params.check_known``): one it does not take is 400 naming it and those it takes."""

from __future__ import annotations

import re
from pathlib import Path

from tests.admin.provisioned import provisioned
from tests.admin.routes import served_routes

# Not a list or object of the API: the WebSocket's upgrade.
NOT_READ = {"/api/softphone"}


async def test_an_unknown_parameter_is_400_on_every_read_of_the_api(tmp_path: Path) -> None:
    """GET of each /api path (placeholders filled with x) with ?colour=red is 400 naming
    colour and what the request takes, before anything is looked up."""
    async with provisioned(tmp_path) as api:
        reads = sorted(
            re.sub(r"\{[^}]+\}", "x", path)
            for path, method in served_routes(api.admin.app)
            if method == "get" and path.startswith("/api/") and path not in NOT_READ
        )
        assert len(reads) > 20, reads
        wrong = {}
        for path in reads:
            status, data = await api.request("GET", f"{path}?colour=red")
            error = data.get("error", "") if isinstance(data, dict) else ""
            if status != 400 or not error.startswith("query parameter colour: unknown here"):
                wrong[path] = (status, error)
    assert not wrong, "\n".join(f"{p}: {s} {e}" for p, (s, e) in sorted(wrong.items()))


async def test_the_known_parameters_are_named(tmp_path: Path) -> None:
    """The 400 names what the request takes: /api/queues/{name} takes customer; /api/calls
    takes none; a parameter given twice is 400 too."""
    async with provisioned(tmp_path) as api:
        _, queue = await api.request("GET", "/api/queues/sales?limit=3")
        _, calls = await api.request("GET", "/api/calls?customer=acme")
        status, twice = await api.request("GET", "/api/queues/sales?customer=a&customer=b")
    assert queue["error"] == "query parameter limit: unknown here; this request takes customer"
    assert calls["error"] == (
        "query parameter customer: unknown here; this request takes no parameter"
    )
    assert (status, twice["error"]) == (
        400,
        "query parameter customer: given more than once; give it once",
    )
