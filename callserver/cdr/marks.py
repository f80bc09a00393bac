"""Marks on CDRs already written: a call flagged as malicious (MCID) after it ended.

Theory of operation
-------------------
A leg's ``CdrRecord`` is written once, when the leg ends; a subscriber dials ``*39`` (MCID)
after that. The mark is therefore a record of its own, appended as one JSON line to
``marks.jsonl`` in the spool directory (``{"call_id": ..., "malicious": STAMP}``) and fsync'd,
as a day file line is. ``CdrStore.ingest`` reads it with its own byte-offset checkpoint into
the ``cdr_mark`` table (the first mark of a call is kept), and ``CdrStore.records`` sets
``malicious`` on every leg of the marked call (its ``call_id`` or ``linked_id``), so
``callserver cdr export`` shows it. The spool's day files are never rewritten, and a rebuilt
``cdr.sqlite`` reads the marks again from the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["MARKS_FILE", "CdrMark", "append_mark", "parse_mark"]

MARKS_FILE: Final = "marks.jsonl"


@dataclass(frozen=True, slots=True, kw_only=True)
class CdrMark:
    """The call ``call_id`` (the caller's leg's Call-ID) marked malicious at ``malicious``
    (a UTC stamp as ``cdr.record.utc_stamp`` writes it)."""

    call_id: str
    malicious: str


def append_mark(spool_dir: Path, mark: CdrMark) -> None:
    """Append ``mark`` to ``spool_dir/marks.jsonl`` and fsync it (blocking: off the loop).

    Raises:
        OSError: the file cannot be written.
    """
    spool_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps({"call_id": mark.call_id, "malicious": mark.malicious}, ensure_ascii=True)
    with (spool_dir / MARKS_FILE).open("ab") as file:
        file.write(line.encode("ascii") + b"\n")
        file.flush()
        os.fsync(file.fileno())


def parse_mark(line: bytes) -> CdrMark:
    """One line of marks.jsonl.

    Raises:
        ValueError: not a JSON object with text ``call_id`` and ``malicious``.
    """
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a mark is a JSON object")
    call_id, stamp = data.get("call_id"), data.get("malicious")
    if not isinstance(call_id, str) or not isinstance(stamp, str) or not call_id:
        raise ValueError("a mark has a call_id and a malicious stamp")
    return CdrMark(call_id=call_id, malicious=stamp)
