"""The OpenAPI 3.1 document of the admin API, put together from the package's fragments.

``openapi/base.json`` holds the document's head, the health and metrics paths and the shared
components; every other ``openapi/*.json`` is one resource's ``paths`` and ``components``, kept
beside the module that serves them. A path or component named twice is a packaging mistake and
raises.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["FRAGMENTS", "openapi_document"]

FRAGMENTS = Path(__file__).with_name("openapi")


def openapi_document(directory: Path = FRAGMENTS) -> dict[str, Any]:
    """``base.json`` with the paths and components of every other fragment, by file name."""
    document: dict[str, Any] = json.loads((directory / "base.json").read_text())
    for fragment in sorted(directory.glob("*.json")):
        if fragment.name != "base.json":
            _merge(document, json.loads(fragment.read_text()), fragment.name)
    return document


def _merge(document: dict[str, Any], fragment: dict[str, Any], name: str) -> None:
    _add(document["paths"], fragment.get("paths", {}), f"{name}: path")
    components = document.setdefault("components", {})
    for kind, entries in fragment.get("components", {}).items():
        _add(components.setdefault(kind, {}), entries, f"{name}: components.{kind}")


def _add(into: dict[str, Any], entries: dict[str, Any], where: str) -> None:
    for key, value in entries.items():
        if key in into:
            raise ValueError(f"{where} {key} is already in the document")
        into[key] = value
