"""Small files written so that a crash leaves the old version or the new one, never half of
either: the data is written to a hidden ``.NAME.part`` beside the target, fsync'd, renamed
over the target, and the folder fsync'd so the rename itself survives a power cut.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

__all__ = ["sync_directory", "write_json"]


def write_json(path: Path, data: dict[str, object]) -> None:
    """Replace ``path`` with ``data`` as UTF-8 JSON, durably (see the module docstring)."""
    part = path.with_name(f".{path.name}.part")
    with part.open("w", encoding="utf-8") as out:
        json.dump(data, out, ensure_ascii=False, indent=1)
        out.flush()
        os.fsync(out.fileno())
    part.replace(path)
    sync_directory(path.parent)


def sync_directory(folder: Path) -> None:
    """fsync ``folder``, making the names created or renamed in it durable."""
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
