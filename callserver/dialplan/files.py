"""Dialplan files changed through the admin API: checked by the loader's own compile, the file
they replace kept, the new text written atomically.

Theory of operation
-------------------
``check_text`` writes the text as ``<name>.yaml`` in a private temporary directory and compiles
it with ``compiler.compile_file`` in the compile context in force: the compile a reload and
``callserver check`` run, so the answer is the loader's own. Its errors and warnings are said of
the dialplan's file in the directory (``dialplans/38733100200.yaml:5: steps.welcome: ...``) and
split into ``FileProblem`` (file, line, field, message).

``install`` keeps a copy of the file it replaces as
``<directory>/.previous/<name>.<UTC time>.<version>.yaml`` (the loader and the watcher read only
the files directly in the directory, so a kept copy is never loaded), then writes the new text
atomically: a temporary file in the same directory (a name the loader and the watcher ignore),
fsync, rename over the file, fsync of the directory. A reader sees the old file or the new one,
never a part of either. Every function here does file work: call it in a worker thread.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from callserver.config.errors import OperatorFileError
from callserver.dialplan.compiler import PlanContext, compile_file, plan_version
from callserver.dialplan.loader import dialplan_files

__all__ = [
    "PREVIOUS_DIR",
    "FileProblem",
    "Installed",
    "TextChecked",
    "check_text",
    "dialplan_file",
    "install",
    "listed_files",
    "name_problem",
    "problem_of",
]

PREVIOUS_DIR = ".previous"
"""Where ``install`` keeps the files it replaced, inside the dialplans directory."""

_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LINE = re.compile(r":(?P<line>[0-9]+): (?P<body>.*)", re.DOTALL)
_FIELD = re.compile(r"(?P<field>\([^)]*\)|[^\s:]+): (?P<message>.*)", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class FileProblem:
    """One error or warning of a dialplan file; ``line`` and ``field`` are None when the
    loader names none (an unreadable file, YAML that does not parse)."""

    file: str
    line: int | None
    field: str | None
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TextChecked:
    """The loader's verdict on a text: its errors (none: valid), its warnings, and the
    version it has (the hash of its bytes)."""

    errors: tuple[FileProblem, ...]
    warnings: tuple[FileProblem, ...]
    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Installed:
    """Where ``install`` wrote the text, and where it kept the file replaced (None: new)."""

    path: Path
    previous: Path | None


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a dialplan's name (a plain file stem), else None."""
    if _NAME.fullmatch(name):
        return None
    return (
        f"{name!r} is not a dialplan name: use the file's stem, letters, digits, - or _ only: "
        "the called number's E.164 digits (38733100200) or default, without .yaml"
    )


def dialplan_file(directory: Path, name: str) -> Path:
    """The file of ``name`` in ``directory``: ``<name>.yaml``, or ``<name>.yml`` when only that
    one is there."""
    path = directory / f"{name}.yaml"
    other = directory / f"{name}.yml"
    return other if not path.exists() and other.exists() else path


def listed_files(directory: Path) -> list[tuple[Path, float]]:
    """Every dialplan file the loader reads in ``directory``, with its modification time
    (epoch seconds); a file removed meanwhile is left out."""
    out = []
    for path in dialplan_files(directory):
        try:
            out.append((path, path.stat().st_mtime))
        except FileNotFoundError:
            continue
    return out


def problem_of(text: str, file: str) -> FileProblem:
    """One loader line, ``file:line: field: message`` (or ``file: message``), as its parts."""
    rest = text.removeprefix(file)
    if rest == text:
        return FileProblem(file=file, line=None, field=None, message=text)
    line: int | None = None
    if (numbered := _LINE.fullmatch(rest)) is not None:
        line, body = int(numbered["line"]), numbered["body"]
    else:
        body = rest.removeprefix(":").strip()
    if (fielded := _FIELD.fullmatch(body)) is not None:
        return FileProblem(file=file, line=line, field=fielded["field"], message=fielded["message"])
    return FileProblem(file=file, line=line, field=None, message=body)


def check_text(directory: Path, name: str, data: bytes, context: PlanContext) -> TextChecked:
    """Compile ``data`` as the dialplan ``name`` of ``directory`` would be compiled, without
    touching the directory (see the module docstring)."""
    target = str(dialplan_file(directory, name))
    suffix = Path(target).suffix
    with tempfile.TemporaryDirectory(prefix="callserver-dialplan-") as staging:
        staged = Path(staging) / f"{name}{suffix}"
        staged.write_bytes(data)
        try:
            plan = compile_file(staged, context)
        except OperatorFileError as exc:
            errors, warnings = exc.errors, []
        else:
            errors, warnings = [], list(plan.warnings)

    def said_of_target(lines: list[str]) -> tuple[FileProblem, ...]:
        return tuple(problem_of(line.replace(str(staged), target), target) for line in lines)

    return TextChecked(
        errors=said_of_target(errors),
        warnings=said_of_target(warnings),
        version=plan_version(data),
    )


def install(directory: Path, name: str, data: bytes, now: datetime) -> Installed:
    """Keep the file ``name`` has (if any) under ``.previous``, named with ``now`` (UTC) and
    its version, then write ``data`` in its place atomically.

    Raises:
        OSError: the directory cannot be written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = dialplan_file(directory, name)
    previous = _keep(path, now) if path.exists() else None
    _write_atomically(path, data)
    return Installed(path=path, previous=previous)


def _keep(path: Path, now: datetime) -> Path:
    old = path.read_bytes()
    kept = path.parent / PREVIOUS_DIR
    kept.mkdir(exist_ok=True)
    copy = kept / f"{path.stem}.{now:%Y%m%dT%H%M%SZ}.{plan_version(old)}{path.suffix}"
    _write_atomically(copy, old, mode=path.stat().st_mode & 0o777)
    return copy


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, rename it over ``path``
    and fsync the directory; the file keeps its mode (``mode``, else 0644 for a new one)."""
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fchmod(file.fileno(), mode)
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
