"""aiortc and PyAV load with the first softphone session, not with the server."""

from __future__ import annotations

import subprocess
import sys


def test_the_server_starts_without_loading_aiortc() -> None:
    """Importing the server (and its admin API) leaves aiortc, aioice and av unloaded: a
    server whose agents never use the softphone does not carry them (30 MiB)."""
    probe = (
        "import sys, callserver.app, callserver.admin.softphone_api; "
        "print(sorted(m for m in ('aiortc', 'aioice', 'av') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"
