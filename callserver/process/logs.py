"""structlog set-up: JSON lines in production, console on a terminal; call_id bound per call."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

__all__ = ["configure_logging", "escape_control", "printable"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def printable(text: str) -> str:
    """``text`` with each control character written as JSON writes it (``\\u0000``)."""
    if _CONTROL.search(text) is None:
        return text
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def escape_control(
    logger: object, method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Write control characters in string values as ``\\u001b``, so a value a peer sent
    (a SIP header, a number) cannot move a terminal's cursor or hide part of a line.

    JSON lines need no such step: the JSON encoder escapes them already. A traceback keeps
    its line breaks.
    """
    for key, value in event.items():
        if isinstance(value, str) and key != "exception":
            event[key] = printable(value)
    return event


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog to stdout, one JSON object a line (or console output on a TTY).

    Context bound with ``structlog.contextvars`` and fields bound to a logger (a call's
    logger carries its ``call_id``) appear on every line.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: list[Any] = (
        [structlog.processors.JSONRenderer()]
        if use_json
        else [escape_control, structlog.dev.ConsoleRenderer()]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            *renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )
