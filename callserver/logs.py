"""structlog set-up: JSON lines in production, console on a terminal; call_id bound per call."""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

__all__ = ["bind_call", "configure_logging"]

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog to stdout, one JSON object a line (or console output on a TTY).

    ``call_id``/``uuid``/``trunk`` bound with :func:`bind_call` appear on every line the
    call's code logs, through structlog's contextvars.
    """
    use_json = fmt == "json" or (fmt == "auto" and not sys.stdout.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stdout),
        cache_logger_on_first_use=True,
    )


def bind_call(call_id: str, **extra: str) -> None:
    """Bind ``call_id`` (and e.g. ``trunk``) to every log line of the current task."""
    structlog.contextvars.bind_contextvars(call_id=call_id, **extra)
