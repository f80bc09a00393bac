"""YAML with line numbers, so operator-file errors can say ``file:line: field: message``."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

__all__ = ["describe_errors", "line_of", "load_yaml_with_lines"]

Path_ = tuple[str | int, ...]


def load_yaml_with_lines(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse ``text`` with ``yaml.safe_load`` and map each key path to its 1-based line.

    Raises:
        yaml.YAMLError: the text is not valid YAML.
    """
    data = yaml.safe_load(text)
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, str(key.value))
            lines[child] = key.start_mark.line + 1
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


def describe_errors(source: str, exc: ValidationError, lines: dict[Path_, int]) -> list[str]:
    """Turn a pydantic error into ``source:line: dotted.field: message`` lines, one per error."""
    out = []
    for error in exc.errors():
        loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = error["msg"].removeprefix("Value error, ")
        out.append(f"{source}:{line_of(lines, loc)}: {field}: {message}")
    return out
