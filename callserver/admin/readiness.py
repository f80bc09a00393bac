"""``/readyz``: why the server is not ready for calls (an empty list: ready)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

__all__ = ["not_ready"]


async def not_ready(
    *, listening: list[str], plans: int, dialplans: Path, spool: Path | None, draining: bool
) -> list[str]:
    """The reasons: no SIP socket open, no dialplan loaded, the CDR spool directory missing or
    not writable (checked in a thread: it asks the file system), or draining to stop."""
    reasons = []
    if not listening:
        reasons.append("SIP is not listening: see the log's server.listening and sip errors")
    if plans == 0:
        reasons.append(f"no dialplan is loaded from {dialplans}: callserver check {dialplans}")
    if spool is None:
        reasons.append("the CDR spool is not open yet")
    elif not await asyncio.to_thread(_writable, spool):
        reasons.append(f"the CDR spool {spool} is not a writable directory: check its owner")
    if draining:
        reasons.append("the server is draining to stop")
    return reasons


def _writable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)
