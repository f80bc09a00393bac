"""Number lists: entries, matching (exact, prefix, anonymous), reasons, errors, shipped file."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.policy.blacklist import (
    Blacklist,
    BlacklistError,
    BlacklistHit,
    EntryKind,
    EntryProblem,
    NumberList,
    NumberListError,
    NumberListHit,
    parse_blacklist,
    parse_number_list,
)
from callserver.policy.caller import CallerId, caller_identity

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "blacklist.txt"
SOURCE = "config/blacklist.txt"
SYNTAX = "(digits, an optional leading +, an optional trailing *)"


def listed(*lines: str) -> NumberList:
    return parse_blacklist("\n".join(lines), SOURCE)


def calling(user: str | None, asserted: str | None = None, privacy: str | None = None) -> CallerId:
    return caller_identity(user, None, asserted, privacy)


def matched(number_list: NumberList, caller: CallerId) -> str | None:
    hit = number_list.match(caller)
    return None if hit is None else hit.entry.text


# -- exact numbers ------------------------------------------------------------------------------

FORMS = ["+38761123456", "0038761123456", "38761123456", "061123456", "061 123 456", "061-123-456"]


@pytest.mark.parametrize("entry", FORMS)
@pytest.mark.parametrize("user", FORMS[:4])
def test_every_form_of_a_number_matches_every_other(entry: str, user: str) -> None:
    """An entry in any form matches a caller presenting the number in any form."""
    hit = listed(entry).match(calling(user))
    assert hit is not None
    assert (hit.entry.kind, hit.entry.key, hit.number) == (
        EntryKind.EXACT,
        "+38761123456",
        "+38761123456",
    )


def test_other_numbers_and_callers_without_a_number_do_not_match() -> None:
    """A neighbouring number, a name and an anonymous caller miss an exact entry."""
    number_list = listed("+38761123456")
    for caller in (calling("061123457"), calling("alice"), calling("anonymous")):
        assert number_list.match(caller) is None


def test_a_short_code_entry_matches_a_short_code_caller() -> None:
    """Without an E.164 number, the From user's short code is matched."""
    assert matched(listed("1282"), calling("1282")) == "1282"
    assert listed("1282").match(calling("12821")) is None


# -- prefixes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "user"),
    [
        ("+3876112*", "061 124 567"),
        ("0038590*", "+385901234567"),
        ("061*", "+38761987654"),
        ("+385*", "00385911234567"),
        ("+387 61 12*", "061124567"),
        ("0*", "033123456"),
    ],
)
def test_a_prefix_matches_every_number_that_begins_with_it(entry: str, user: str) -> None:
    """International, 00 and national prefixes match the numbers under them."""
    hit = listed(entry).match(calling(user))
    assert hit is not None and hit.entry.kind is EntryKind.PREFIX


def test_a_prefix_matches_the_number_equal_to_it_but_not_its_neighbours() -> None:
    """``+3876112*`` matches +3876112 itself, and not +3876113... or +387611."""
    number_list = listed("+3876112*")
    assert matched(number_list, CallerId(raw="x", e164="+3876112")) == "+3876112*"
    assert number_list.match(calling("+38761131234")) is None
    assert number_list.match(CallerId(raw="x", e164="+387611")) is None


def test_exact_beats_prefix_and_longer_prefix_beats_shorter() -> None:
    """Whatever the order of the file, the most specific entry answers."""
    number_list = listed("06*", "+38761*", "+3876112*", "+38761123456")
    assert matched(number_list, calling("061123456")) == "+38761123456"
    assert matched(number_list, calling("061124000")) == "+3876112*"
    assert matched(number_list, calling("061999000")) == "+38761*"
    assert matched(number_list, calling("062999000")) == "06*"
    assert number_list.match(calling("033999000")) is None


# -- anonymous and P-Asserted-Identity ----------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "privacy"),
    [("anonymous", None), ("Restricted", None), ("", None), ("061123456", "id")],
)
def test_anonymous_matches_withheld_callers(user: str, privacy: str | None) -> None:
    """The keyword (any case) catches anonymous From users and Privacy: id."""
    hit = listed("+38599*", "ANONYMOUS  # withheld").match(calling(user, privacy=privacy))
    assert hit is not None
    assert (hit.entry.kind, hit.number, hit.reason) == (EntryKind.ANONYMOUS, None, "withheld")


