"""The journal of open call legs: its line format, its state, and ABORTED records after a crash.

Theory of operation
-------------------
``calls.journal`` (in the spool directory) is append-only JSON lines, one per event:

- ``{"op":"open","call_id":…,"run":…,"at":…,"known":{…}}`` at admission, with what is known
  in ``CdrRecord`` field names (uuid, trunk, numbers, start_stamp …); a compacted file adds
  ``"seen"``, the last time the leg was heard of;
- ``{"op":"update","call_id":…,"run":…,"at":…,"known":{…}}`` more facts (answer_stamp …);
- ``{"op":"close","call_id":…}`` the leg's record is on disk;
- ``{"op":"alive","run":…,"at":…}`` the writer's heartbeat; ``run`` names one process's life.

``JournalState`` replays those lines into the open legs and each run's last heartbeat; an
unreadable line (the torn tail left by a crash) is skipped and counted. ``compacted()`` is the
whole file again without closed legs: one ``open`` line per open leg and the heartbeats of
the runs that still have one.

After a crash, ``aborted_record`` turns an open leg into its ABORTED record: status "aborted",
end_reason "aborted", hangup_by "server", hangup_cause "CRASH" (FreeSWITCH's name for it; no
Q.850 cause applies), disposition ANSWERED if an answer_stamp is known, else the one the
journal knew (never ANSWERED), else FAILED. Its end_stamp is the last moment the server
provably had the call: the later of the leg's last journal time and its run's last
heartbeat, capped at the recovery time and never before the start or answer. A leg whose
record is in a day file lost only its close line; ``recorded_call_ids`` finds those so that
recovery writes no duplicate.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path

import structlog

from callserver.cdr.record import CdrRecord, parse_stamp, utc_stamp

__all__ = [
    "JOURNAL_NAME",
    "JournalState",
    "OpenCall",
    "aborted_record",
    "day_file_name",
    "dumps_line",
    "earliest_stamp",
    "is_day_file",
    "recorded_call_ids",
]

log = structlog.get_logger("callserver.cdr")

JOURNAL_NAME = "calls.journal"
_DAY_FILE = re.compile(r"\d{4}-\d{2}-\d{2}\.jsonl")
# to_json writes uuid first and call_id second, and no value holds an unescaped quote.
_CALL_ID = re.compile(rb'^\{"uuid":"(?:[^"\\\n]|\\.)*","call_id":("(?:[^"\\\n]|\\.)*")', re.M)
_NAMESPACE = uuid.UUID("6f0b7e52-2f43-4c1e-9a57-3d1f0c0d5a11")
_RECORD_FIELDS = frozenset(f.name for f in fields(CdrRecord)) - {"duration", "billsec", "billmsec"}


def day_file_name(record: CdrRecord) -> str:
    """The spool file of ``record``: ``YYYY-MM-DD.jsonl`` for the UTC date of its end_stamp."""
    return f"{record.end_stamp[:10]}.jsonl"


def is_day_file(name: str) -> bool:
    """Whether ``name`` is a spool day file (``YYYY-MM-DD.jsonl``)."""
    return _DAY_FILE.fullmatch(name) is not None


def dumps_line(entry: Mapping[str, object]) -> bytes:
    """One journal line: compact ASCII JSON (unknown types as ``str``) and a newline."""
    return json.dumps(entry, separators=(",", ":"), default=str).encode("ascii") + b"\n"


@dataclass(slots=True)
class OpenCall:
    """A leg the journal has opened and not closed."""

    run: str
    opened: str
    seen: str
    known: dict[str, object] = field(default_factory=dict)


class JournalState:
    """The open legs and every run's last heartbeat, replayed from journal lines.

    Args:
        run: The id of this process's run, written on its open and alive lines.
    """

    def __init__(self, run: str) -> None:
        self.run = run
        self.calls: dict[str, OpenCall] = {}
        self.alive: dict[str, str] = {}
        self.malformed = 0

    def load(self, data: bytes) -> None:
        """Replay the lines of a journal file; count the ones that cannot be read."""
        for line in data.splitlines():
            try:
                self._replay(json.loads(line))
            except (ValueError, TypeError, KeyError):  # a torn last line, or a foreign one
                self.malformed += 1

    def open(self, call_id: str, at: str, known: dict[str, object]) -> bytes:
        """Open a leg; return its line."""
        self.calls[call_id] = OpenCall(self.run, at, at, known)
        return dumps_line(
            {"op": "open", "call_id": call_id, "run": self.run, "at": at, "known": known}
        )

    def update(self, call_id: str, at: str, known: dict[str, object]) -> bytes | None:
        """Add facts to an open leg; return its line, or None if the leg is not open."""
        call = self.calls.get(call_id)
        if call is None:
            return None
        call.known.update(known)
        call.seen = max(call.seen, at)
        return dumps_line(
            {"op": "update", "call_id": call_id, "run": self.run, "at": at, "known": known}
        )

    def close(self, call_id: str) -> bytes | None:
        """Close a leg; return its line, or None if it was not open."""
        if self.calls.pop(call_id, None) is None:
            return None
        return dumps_line({"op": "close", "call_id": call_id})

    def heartbeat(self, at: str) -> bytes:
        """Note that this run is alive at ``at``; return the line."""
        self.alive[self.run] = at
        return dumps_line({"op": "alive", "run": self.run, "at": at})

    def compacted(self) -> bytes:
        """The whole journal without closed legs (heartbeats of runs still needed, then opens)."""
        runs = sorted({call.run for call in self.calls.values()} | {self.run})
        lines = [
            dumps_line({"op": "alive", "run": run, "at": self.alive[run]})
            for run in runs
            if run in self.alive
        ]
        for call_id, c in self.calls.items():
            entry = {"call_id": call_id, "run": c.run, "at": c.opened, "seen": c.seen}
            lines.append(dumps_line({"op": "open", **entry, "known": c.known}))
        return b"".join(lines)

    def _replay(self, entry: dict[str, object]) -> None:
        op, at = entry["op"], str(entry.get("at"))
        if op != "close":
            parse_stamp(at)
        if op == "alive":
            run = str(entry["run"])
            self.alive[run] = max(self.alive.get(run, ""), at)
            return
        call_id, known = entry["call_id"], entry.get("known", {})
        if not isinstance(call_id, str) or not isinstance(known, dict):
            raise ValueError("journal entry without a call_id string or a known object")
        if op == "open":
            seen = max(at, _valid_stamp(entry.get("seen")) or at)
            self.calls[call_id] = OpenCall(str(entry["run"]), at, seen, known)
        elif op == "update" and call_id in self.calls:
            self.calls[call_id].known.update(known)
            self.calls[call_id].seen = max(self.calls[call_id].seen, at)
        elif op == "close":
            self.calls.pop(call_id, None)


def recorded_call_ids(directory: Path, since: str) -> set[str]:
    """The call_ids of the records in day files dated from the day before ``since`` on.

    Recovery passes the earliest moment any orphan is known by (see ``earliest_stamp``), so
    the day file of a record is read even when its own clock put it before its journal line.

    Raises:
        OSError: if a day file cannot be read.
    """
    first = (parse_stamp(since) - timedelta(days=1)).date().isoformat()
    found: set[str] = set()
    for path in sorted(directory.iterdir()):
        if is_day_file(path.name) and path.name[:10] >= first:
            found.update(json.loads(m) for m in _CALL_ID.findall(path.read_bytes()))
    return found


def earliest_stamp(call: OpenCall) -> str:
    """The earliest stamp a leg is known by: its journal open time or its known start_stamp.

    A record goes to the day file of its own stamps, which can fall on an earlier day than the
    journal line that opened it (a leg opened just after midnight UTC, another clock).
    """
    start = _valid_stamp(call.known.get("start_stamp"))
    return min(call.opened, start) if start else call.opened


def aborted_record(call_id: str, call: OpenCall, alive: str | None, now: str) -> CdrRecord:
    """The ABORTED record of a leg left open by a crash (see the module docstring).

    Args:
        call_id: The leg's SIP Call-ID (the journal key).
        call: What the journal knew of it.
        alive: The last heartbeat of the run that opened it, if any.
        now: The recovery time, a CDR stamp.
    """
    start = _valid_stamp(call.known.get("start_stamp")) or call.opened
    answer = _valid_stamp(call.known.get("answer_stamp"))
    end = max(min(max(call.seen, alive or call.seen), now), start, answer or start)
    disposition = "ANSWERED" if answer else "FAILED"
    base: dict[str, object] = {
        "uuid": str(uuid.uuid5(_NAMESPACE, f"{call_id}/{call.opened}")),
        "direction": "inbound",
    }
    known = {k: v for k, v in call.known.items() if k in _RECORD_FIELDS}
    if not answer and known.get("disposition", "ANSWERED") != "ANSWERED":
        disposition = str(known["disposition"])  # e.g. CANCELLED, known before the crash
    forced: dict[str, object] = {
        "call_id": call_id,
        "start_stamp": start,
        "answer_stamp": answer,
        "end_stamp": end,
        "disposition": disposition,
        "status": "aborted",
        "end_reason": "aborted",
        "hangup_by": "server",
        "hangup_cause": "CRASH",
        "q850_cause": None,
        "sip_code": None,
    }
    try:
        return CdrRecord.from_dict({**base, **known, **forced})
    except ValueError as exc:  # a known value that does not fit a record: keep what is certain
        log.error("cdr.recovery_known_invalid", call_id=call_id, error=str(exc))
        forced["disposition"] = "ANSWERED" if answer else "FAILED"
        return CdrRecord.from_dict({**base, **forced})


def _valid_stamp(value: object) -> str | None:
    try:
        return utc_stamp(parse_stamp(value)) if isinstance(value, str) else None
    except ValueError:
        return None
