"""The trunks.yaml bad-file corpus: each file in tests/trunks/bad fails with its message.

Files are named for their mistake: route prefixes, the emergency section and a trunk's main
number, the fields originating calls read; a customer's call recording (and, as ``callserver
check`` loads it, its announcement's prompts) and retention.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.errors import OperatorFileError
from callserver.config.trunks import load_trunks
from callserver.media.prompts import PromptStore

BAD_DIR = Path(__file__).resolve().parents[1] / "trunks" / "bad"
PROMPTS = PromptStore(Path(__file__).resolve().parents[2] / "prompts", lambda language: [language])
HINT = "write digits after an optional +, 00 or 0 ('+387 33'; '+' is every number)"

BAD: dict[str, list[str]] = {
    "customer-agents-negative": [
        ":4: customers.acme.agents: -1 is not a number of agent licences: write a whole "
        "number, 0 or more (agents: 2 lets two agents be logged in at once)"
    ],
    "customer-number-range": [
        ":5: customers.acme.numbers.1: '+387 33 100 250-259' reads as +38733100250259, which "
        "is not a possible number: write one number each (a block of numbers belongs to a "
        "group in centrex.yaml)"
    ],
    "customer-recording-announcement-missing": [
        ":6: customers.acme.recording.announcement.1: prompt 'recording_notice_typo' is "
        "missing for language en"
    ],
    "customer-recording-calls": [
        ":3: customers.acme.recording.calls: Input should be 'all' or 'none'"
    ],
    "customer-recording-mode": [
        ":6: customers.acme.recording.mode: Input should be 'mixed' or 'stereo'"
    ],
    "customer-recording-retention": [
        ":5: customers.acme.recording_retention_days: Input should be less than or equal to 3650"
    ],
    "emergency-bad-number": [
        ":2: emergency.numbers: 'fire' is not a telephone number: use digits after an optional +"
    ],
    "emergency-no-numbers": [
        ":2: emergency.numbers: list the emergency numbers (112, 122, 123, 124), or leave it out"
    ],
    "emergency-no-routes": [":2: emergency.route: route 'psap' is not one of the routes (none)"],
    "emergency-unknown-route": [
        ":9: emergency.route: route 'psap' is not one of the routes (pstn, mobile)"
    ],
    "prefix-not-a-number": [
        f":6: routes.pstn.prefixes.1: prefix 'abroad' is not the beginning of a number: {HINT}"
    ],
    "prefix-pattern": [
        f":4: routes.pstn.prefixes.1: prefix '+387 6x': a route carries a prefix, not a "
        f"pattern: {HINT}"
    ],
    "prefix-too-long": [
        ":4: routes.pstn.prefixes.0: prefix '+387 33 100 200 300 400' is longer than the 15 "
        "digits of E.164"
    ],
    "prefix-twice": [
        ":4: routes.pstn.prefixes: prefix +38733 is listed twice (written differently, perhaps)"
    ],
    "trunk-number-letters": [
        ":4: trunks.acme-pbx.number: '+387 33 PBX' is not a telephone number: use digits "
        "after an optional +"
    ],
    "trunk-number-short": [
        ":7: trunks.acme-pbx.number: '200' is not a full number: write it in E.164 (+387 ...)"
    ],
}


def test_every_bad_file_has_its_message() -> None:
    """The corpus and the table name the same files, so no bad file goes unchecked."""
    assert sorted(path.stem for path in BAD_DIR.glob("*.yaml")) == sorted(BAD)


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_file_fails_with_its_message(name: str) -> None:
    """Loading the bad file raises OperatorFileError with exactly its file:line: field lines."""
    path = BAD_DIR / f"{name}.yaml"
    with pytest.raises(OperatorFileError) as caught:
        load_trunks(path, missing_prompt=_shipped_missing)
    assert caught.value.errors == [f"{path}{line}" for line in BAD[name]]


def _shipped_missing(name: str) -> list[str]:
    """The languages a prompt is missing for among the shipped English prompts, as
    ``callserver check`` asks (the default language, en)."""
    return [] if PROMPTS.exists(name, "en") else ["en"]


def test_without_the_prompts_an_announcement_is_not_looked_for() -> None:
    """The server's load (no prompt check) takes the file: a missing prompt is skipped."""
    trunks = load_trunks(BAD_DIR / "customer-recording-announcement-missing.yaml")
    recording = trunks.customers["acme"].recording
    assert recording.announcement == ["goodbye", "recording_notice_typo"]