def test_anonymous_does_not_match_a_presented_number() -> None:
    """A caller who shows the number is not caught by ``anonymous``."""
    assert listed("anonymous").match(calling("061123456")) is None


def test_a_number_entry_beats_anonymous_for_a_withheld_caller_with_an_asserted_number() -> None:
    """The asserted number of a withheld caller is matched before ``anonymous``."""
    number_list = listed("anonymous", "+38761123456  # known nuisance")
    caller = calling("anonymous", asserted="+38761123456", privacy="id")
    assert matched(number_list, caller) == "+38761123456"


def test_p_asserted_identity_is_what_is_matched() -> None:
    """A trunk's asserted number is matched, not the From user the caller wrote."""
    number_list = listed("+38761123456")
    assert matched(number_list, calling("033000000", asserted="+38761123456")) == "+38761123456"
    assert number_list.match(calling("061123456", asserted="+38733000000")) is None


# -- reasons ------------------------------------------------------------------------------------


def test_reasons_and_places_are_kept_for_the_cdr() -> None:
    """The comment after # is the hit's reason; the summary names the entry and its line."""
    number_list = listed("# header", "", "+38761123456  # nuisance calls, ticket 4711", "06*")
    hit = number_list.match(calling("061123456"))
    assert hit is not None
    assert hit.reason == "nuisance calls, ticket 4711"
    assert hit.entry.where == "config/blacklist.txt:3"
    assert hit.summary == "'+38761123456' (config/blacklist.txt:3): nuisance calls, ticket 4711"
    plain = number_list.match(calling("062000000"))
    assert plain is not None and plain.reason is None
    assert plain.summary == "'06*' (config/blacklist.txt:4)"


def test_dialplan_entries_keep_reasons_and_their_field_path() -> None:
    """A YAML list's entries carry reasons and say which item they were."""
    number_list = Blacklist.from_entries(
        ["+38761123456 # VIP: Acme", "anonymous"], "dialplans/38733123.yaml", path=("vip",)
    )
    hit = number_list.match(calling("061123456"))
    assert hit is not None and hit.reason == "VIP: Acme"
    assert hit.entry.where == "dialplans/38733123.yaml: vip.0"


# -- errors -------------------------------------------------------------------------------------


def test_parse_errors_list_every_bad_line_with_its_number() -> None:
    """Each bad line is reported once, in order, as file:line: message; good lines are fine."""
    text = "\n".join(["# comment", *[f"+3876100000{n}" for n in range(10)], "06x12", ""])
    text += "\n387*\n  *  \n+38761*1\nhello # reason\n061 123 456\r\n"
    with pytest.raises(BlacklistError) as caught:
        parse_blacklist(text, SOURCE)
    assert caught.value.errors == [
        f"config/blacklist.txt:12: '06x12' is not a number or prefix {SYNTAX}",
        "config/blacklist.txt:14: '387*' is a prefix without +, 00 or 0: write an international "
        "prefix with + or 00 (+387*) or a national one with 0 (061*)",
        f"config/blacklist.txt:15: '*' is not a number or prefix {SYNTAX}",
        f"config/blacklist.txt:16: '+38761*1' is not a number or prefix {SYNTAX}",
        f"config/blacklist.txt:17: 'hello' is not a number or prefix {SYNTAX}",
    ]
    assert [problem.line for problem in caught.value.problems] == [12, 14, 15, 16, 17]
    assert str(caught.value) == "\n".join(caught.value.errors)


