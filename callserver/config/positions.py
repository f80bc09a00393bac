"""YAML with line numbers, so operator-file errors can say ``file:line: field: message``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["DuplicateKey", "Origin", "describe_errors", "line_of", "load_yaml_with_lines"]

Path_ = tuple[str | int, ...]
_UNKNOWN_KEY = "unknown key (misspelt, or in the wrong place?)"
# libyaml's parser (C) when PyYAML was built with it: a dialplan set reloads 4x faster or so.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Origin = Callable[[Path_], str | None]
"""Where the value at a path came from when not from the file (``None``: the file)."""


class DuplicateKey(yaml.YAMLError):
    """A mapping names the same key twice (YAML 1.2 §3.2.1.1: keys are unique); PyYAML would
    silently keep the last one, so an operator's second ``welcome:`` would hide the first."""

    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(f"duplicate key {key!r} (first at line {first})")
        self.problem = str(self)
        self.problem_mark = yaml.Mark("", 0, line - 1, 0, "", 0)


def load_yaml_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse ``text`` with ``yaml.safe_load`` and map each key path to its 1-based line.

    Raises:
        yaml.YAMLError: the text is not valid YAML, or a mapping repeats a key
            (``DuplicateKey``).
    """
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()  # parsed once, by libyaml when PyYAML has it
        lines: dict[Path_, int] = {}
        if node is None:
            return None, lines
        _walk(node, (), lines)
        return loader.construct_document(node), lines
    finally:
        loader.dispose()


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name, line = str(key.value), key.start_mark.line + 1
            if name in seen:
                raise DuplicateKey(name, line, seen[name])
            seen[name] = line
            child = (*path, name)
            lines[child] = line
            _walk(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), lines)


def line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of ``path``, or of its nearest ancestor that has one (1 if none)."""
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get((), 1)


def describe_errors(
    source: str,
    exc: ValidationError,
    lines: dict[Path_, int],
    origin: Origin | None = None,
    prefix: Path_ = (),
) -> list[str]:
    """Turn a pydantic error into ``source:line: dotted.field: message`` lines, one per error.

    ``origin`` names values that came from elsewhere (an environment variable, a flag); those
    errors start with its answer instead of ``source:line``. Those come first, then the file's
    errors in line order. ``prefix`` is the path of the validated value inside the file.
    """
    out: list[tuple[int, str]] = []
    for error in exc.errors():
        parts = (*prefix, *error["loc"])
        loc = tuple(part for part in parts if not str(part).startswith("function-"))
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = _UNKNOWN_KEY if error["type"] == "extra_forbidden" else error["msg"]
        message = message.removeprefix("Value error, ")
        where = origin(loc) if origin is not None else None
        line = 0 if where else line_of(lines, loc)
        out.append((line, f"{where or f'{source}:{line}'}: {field}: {message}"))
    return [text for _, text in sorted(out, key=lambda item: item[0])]
