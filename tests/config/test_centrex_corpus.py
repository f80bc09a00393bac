"""The centrex.yaml bad-file corpus: each file in tests/centrex/bad fails with its message.

Files are named for their mistake; each is loaded against customers ``callcentre-demo`` (no
numbers of its own) and ``numbered`` (numbers written in trunks.yaml), with a dialplan file for
+38733100250, as the server loads it beside trunks.yaml and the dialplans directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.config.centrex import load_centrex
from callserver.config.errors import OperatorFileError
from callserver.config.trunks import CustomerConfig

BAD_DIR = Path(__file__).resolve().parents[1] / "centrex" / "bad"
CUSTOMERS = {
    "callcentre-demo": CustomerConfig(),
    "numbered": CustomerConfig(numbers=["033 100 200"]),
}
PASSWD = "`callserver passwd USERNAME REALM`"
SUB = "groups.office.subscribers"

BAD: dict[str, list[str]] = {
    "service-code-twice": [":5: service_codes: dnd and forward_always both have the code '21'"],
    "service-code-not-digits": [
        ":6: service_codes.call_waiting: '4*3': a service code is 1 to 4 digits (quote it: \"21\")"
    ],
    "mcid-window-too-long": [
        ":6: service_codes.mcid_window_seconds: Input should be less than or equal to 3600"
    ],
    "service-code-unknown": [
        ":6: service_codes.pickup_everything: unknown key (misspelt, or in the wrong place?)"
    ],
    "bad-forward-target": [
        f":11: {SUB}.+387 33 100 201.services.forward_busy: 'mailbox': a "
        "forwarding target is a number, an extension or VM"
    ],
    "block-backwards": [
        ":4: groups.office.numbers.0: '+387 33 100 299-200': the block ends before it starts"
    ],
    "block-not-e164": [
        ":4: groups.office.numbers.0: '100-199': a block holds full numbers: write it in "
        "E.164 (+387 ...)"
    ],
    "customer-numbers-twice": [
        ":3: groups.office.customer: customer 'numbered' also lists numbers in trunks.yaml: "
        "a customer with a Centrex group takes its numbers from the group; remove them there"
    ],
    "duplicate-extension": [
        f":13: {SUB}.+387 33 100 202.extension: extension 201 is already +38733100201's "
        "in this group"
    ],
    "duplicate-number": [f":10: {SUB}.+38733100201: +38733100201 is a subscriber twice"],
    "duplicate-username": [
        f":11: {SUB}.+387 33 100 202.username: username 'same' is already +38733100201's: "
        "usernames are unique"
    ],
    "no-answer-too-short": [
        f":10: {SUB}.+387 33 100 201.services.no_answer_seconds: Input should be greater "
        "than or equal to 5"
    ],
    "no-extension": [
        f":6: {SUB}.+387 33 100 201: needs an extension: set one, or the group's extensions.digits"
    ],
    "no-ha1": [
        f":7: {SUB}.+387 33 100 201: a subscriber needs ha1_md5 or ha1_sha256 (or both): "
        f"{PASSWD} prints them"
    ],
    "no-numbers": [
        ":4: groups.office.numbers: List should have at least 1 item after validation, not 0"
    ],
    "number-outside-block": [
        f":7: {SUB}.+387 33 100 301: +38733100301 is not in the group's numbers"
    ],
    "number-with-dialplan": [
        f":7: {SUB}.+387 33 100 250: +38733100250 has a dialplan file too: a number is "
        "either a subscriber's or a dialplan's"
    ],
    "overlapping-blocks": [
        ":7: groups.branch.numbers.0: +38733100250 to +38733100259 overlaps a block of "
        "group 'office'"
    ],
    "password-key": [
        f":9: {SUB}.+387 33 100 201.password: a plain password is never stored: run {PASSWD} "
        "and "
        "paste its ha1_md5 and ha1_sha256 lines instead"
    ],
    "realm-not-trunks": [
        ":6: groups.office.realm: realm 'phones.example' is not trunks.yaml's digest realm "
        "'callserver': phones are challenged in that realm, so this group's could never "
        "authenticate"
    ],
    "short-ha1": [
        f":9: {SUB}.+387 33 100 201.ha1_md5: an MD5 HA1 is 32 lower-case hex digits, as "
        f"{PASSWD} prints it"
    ],
    "short-subscriber-number": [
        f":7: {SUB}.201: '201' is not a full number: write it in E.164 (+387 ...)"
    ],
    "unknown-barring-class": [
        f":10: {SUB}.+387 33 100 201.barring: unknown barring class 'abroad'; the barring "
        "classes are outside_group, premium, international, mobile, long_distance, short"
    ],
    "unknown-customer": [
        ":3: groups.office.customer: 'nobody-inc' is not a customer of trunks.yaml"
    ],
    "unknown-lock": [
        ":7: groups.office.services.locks: hold: not a service that can be locked; these "
        "are call_waiting, dnd, forward_always, forward_busy, forward_no_answer, "
        "forward_unreachable"
    ],
    "unknown-role": [
        f":10: {SUB}.+387 33 100 201.role: 'boss': a subscriber's role is one of supervisor "
        "(or none)"
    ],
    "supervisor-code-begins-another": [
        ":5: service_codes: listen's code '22' begins whisper's '223': a supervisor's codes "
        "are followed by an extension, so none may begin another"
    ],
    "agent-code-begins-another": [
        ":5: service_codes: agent_login's code '4' begins call_waiting's '43': an agent's code "
        "may begin no other code, and no code may begin it"
    ],
    "unknown-key": [
        f":10: {SUB}.+387 33 100 201.voicemail: unknown key (misspelt, or in the wrong place?)"
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
        load_centrex(
            path, customers=CUSTOMERS, dialplan_numbers=["38733100250"], realm="callserver"
        )
    assert caught.value.errors == [f"{path}{line}" for line in BAD[name]]


def test_a_refused_password_is_not_repeated() -> None:
    """The error for a password key names the key, never the password written there."""
    with pytest.raises(OperatorFileError) as caught:
        load_centrex(BAD_DIR / "password-key.yaml", customers=CUSTOMERS)
    assert "phone-201-secret" not in str(caught.value)
