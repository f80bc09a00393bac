"""`callserver agents`: the stored agents listed, and a change made on the data dir."""

from __future__ import annotations

import io
from pathlib import Path

from callserver.commands.agents import agent_rows, change_agent, format_rows
from tests.queues.support import agent, centrex

PHONES = centrex(3)


def _change(data: Path, number: str, action: str, reason: str | None = None) -> str:
    """Do ``action`` with no server running (acme: 1 licence); its outcome."""
    outcome, running = change_agent(
        data, number, action, reason, centrex=lambda: PHONES, licences=lambda c: 1
    )
    assert not running
    return outcome.outcome


def test_changes_on_the_data_dir_are_listed(tmp_path: Path) -> None:
    """With no server, a login, the second of one licence and a pause are made on
    agents.sqlite; list shows them as a table and filters by customer."""
    data = tmp_path / "var"
    assert agent_rows(data) == []
    outcomes = [
        _change(data, "+387 33 100 201", "login"),
        _change(data, "033 100 202", "login"),
        _change(data, agent(1), "pause", "5"),
    ]
    out = io.StringIO()
    format_rows(agent_rows(data), "text", out)
    lines = out.getvalue().splitlines()
    assert outcomes == ["logged_in", "no_licence", "paused"]
    assert lines[0].split() == [
        "number",
        "ext",
        "customer",
        "state",
        "reason",
        "since",
        "(UTC)",
        "calls",
    ]
    assert lines[1].split()[:5] == [agent(1), "201", "acme", "paused", "5"]
    assert len(lines) == 2
    assert agent_rows(data, "beta") == []
