"""Append-only files in one directory, fsync'd on demand, never left with a torn line.

Theory of operation
-------------------
``AppendFiles`` keeps the files it appends to open (``O_APPEND``, unbuffered) between calls,
at most ``max_open`` of them besides the ones named in ``keep``; the oldest name (the day
files sort by date) is closed first. A file that did not exist is followed by an fsync of the
directory, without which its name could vanish in a power loss even though its data was
fsync'd (POSIX fsync(2) only covers the file).

A failed append (``OSError`` from open, write or fsync: ENOSPC, EIO, EDQUOT ...) is logged as
``cdr.write_failed`` (or the owner's ``failed_event``) at error level and counted, and the
file is truncated back to the length it had before, so a half-written line never precedes
the next one. If even the truncation fails, the next append starts with a newline: the torn
line stays on its own and readers skip it. ``replace`` rewrites a file atomically (temporary
file, fsync, rename, directory fsync).

Only its owner's writer thread uses an instance; nothing here is thread-safe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import structlog

__all__ = ["AppendFiles"]

log = structlog.get_logger("callserver.cdr")


@dataclass(slots=True)
class _Handle:
    file: BinaryIO
    size: int
    torn: bool = False  # a failed write left bytes that could not be truncated away


class AppendFiles:
    """The appendable files of one directory (see the module docstring).

    Args:
        directory: Where the files are; it must exist.
        max_open: Most files kept open, not counting those in ``keep``.
        keep: Names never closed to make room (the journal).
        failed_event: The event logged when an append or a rewrite fails.

    Attributes:
        fsyncs: fsync calls made (files and directory).
        errors: Failed appends and rewrites.
    """

    def __init__(
        self,
        directory: Path,
        *,
        max_open: int = 3,
        keep: tuple[str, ...] = (),
        failed_event: str = "cdr.write_failed",
    ) -> None:
        self.directory = directory
        self._failed_event = failed_event
        self.fsyncs = 0
        self.errors = 0
        self._max_open, self._keep = max_open, keep
        self._files: dict[str, _Handle] = {}

    def append(self, name: str, data: bytes, *, sync: bool) -> bool:
        """Append ``data`` to ``name``, fsync it if ``sync``; False (logged) if that failed."""
        handle = None
        try:
            handle = self._handle(name)
            if handle.torn:
                data = b"\n" + data  # end the torn line so the next one parses
            _write_all(handle.file, data)
            if sync:
                os.fsync(handle.file.fileno())
                self.fsyncs += 1
        except OSError as exc:
            self._failed(name, exc)
            if handle is not None:
                _truncate(handle)
            return False
        handle.size += len(data)
        handle.torn = False
        return True

    def replace(self, name: str, data: bytes) -> bool:
        """Make ``data`` the whole content of ``name``, atomically; False (logged) on failure."""
        path = self.directory / name
        temporary = path.with_name(f".{name}.tmp")
        try:
            with open(temporary, "wb") as file:
                _write_all(file, data)
                os.fsync(file.fileno())
                self.fsyncs += 1
            os.replace(temporary, path)
            self._fsync_directory()
        except OSError as exc:
            self._failed(temporary.name, exc)
            return False
        old = self._files.pop(name, None)
        if old is not None:
            old.file.close()
        return True

    def close(self) -> None:
        """Close every open file."""
        for handle in self._files.values():
            handle.file.close()
        self._files.clear()

    def _handle(self, name: str) -> _Handle:
        handle = self._files.get(name)
        if handle is not None:
            return handle
        others = sorted(n for n in self._files if n not in self._keep)
        if name not in self._keep and len(others) >= self._max_open:
            self._files.pop(others[0]).file.close()
        path = self.directory / name
        created = not path.exists()
        file = open(path, "ab", buffering=0)  # noqa: SIM115 - stays open across appends
        handle = self._files[name] = _Handle(file, _size_or(file, 0))
        if created:
            self._fsync_directory()
        return handle

    def _fsync_directory(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
            self.fsyncs += 1
        finally:
            os.close(fd)

    def _failed(self, name: str, exc: OSError) -> None:
        self.errors += 1
        log.error(
            self._failed_event,
            file=str(self.directory / name),
            errno=exc.errno,
            error=exc.strerror or str(exc),
        )


def _truncate(handle: _Handle) -> None:
    try:
        handle.file.truncate(handle.size)
    except OSError:
        handle.torn = True
        handle.size = _size_or(handle.file, handle.size)


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[file.write(view) :]


def _size_or(file: BinaryIO, default: int) -> int:
    try:
        return os.fstat(file.fileno()).st_size
    except OSError:
        return default
