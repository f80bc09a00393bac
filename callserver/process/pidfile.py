"""The running server's process id in ``<data_dir>/callserver.pid``, for ``callserver reload``.

``callserver run`` writes the file once it listens and removes it when it stops; a file left
by a killed server is overwritten by the next start. ``callserver reload`` reads it and sends
SIGHUP, which reloads settings, trunks, tariffs, the blacklist and the dialplans.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["PID_FILE", "remove_pid", "signal_reload", "write_pid"]

PID_FILE = "callserver.pid"


def write_pid(data_dir: Path) -> Path:
    """Write this process's id (atomically) and return the file's path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PID_FILE
    part = path.with_name(f".{PID_FILE}.part")
    part.write_text(f"{os.getpid()}\n", encoding="ascii")
    part.replace(path)
    return path


def remove_pid(path: Path) -> None:
    """Remove the file if it still holds this process's id."""
    try:
        if path.read_text(encoding="ascii").strip() == str(os.getpid()):
            path.unlink()
    except (OSError, ValueError):
        pass


def signal_reload(data_dir: Path) -> int:
    """Send SIGHUP to the server running on ``data_dir``; returns its process id.

    Raises:
        LookupError: no server runs there (no pid file, or its process is gone).
    """
    path = data_dir / PID_FILE
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        raise LookupError(f"no running server: {path} is missing or unreadable") from None
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        raise LookupError(f"no running server: process {pid} of {path} is gone") from None
    return pid
