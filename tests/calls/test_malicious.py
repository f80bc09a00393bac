"""MCID: the last incoming call of a subscriber, kept in the data dir, marked within a window."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from structlog.testing import capture_logs

from callserver.calls.incoming_store import SqliteIncomingStore
from callserver.calls.malicious import MaliciousCalls, Received
from callserver.cdr.marks import MARKS_FILE, CdrMark, parse_mark

NUMBER = "+38733100201"
WITHHELD = Received(
    from_header='"Anonymous" <sip:anonymous@anonymous.invalid>;tag=1',
    asserted="<sip:+38761000111@192.0.2.1>",
    privacy="id",
    source="192.0.2.1:5060",
)
T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _open(data_dir: Path, now: datetime, window: float = 60.0) -> MaliciousCalls:
    store = SqliteIncomingStore(data_dir / "mcid.sqlite")
    spool = data_dir / "cdr"
    return MaliciousCalls(spool, store, asyncio.get_running_loop(), lambda: window, now)


def _marks(data_dir: Path) -> list[CdrMark]:
    return [parse_mark(line) for line in (data_dir / "cdr" / MARKS_FILE).read_bytes().splitlines()]


async def test_the_last_incoming_call_is_marked_with_its_caller_as_received(
    tmp_path: Path,
) -> None:
    """Only the last call is kept; marking it logs the caller's headers, source, start and end
    and appends its CDR mark; a subscriber with no incoming call has nothing to mark."""
    calls = _open(tmp_path, T0)
    calls.incoming(NUMBER, "first", WITHHELD, _at(0))(_at(30))
    calls.incoming(NUMBER, "second", WITHHELD, _at(60))(_at(90))
    assert not calls.mark("+38733100202", _at(95))
    with capture_logs() as logs:
        assert calls.mark(NUMBER, _at(150))
    await calls.close()
    (event,) = [e for e in logs if e["event"] == "call.malicious"]
    assert event["call_id"] == "second" and event["privacy"] == "id"
    assert event["p_asserted_identity"] == WITHHELD.asserted
    assert event["source"] == "192.0.2.1:5060"
    assert event["call_time"] == "2026-12-07T09:01:00.000Z"
    assert event["call_ended"] == "2026-12-07T09:01:30.000Z"
    assert event["marked_at"] == "2026-12-07T09:02:30.000Z"
    assert _marks(tmp_path) == [CdrMark(call_id="second", malicious="2026-12-07T09:02:30.000Z")]


async def test_the_last_incoming_call_survives_a_restart(tmp_path: Path) -> None:
    """The call and its caller as received are read back from mcid.sqlite after a restart,
    and *39 within the window then marks it."""
    calls = _open(tmp_path, T0)
    calls.incoming(NUMBER, "before-restart", WITHHELD, _at(0))(_at(20))
    await calls.close()
    again = _open(tmp_path, _at(40))
    last = again.last(NUMBER)
    assert last is not None and last.received == WITHHELD
    assert (last.call_id, last.at, last.ended) == ("before-restart", _at(0), _at(20))
    assert again.mark(NUMBER, _at(45))
    await again.close()
    assert [m.call_id for m in _marks(tmp_path)] == ["before-restart"]


async def test_star_39_after_the_window_has_nothing_to_mark(tmp_path: Path) -> None:
    """A call that ended longer ago than the window is not marked, and the refusal is logged;
    one that ended exactly the window ago still is."""
    calls = _open(tmp_path, T0, window=30.0)
    calls.incoming(NUMBER, "old", WITHHELD, _at(0))(_at(10))
    with capture_logs() as logs:
        assert not calls.mark(NUMBER, _at(40.001))
    assert [e["event"] for e in logs] == ["call.malicious_none"]
    assert logs[0]["last_ended"] == "2026-12-07T09:00:10.000Z" and logs[0]["window"] == 30.0
    assert calls.mark(NUMBER, _at(40))
    await calls.close()


async def test_a_call_still_going_on_is_marked_and_its_end_kept(tmp_path: Path) -> None:
    """*39 during the incoming call (from a second line) marks it however long it lasts; its
    end is then stored, and an end told after a later call began changes nothing."""
    calls = _open(tmp_path, T0, window=5.0)
    ended = calls.incoming(NUMBER, "ongoing", WITHHELD, _at(0))
    assert calls.mark(NUMBER, _at(3600))
    later = calls.incoming(NUMBER, "later", WITHHELD, _at(3700))
    ended(_at(3800))  # the first call ends after the second began: the second stays last
    last = calls.last(NUMBER)
    assert last is not None and (last.call_id, last.ended) == ("later", None)
    later(_at(3900))
    await calls.close()
    again = _open(tmp_path, _at(4000))
    last = again.last(NUMBER)
    assert last is not None and (last.call_id, last.ended) == ("later", _at(3900))
    await again.close()


async def test_a_call_the_server_stopped_during_ends_when_read_back(tmp_path: Path) -> None:
    """A call whose end was never stored (the server stopped during it) is taken as ended
    when the store is read back, so the window runs from the restart."""
    calls = _open(tmp_path, T0)
    calls.incoming(NUMBER, "cut", WITHHELD, _at(0))
    await calls.close()
    again = _open(tmp_path, _at(500))
    last = again.last(NUMBER)
    assert last is not None and last.ended == _at(500)
    assert again.mark(NUMBER, _at(550)) and not again.mark(NUMBER, _at(561))
    await again.close()
    third = _open(tmp_path, _at(9000))
    last = third.last(NUMBER)
    assert last is not None and last.ended == _at(500)  # written back, not moved again
    await third.close()
