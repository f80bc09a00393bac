"""The default dialplan tests give a server: what every number without a plan of its own does.

``write_default_plan`` puts a ``default.yaml`` into a dialplans directory: answered (after
``ring`` seconds of 180 Ringing when given), the greeting in the server's default language
(a digit stops it; repeated with ``loop``), BYE ``hangup_after`` seconds after the answer. The
shipped dialplans/default.yaml is this plan with the defaults.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["default_plan", "write_default_plan"]


def default_plan(*, ring: float = 0.0, hangup_after: float = 30.0, loop: bool = False) -> str:
    """The text of the default plan with these values."""
    answer = f"  pick_up:\n    answer:\n    ring: {ring:g}s\n" if ring > 0 else ""
    repeat = "    loop: true\n" if loop else ""
    return (
        "description: Every number without a dialplan of its own\n"
        "steps:\n"
        f"{answer}"
        "  welcome:\n    play: greeting\n    barge_in: true\n"
        f"{repeat}"
        f"  goodbye:\n    hangup:\n    after: {hangup_after:g}s\n"
    )


def write_default_plan(
    directory: Path, *, ring: float = 0.0, hangup_after: float = 30.0, loop: bool = False
) -> Path:
    """Write ``default_plan`` with these values as ``directory/default.yaml`` (made if missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "default.yaml"
    text = default_plan(ring=ring, hangup_after=hangup_after, loop=loop)
    path.write_text(text, encoding="utf-8")
    return path
