"""What of the spool is not yet in the central store: records, bytes, and how long behind.

Theory of operation
-------------------
The feeder (``cdr.feeder``) ships each spool file from its checkpoint offset. ``Backlog``
keeps, per file, how far it was shipped (``offset``), how far its lines were counted
(``counted``), the complete lines between the two (``lines``), and when each stretch of them
was first seen. ``scan`` (blocking: a worker thread) looks at the spool directory and counts
the newlines of what each file gained since the last scan: only what is new, so a long outage
costs each scan the new records, not the whole backlog again. ``apply`` takes its answer on
the loop, ``shipped`` moves a file's offset after a batch is committed. The figures are those
of the last scan (one a second): ``records`` (complete lines not shipped), ``bytes`` (their
size) and ``lag`` (seconds since the oldest of them was first seen; 0 when none waits). A
line still being written counts once it ends.

A file that shrank below what was counted was rewritten: its figures start again from 0, as
the feeder's read does (``CdrStore``'s ``read_lines``). Files that are gone are forgotten.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from callserver.cdr.central_rows import SpoolReadError
from callserver.cdr.journal import is_day_file
from callserver.cdr.marks import MARKS_FILE

log = structlog.get_logger("callserver.cdr")

__all__ = ["Backlog", "Growth", "is_shipped", "read_checkpoint", "scan"]

_READ = 1024 * 1024  # bytes counted a read


def is_shipped(name: str) -> bool:
    """Whether the spool file ``name`` goes to the central store: a day file, the marks."""
    return is_day_file(name) or name == MARKS_FILE


@dataclass(frozen=True, slots=True)
class Growth:
    """One file as a scan found it: its size, and the complete lines from ``start`` (where
    the count began) to ``end`` (just after the last newline)."""

    size: int
    start: int
    end: int
    lines: int


@dataclass(slots=True)
class _Tail:
    offset: int
    counted: int
    lines: int = 0
    seen: deque[tuple[int, float]] = field(default_factory=deque)  # (counted, first seen at)


def scan(directory: Path, counted: dict[str, int]) -> dict[str, Growth]:
    """Every shipped file of ``directory``: its size and the lines it gained after
    ``counted[name]`` (blocking: run it in a worker thread); empty without the directory.

    Raises:
        SpoolReadError: the directory or a file cannot be read.
    """
    found: dict[str, Growth] = {}
    try:
        paths = sorted(p for p in directory.iterdir() if is_shipped(p.name))
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise SpoolReadError(f"{directory}: {exc.strerror or exc}") from None
    for path in paths:
        try:
            found[path.name] = _grown(path, counted.get(path.name, 0))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise SpoolReadError(f"{path}: {exc.strerror or exc}") from None
    return found


def _grown(path: Path, start: int) -> Growth:
    with path.open("rb") as file:
        size = file.seek(0, 2)
        if size < start:  # rewritten: count it again from the start
            start = 0
        file.seek(start)
        end, lines, position = start, 0, start
        while position < size:
            data = file.read(min(_READ, size - position))
            if not data:
                break
            newlines = data.count(b"\n")
            if newlines:
                lines += newlines
                end = position + data.rfind(b"\n") + 1
            position += len(data)
    return Growth(size=size, start=start, end=end, lines=lines)


class Backlog:
    """The spool files' shipped offsets and what waits after them (see the module docstring).

    Args:
        offsets: The checkpoint: each file's offset already in the central store.
    """

    def __init__(self, offsets: dict[str, int]) -> None:
        self._tails = {name: _Tail(offset, offset) for name, offset in offsets.items()}

    def counted(self) -> dict[str, int]:
        """Where the next scan starts counting each known file."""
        return {name: tail.counted for name, tail in self._tails.items()}

    def offsets(self) -> dict[str, int]:
        """The checkpoint: each file's shipped offset."""
        return {name: tail.offset for name, tail in self._tails.items()}

    def waiting(self) -> list[str]:
        """The files with complete lines not shipped, by name (day files by date, then marks)."""
        return sorted(name for name, tail in self._tails.items() if tail.counted > tail.offset)

    def offset(self, name: str) -> int:
        """Where shipping ``name`` goes on."""
        tail = self._tails.get(name)
        return 0 if tail is None else tail.offset

    def apply(self, found: dict[str, Growth], now: float) -> None:
        """Take a scan's answer (``now``: the loop's time); files not in it are gone."""
        for name in set(self._tails) - set(found):
            del self._tails[name]
        for name, growth in found.items():
            tail = self._tails.get(name)
            if tail is None or growth.start < tail.counted:  # new, or rewritten: from 0
                tail = self._tails[name] = _Tail(0, growth.start)
            if growth.end > tail.counted:
                tail.lines += growth.lines
                tail.counted = growth.end
            if tail.counted > tail.offset and (not tail.seen or tail.seen[-1][0] < tail.counted):
                tail.seen.append((tail.counted, now))

    def shipped(self, name: str, start: int, end: int, lines: int) -> None:
        """``lines`` lines of ``name``, read from ``start``, up to ``end`` are in the central
        store."""
        tail = self._tails.setdefault(name, _Tail(start, start))
        if start < tail.offset:  # the read started again from 0 (a rewritten file)
            tail.counted, tail.lines = end, 0
            tail.seen.clear()
        tail.offset = end
        if end >= tail.counted:
            tail.counted, tail.lines = end, 0
        else:
            tail.lines = max(0, tail.lines - lines)
        while tail.seen and tail.seen[0][0] <= end:
            tail.seen.popleft()

    def records(self) -> int:
        """Complete lines not shipped, as of the last scan."""
        return sum(tail.lines for tail in self._tails.values())

    def bytes(self) -> int:
        """Bytes of those lines."""
        return sum(tail.counted - tail.offset for tail in self._tails.values())

    def lag(self, now: float) -> float:
        """Seconds since the oldest line not shipped was first seen; 0 when none waits."""
        oldest = [tail.seen[0][1] for tail in self._tails.values() if tail.seen]
        return max(0.0, now - min(oldest)) if oldest else 0.0


def read_checkpoint(path: Path) -> dict[str, int]:
    """The feeder's checkpoint (``{file: offset}``); none (start again: the uuid keeps it
    exact) when it is missing or unreadable (logged). Blocking: run it in a thread."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("cdr.central_checkpoint_unreadable", file=str(path), error=str(exc))
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in data.items()
    ):
        log.warning("cdr.central_checkpoint_unreadable", file=str(path), error="not offsets")
        return {}
    return data
