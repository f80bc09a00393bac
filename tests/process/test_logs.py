"""Tests for the log set-up: a value a peer sent never reaches a log line with raw control bytes."""

from __future__ import annotations

import json

import structlog

from callserver.process.logs import escape_control, printable


def test_printable_escapes_control_characters_as_json_does() -> None:
    """NUL, ESC and DEL become \\u0000, \\u001b and \\u007f; other text is returned as it is."""
    assert printable("a\x00b\x1b[2J\x7f") == "a\\u0000b\\u001b[2J\\u007f"
    text = "plain čćž"
    assert printable(text) is text


def test_console_values_are_escaped_but_a_traceback_keeps_its_lines() -> None:
    """The console processor escapes every string value except the formatted exception."""
    event = {"event": "sip.rx", "user_agent": "x\x1b[31m", "exception": "Traceback\n  line"}
    out = escape_control(None, "info", event)
    assert out["user_agent"] == "x\\u001b[31m"
    assert out["exception"] == "Traceback\n  line"


def test_json_lines_carry_no_raw_control_character() -> None:
    """The JSON renderer of production logs escapes control characters itself."""
    line = structlog.processors.JSONRenderer()(None, "info", {"event": "x", "v": "a\x00\x1b"})
    assert "\x00" not in line and "\x1b" not in line
    assert json.loads(line)["v"] == "a\x00\x1b"
