"""Tests for DTMF in SIP INFO bodies (callserver.media.dtmf_info)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media.dtmf import DIGITS
from callserver.media.dtmf_info import build_dtmf_info, parse_dtmf_info


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", ("5", 160)),
        ("application/dtmf-relay", b"Signal= 5\r\nDuration= 250\r\n", ("5", 250)),
        ("Application/DTMF-Relay", b"signal = #\nduration=80\n", ("#", 80)),
        ("application/dtmf-relay; charset=utf-8", b"SIGNAL=*\r\n", ("*", 100)),
        ("application/dtmf-relay", b"Signal=10\r\nDuration=100\r\n", ("*", 100)),
        ("application/dtmf-relay", b"Signal=11\r\nDuration=100\r\n", ("#", 100)),
        ("application/dtmf-relay", b"Signal=d\r\nDuration=x\r\n", ("D", 100)),
        ("application/dtmf-relay", b"Duration=120\r\nSignal=0", ("0", 120)),
        ("application/dtmf-relay", b"Signal=1\r\nDuration=99999999\r\n", ("1", 100)),
        ("application/dtmf", b"7", ("7", 100)),
        ("application/dtmf", b"#\r\n", ("#", 100)),
        (" APPLICATION/DTMF ;x=y", b"B\n", ("B", 100)),
    ],
)
def test_parse_info_bodies(content_type: str, body: bytes, expected: tuple[str, int]) -> None:
    """Both INFO body types parse, with odd spacing, case, line ends and Signal=10/11."""
    assert parse_dtmf_info(content_type, body) == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/sdp", b"Signal=5\r\n"),
        ("text/plain", b"5"),
        ("application/dtmf-relay", b"Duration=160\r\n"),
        ("application/dtmf-relay", b"Signal=E\r\n"),
        ("application/dtmf-relay", b"Signal=16\r\n"),
        ("application/dtmf-relay", b"Signal\r\n"),
        ("application/dtmf-relay", b"\xff\xfe"),
        ("application/dtmf", b""),
        ("application/dtmf", b"55"),
    ],
)
def test_parse_info_rejects(content_type: str, body: bytes) -> None:
    """Other content types and bodies without one valid digit give None."""
    assert parse_dtmf_info(content_type, body) is None


def test_build_info_round_trip() -> None:
    """build_dtmf_info produces a dtmf-relay body that parse_dtmf_info reads back."""
    content_type, body = build_dtmf_info("*", 160)
    assert (content_type, body) == ("application/dtmf-relay", b"Signal=*\r\nDuration=160\r\n")
    assert parse_dtmf_info(content_type, body) == ("*", 160)


@pytest.mark.parametrize(("digit", "duration"), [("X", 100), ("1", 0), ("11", 100)])
def test_build_info_rejects(digit: str, duration: int) -> None:
    """A digit outside DIGITS or a non-positive duration raises ValueError."""
    with pytest.raises(ValueError):
        build_dtmf_info(digit, duration)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60), st.sampled_from(["application/dtmf-relay", "application/dtmf"]))
def test_parse_info_never_crashes(text: str, content_type: str) -> None:
    """Arbitrary bodies give a valid (digit, duration) or None."""
    result = parse_dtmf_info(content_type, text.encode())
    assert result is None or (result[0] in DIGITS and result[1] > 0)
