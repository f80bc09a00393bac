"""The one error of every operator file: the settings, trunks, tariffs and each dialplan."""

from __future__ import annotations

__all__ = ["OperatorFileError"]


class OperatorFileError(Exception):
    """An operator file is invalid: unreadable, not YAML, or with invalid values.

    ``errors`` holds every fault found, one ``file:line: field: message`` each, in the order
    the file's reader reports them; ``str()`` of the error is those lines joined by newlines.
    """

    def __init__(self, errors: list[str]) -> None:
        super().__init__("\n".join(errors))
        self.errors = errors