def test_from_entries_errors_name_the_field_path_of_every_bad_item() -> None:
    """Bad items of a dialplan list are reported with their index, for the loader's lines."""
    entries: list[object] = ["061123456", "06x12", 61123456, " # only a reason"]
    with pytest.raises(NumberListError) as caught:
        NumberList.from_entries(entries, "dialplans/38733123.yaml", path=("blacklist",))  # type: ignore[arg-type]
    assert [problem.path for problem in caught.value.problems] == [
        ("blacklist", 1),
        ("blacklist", 2),
        ("blacklist", 3),
    ]
    assert caught.value.errors == [
        f"dialplans/38733123.yaml: blacklist.1: '06x12' is not a number or prefix {SYNTAX}",
        "dialplans/38733123.yaml: blacklist.2: 61123456 is not text: quote numbers in YAML "
        "('061123456')",
        "dialplans/38733123.yaml: blacklist.3: the entry is empty: write a number, a prefix "
        "ending in *, or anonymous",
    ]


def test_an_entry_problem_without_a_path_names_the_index() -> None:
    """With no field path, the index alone is printed as ``entry N``."""
    problem = EntryProblem(source="d.yaml", message="bad", path=(4,))
    assert str(problem) == "d.yaml: entry 4: bad"


# -- the list as a whole ------------------------------------------------------------------------


def test_merge_keeps_the_first_of_repeated_entries_and_counts_entries() -> None:
    """The global list's reason wins a repeat; len and truth count distinct entries."""
    global_list = listed("+38761123456  # global", "anonymous")
    own = listed("061 123 456  # own", "061123456", "+385*", "anonymous # own")
    assert (len(global_list), len(own)) == (2, 3)
    merged = Blacklist.merge(global_list, own)
    assert len(merged) == 3 and merged
    hit = merged.match(calling("061123456"))
    assert hit is not None and hit.reason == "global"
    assert [entry.text for entry in merged.entries] == ["+38761123456", "anonymous", "+385*"]
    assert not NumberList() and len(Blacklist.merge()) == 0


def test_blacklist_names_are_aliases_of_the_number_list_types() -> None:
    """A blacklist and an allow list are one type, under two names."""
    assert Blacklist is NumberList and BlacklistHit is NumberListHit
    assert BlacklistError is NumberListError and parse_blacklist is parse_number_list


def test_crlf_line_ends_and_a_byte_order_mark_keep_line_numbers() -> None:
    """A file saved on Windows reads the same, errors on the right line."""
    assert len(parse_blacklist("\ufeff+38761123456\r\n\r\n06*\r\n", SOURCE)) == 2
    with pytest.raises(BlacklistError, match=r"config/blacklist.txt:3: '0x'"):
        parse_blacklist("\ufeff# c\r\n\r\n0x\r\n", SOURCE)


def test_the_shipped_list_parses_and_holds_only_fictitious_numbers() -> None:
    """config/blacklist.txt is valid; its examples are drama/test numbers, not Bosnian callers."""
    number_list = parse_blacklist(SHIPPED.read_text(encoding="utf-8"), str(SHIPPED))
    assert number_list
    assert all(not entry.key.startswith("+387") for entry in number_list.entries)
    assert matched(number_list, calling("+447700900123")) == "+447700900123"
    assert number_list.match(calling("061123456")) is None
    assert number_list.match(calling("anonymous")) is None


# -- junk ---------------------------------------------------------------------------------------


@given(st.text())
def test_any_text_parses_or_raises_only_the_list_error(text: str) -> None:
    """Arbitrary file text gives a list or a NumberListError naming lines of the text."""
    try:
        number_list = parse_blacklist(text, SOURCE)
    except NumberListError as exc:
        assert exc.problems
        assert all(1 <= (p.line or 0) <= text.count("\n") + 1 for p in exc.problems)
    else:
        assert len(number_list) <= len(text.split("\n"))


@given(st.text(), st.none() | st.text(), st.none() | st.text())
def test_matching_any_caller_never_raises(
    user: str, asserted: str | None, privacy: str | None
) -> None:
    """Any caller, however odd its headers, is matched or not without an exception."""
    number_list = listed("+38761123456", "06*", "+*", "1282", "anonymous")
    caller = calling(user, asserted, privacy)
    hit = number_list.match(caller)
    key = caller.key or ""
    assert (hit is not None) == (caller.withheld or key.startswith("+") or key == "1282")
