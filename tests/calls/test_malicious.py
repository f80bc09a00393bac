"""MCID: the last incoming call of a subscriber, marked with a log event and a CDR mark."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from structlog.testing import capture_logs

from callserver.calls.malicious import MaliciousCalls, Received
from callserver.cdr.marks import MARKS_FILE, CdrMark, parse_mark

NUMBER = "+38733100201"
WITHHELD = Received(
    from_header='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    asserted="<sip:+38761000111@192.0.2.1>",
    privacy="id",
    source="192.0.2.1:5060",
)


async def test_the_last_incoming_call_is_marked_with_its_caller_as_received(
    tmp_path: Path,
) -> None:
    """Only the last call is kept; marking it logs the caller's headers and source and
    appends its CDR mark; a subscriber with no incoming call has nothing to mark."""
    clock = iter(
        [
            datetime(2026, 12, 7, 9, 0, tzinfo=UTC),  # the first call
            datetime(2026, 12, 7, 9, 1, tzinfo=UTC),  # the second
            datetime(2026, 12, 7, 9, 2, 30, tzinfo=UTC),  # *39
        ]
    )
    calls = MaliciousCalls(tmp_path, clock=lambda: next(clock))
    calls.incoming(NUMBER, "first", WITHHELD)
    calls.incoming(NUMBER, "second", WITHHELD)
    calls.incoming(NUMBER, "ignored", None)  # no INVITE seen: nothing to identify
    assert not calls.mark("+38733100202")
    with capture_logs() as logs:
        assert calls.mark(NUMBER)
    await calls.close()
    (event,) = [e for e in logs if e["event"] == "call.malicious"]
    assert event["call_id"] == "second" and event["privacy"] == "id"
    assert event["p_asserted_identity"] == WITHHELD.asserted
    assert event["source"] == "192.0.2.1:5060"
    assert event["call_time"] == "2026-12-07T09:01:00.000Z"
    assert event["marked_at"] == "2026-12-07T09:02:30.000Z"
    (line,) = (tmp_path / MARKS_FILE).read_bytes().splitlines()
    assert parse_mark(line) == CdrMark(call_id="second", malicious="2026-12-07T09:02:30.000Z")
