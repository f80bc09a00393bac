"""The campaign file: a good file's fields and numbers, and each bad file's message."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.campaigns.file import load_campaign
from callserver.config.errors import OperatorFileError

BAD_DIR = Path(__file__).resolve().parent / "bad"
CUSTOMERS = {"acme": 3, "beta": None}
PLANS = {"+38733100500", "+38733100600"}
OWNERS = {"38733100500": "acme", "38733100600": "beta"}  # the customers' numbers
NOT_A_NUMBER = "is not a telephone number: use digits after an optional +"

# file name: its error lines after the file's path, or a CSV's (from "@": the folder)
BAD: dict[str, list[str]] = {
    "caller-id-not-a-number": [f":3: caller_id: 'reception' {NOT_A_NUMBER}"],
    "csv-bad-number": [f"@/csv-bad-number.csv:3: number: '+38761 ABC' {NOT_A_NUMBER}"],
    "csv-column-name": [
        "@/csv-column-name.csv:1: first name: a column name is a variable name (letters, _)"
    ],
    "csv-columns": ["@/csv-columns.csv:3: row: 1 columns where the header has 2"],
    "csv-empty": [":1: numbers: @/csv-empty.csv lists no numbers"],
    "csv-no-number-column": [
        "@/csv-no-number-column.csv:1: number: the header row has no 'number' column"
    ],
    "csv-twice": ["@/csv-twice.csv:4: number: +38761000001 is listed twice (first at line 2)"],
    "customer-missing": [":1: customer: Field required"],
    "numbers-missing": [":1: numbers: cannot read @/missing.csv: No such file or directory"],
    "over-channels": [
        ":9: pacing.max_in_progress: 5 calls in progress is more than the 3 channels of "
        "customer 'acme'"
    ],
    "pacing-zero-rate": [":9: pacing.calls_per_second: Input should be greater than 0"],
    "plan-of-another-customer": [
        ":4: plan: +38733100600 is customer 'beta''s number: run one of 'acme''s"
    ],
    "plan-without-dialplan": [
        ":4: plan: +38733100999 has no dialplan; name a number of the dialplans"
    ],
    "retry-unknown-result": [
        ":10: retries.when.1: Input should be 'busy', 'no_answer' or 'failed'"
    ],
    "unknown-customer": [":2: customer: 'nobody' is not a customer of trunks.yaml (acme, beta)"],
    "unknown-field": [":11: schedule: unknown key (misspelt, or in the wrong place?)"],
    "window-bad-time": [
        ":8: window.open.mon-fri: '25:00' is not a time of day (HH:MM, 00:00-24:00)"
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
        load_campaign(path, customers=CUSTOMERS, plans=PLANS, owners=OWNERS)
    lines = [line if line.startswith("@") else f"{path}{line}" for line in BAD[name]]
    expected = [line.replace("@", str(BAD_DIR)) for line in lines]
    assert caught.value.errors == expected


def test_good_file_reads_fields_numbers_and_variables(tmp_path: Path) -> None:
    """A good file gives its name, rules and E.164 numbers with their CSV lines and columns."""
    (tmp_path / "spring.csv").write_text(
        "number,first_name,due\n+387 61 000 001,Amra,12.50\n\n061 000 002,Ivo,3.00\n"
    )
    source = tmp_path / "spring.yaml"
    source.write_text(
        "numbers: spring.csv\ncustomer: beta\ncaller_id: '033 100 200'\nplan: '+38733100500'\n"
        "window: {open: {mon-sun: '00:00-24:00'}}\npacing: {max_in_progress: 50}\n"
    )
    campaign = load_campaign(source, customers=CUSTOMERS, plans=PLANS)
    assert campaign.name == "spring"
    assert campaign.settings.caller_id == "+38733100200"
    assert campaign.settings.retries.when == ("busy", "no_answer")
    rows = [(e.number, e.line, dict(e.variables)) for e in campaign.entries]
    assert rows == [
        ("+38761000001", 2, {"first_name": "Amra", "due": "12.50"}),
        ("+38761000002", 4, {"first_name": "Ivo", "due": "3.00"}),
    ]
