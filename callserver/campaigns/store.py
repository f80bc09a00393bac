"""A started campaign's folder, ``<data_dir>/campaigns/<name>/``: the files and the state.

    campaign.yaml   the campaign file as started (a copy)
    numbers.csv     its numbers (a copy: the file's ``numbers`` is read from here)
    state.json      the scheduler's snapshot and the progress ``status`` prints
    results.csv     one row a number with its final result, appended and fsync'd
    stopped         present once ``callserver campaign stop`` stopped it

``results.csv`` is the record of what is final: a row is written (and fsync'd) before the
state that follows it, so after a crash a number with a row is never called again.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from callserver.campaigns.schedule import RESULTS, Final, Progress, Result, Window
from callserver.process.durable import sync_directory, write_json

__all__ = [
    "RESULT_FIELDS",
    "CampaignFolder",
    "campaign_name",
]

RESULT_FIELDS = ("number", "result", "attempts", "finished_at", "answers")
CAMPAIGN_FILE, NUMBERS_FILE, STATE_FILE, RESULTS_FILE, STOPPED = (
    "campaign.yaml",
    "numbers.csv",
    "state.json",
    "results.csv",
    "stopped",
)


def campaign_name(source: Path, data: Mapping[str, Any]) -> str:
    """A campaign's name: its file's ``name``, else the file's name without .yaml."""
    name = data.get("name")
    return str(name) if name else source.stem


class CampaignFolder:
    """The folder of the started campaign ``name`` under ``root`` (``<data_dir>/campaigns``)."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.path = root / name

    @property
    def campaign_file(self) -> Path:
        """The copy of the campaign file."""
        return self.path / CAMPAIGN_FILE

    @property
    def numbers_file(self) -> Path:
        """The copy of its numbers."""
        return self.path / NUMBERS_FILE

    @property
    def results_file(self) -> Path:
        """Its results, one row a number."""
        return self.path / RESULTS_FILE

    def started(self) -> bool:
        """True when the campaign was started (its copy is here)."""
        return self.campaign_file.is_file()

    def stopped(self) -> bool:
        """True when ``stop`` marked it stopped."""
        return (self.path / STOPPED).exists()

    def done(self) -> bool:
        """True when its last state says every number has its result."""
        progress = self.read_state().get("progress")
        return isinstance(progress, dict) and progress.get("status") == "done"

    def in_force(self) -> bool:
        """True when the server runs it: started, neither stopped nor done."""
        return self.started() and not self.stopped() and not self.done()

    def start(self, source: Path, numbers: Path) -> None:
        """Copy the campaign file and its numbers here (durably); a stopped one restarts."""
        self.path.mkdir(parents=True, exist_ok=True)
        for origin, copy in ((source, self.campaign_file), (numbers, self.numbers_file)):
            part = copy.with_name(f".{copy.name}.part")
            shutil.copyfile(origin, part)
            _fsync(part)
            part.replace(copy)
        (self.path / STOPPED).unlink(missing_ok=True)
        sync_directory(self.path)
        sync_directory(self.path.parent)

    def stop(self) -> None:
        """Mark the campaign stopped: no new call is placed (calls in progress finish)."""
        marker = self.path / STOPPED
        marker.touch()
        _fsync(marker)
        sync_directory(self.path)

    def read_state(self) -> dict[str, Any]:
        """The last state written (empty before the first)."""
        try:
            data = json.loads((self.path / STATE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(
        self,
        snapshot: dict[str, object],
        progress: Progress,
        status: str,
        window: Window | None = None,
    ) -> None:
        """Replace the state: the scheduler's ``snapshot`` and the progress (with the window
        as it was then, when given), durably."""
        shown: dict[str, object] = {
            "status": status,
            "numbers": progress.numbers,
            "dialled": progress.dialled,
            "in_progress": progress.in_progress,
            "waiting": progress.waiting,
            "results": dict(progress.results),
            "next_retry": None if progress.next_retry is None else progress.next_retry.isoformat(),
        }
        if window is not None:
            opens = window.opens
            shown["window"] = {
                "status": window.status,
                "holiday": window.holiday,
                "opens": None if opens is None else opens.isoformat(),
                "timezone": None if opens is None else str(opens.tzinfo),
            }
        write_json(self.path / STATE_FILE, {"progress": shown, "schedule": snapshot})

    def append_result(self, final: Final) -> None:
        """Add ``final``'s row to results.csv and fsync it (the header first, once)."""
        path = self.results_file
        new = not path.exists()
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        if new:
            writer.writerow(RESULT_FIELDS)
        answers = json.dumps(dict(final.answers), ensure_ascii=False) if final.answers else ""
        writer.writerow((final.number, final.result, final.attempts, final.at.isoformat(), answers))
        with path.open("a", encoding="utf-8", newline="") as out:
            out.write(text.getvalue())
            out.flush()
            os.fsync(out.fileno())
        if new:
            sync_directory(self.path)

    def read_results(self) -> list[Final]:
        """The final results written so far (rows a crash cut short are left out)."""
        try:
            text = self.results_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        finals = []
        for row in csv.DictReader(io.StringIO(text, newline="")):
            final = _final(row)
            if final is not None:
                finals.append(final)
        return finals


def _final(row: Mapping[str, str | None]) -> Final | None:
    result = row.get("result")
    try:
        answers = json.loads(row.get("answers") or "{}")
        at = datetime.fromisoformat(row.get("finished_at") or "")
        attempts = int(row.get("attempts") or "")
    except ValueError:
        return None
    if result not in RESULTS or not row.get("number") or not isinstance(answers, dict):
        return None
    chosen: Result = result
    return Final(
        number=str(row["number"]), result=chosen, attempts=attempts, at=at, answers=answers
    )


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())
