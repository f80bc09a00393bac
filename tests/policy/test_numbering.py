"""Numbering plan: normalising numbers, pattern syntax, longest-prefix classes, the shipped plan."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from callserver.config.tariffs import load_tariffs
from callserver.policy.numbering import (
    AmbiguousPatterns,
    NumberClass,
    NumberingPlan,
    NumberKind,
    Pattern,
    national_number,
    normalise,
    parse_pattern,
    region_of,
)

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "tariffs.yaml"
PLAN = load_tariffs(SHIPPED).plan


def klass(name: str, kind: NumberKind = NumberKind.GEOGRAPHIC, **kwargs: object) -> NumberClass:
    return NumberClass(name=name, kind=kind, tariff=name, **kwargs)  # type: ignore[arg-type]


def plan_of(*rules: tuple[str, str]) -> NumberingPlan:
    return NumberingPlan((parse_pattern(text), klass(name)) for text, name in rules)


# -- normalising --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("090291123", "+38790291123"),
        ("090 291-123", "+38790291123"),
        ("(033) 123.456", "+38733123456"),
        ("+38790291123", "+38790291123"),
        ("+387 90 291 123", "+38790291123"),
        ("0038790291123", "+38790291123"),
        ("38790291123", "+38790291123"),
        ("+385911234567", "+385911234567"),
        ("00385911234567", "+385911234567"),
        ("112", "112"),
        ("1282", "1282"),
        ("123456", "123456"),
        ("1234567", "+1234567"),
    ],
)
def test_normalise_gives_one_key_for_every_way_of_writing_a_number(written: str, key: str) -> None:
    """National, E.164 (with +, 00 or bare) and short forms normalise as the table says."""
    assert normalise(written) == key


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("", "not a telephone number"),
        ("+", "not a telephone number"),
        ("0", "not a telephone number"),
        ("00", "not a telephone number"),
        ("090a291", "not a telephone number"),
        ("*21#", "not a telephone number"),
        ("0٩0291123", "not a telephone number"),
        ("+1234567890123456", "more than the 15 digits"),
        ("0" + "1" * 13, "more than the 15 digits"),
    ],
)
def test_normalise_refuses_what_is_no_number(written: str, message: str) -> None:
    """Letters, feature codes, non-ASCII digits, empty numbers and over-long E.164 are refused."""
    with pytest.raises(ValueError, match=message):
        normalise(written)


def test_normalise_uses_the_given_country_code_for_national_numbers() -> None:
    """The trunk prefix 0 is replaced by the plan's country code."""
    assert normalise("01234567", country_code="385") == "+3851234567"


def test_national_number_and_region_of() -> None:
    """The NSN of a national key, and libphonenumber's region of a number (none for short codes)."""
    assert national_number("+38733123456") == "33123456"
    assert national_number("+38533123456") is None
    assert region_of("+385911234567") == "HR"
    assert region_of("033 123 456") == "BA"
    assert region_of("112") is None
    assert region_of("+870773112345") is None


# -- patterns -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("090 291 1xx", "+387902911xx"),
        ("092 291 XXX", "+38792291xxx"),
        ("+385", "+385"),
        ("00385", "+385"),
        ("+", "+"),
        ("0", "+387"),
        ("12x", "12x"),
        ("x", "x"),
    ],
)
def test_parse_pattern_normalises_like_numbers(text: str, key: str) -> None:
    """Patterns take the national, international and short forms, x (any case) for any digit."""
    assert parse_pattern(text).key == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must not be empty"),
        ("  ", "must not be empty"),
        ("09?", "use digits"),
        ("+38x7y", "use digits"),
        ("1234567", "bare pattern is a short code"),
        ("+1234567890123456", "longer than the 15 digits"),
    ],
)
def test_parse_pattern_refuses_bad_syntax(text: str, message: str) -> None:
    """Other characters, empty or over-long patterns and long bare patterns are refused."""
    with pytest.raises(ValueError, match=message):
        parse_pattern(text)


def test_pattern_matches_prefixes_and_x_matches_only_digits() -> None:
    """A pattern matches numbers that begin with it; x never matches the international +."""
    pattern = parse_pattern("090 291 1xx")
    assert pattern.matches("+38790291123") and pattern.matches("+387902911239")
    assert not pattern.matches("+38790291223") and not pattern.matches("+3879029112")
    assert parse_pattern("x").matches("112") and not parse_pattern("x").matches("+385")
    assert pattern.literals == 10


# -- the plan -----------------------------------------------------------------------------------


def test_longest_pattern_wins_then_the_more_literal_one() -> None:
    """A longer match beats a shorter one; of equal length, more literal digits win."""
    plan = plan_of(("06", "mobile"), ("063", "eronet"), ("06x1", "wild"), ("0631", "exact"))
    assert plan.classify("061 223 456").name == "mobile"
    assert plan.classify("063 223 456").name == "eronet"
    assert plan.classify("062 123 456").name == "wild"
    assert plan.classify("063 123 456").name == "exact"


def test_catch_all_patterns_cover_international_and_short_numbers() -> None:
    """``+`` matches every international number and ``x`` every short code, nothing else."""
    plan = plan_of(("+", "world"), ("x", "short"), ("0", "national"))
    assert plan.classify("+4930123456").name == "world"
    assert plan.classify("1282").name == "short"
    assert plan.classify("033123456").name == "national"


def test_classify_raises_for_a_number_no_pattern_matches() -> None:
    """Without a matching pattern classify says so rather than guessing."""
    with pytest.raises(ValueError, match="matches no class"):
        plan_of(("0", "national")).classify("112")


def test_duplicate_and_overlapping_patterns_are_refused() -> None:
    """The same pattern twice, or equally ranked overlapping ones, make the plan ambiguous."""
    with pytest.raises(AmbiguousPatterns, match="is the same as") as same:
        plan_of(("063", "a"), ("0 63", "b"))
    assert (same.value.first, same.value.second) == (0, 1)
    with pytest.raises(AmbiguousPatterns, match="overlaps"):
        plan_of(("06x1", "a"), ("061x", "b"))
    plan_of(("06x1", "a"), ("0x22", "b"))  # no number matches both


def test_plan_lists_each_class_once() -> None:
    """``classes`` names each class once, in the order of its first rule."""
    assert [c.name for c in plan_of(("03", "a"), ("05", "a"), ("06", "b")).classes] == ["a", "b"]


def test_mobile_tariff_applies_to_numbers_libphonenumber_types_as_mobile() -> None:
    """An international class with a mobile tariff rates mobile numbers with it."""
    croatia = klass("croatia", NumberKind.INTERNATIONAL, mobile_tariff="croatia_mobile")
    plan = NumberingPlan([(parse_pattern("+385"), croatia)])
    mobile = plan.classify("+385 91 123 4567")
    assert (mobile.name, mobile.tariff, mobile.mobile) == ("croatia", "croatia_mobile", True)
    assert plan.classify("+385 1 234 5678") is croatia
    assert klass("fixed").as_mobile() == klass("fixed")


def _brute_force(rules: list[tuple[Pattern, NumberClass]], key: str) -> str | None:
    matching = [(len(p.key), p.literals, c.name) for p, c in rules if p.matches(key)]
    return max(matching)[2] if matching else None


@given(
    patterns=st.sets(st.text("+01x", min_size=1, max_size=5), min_size=1, max_size=12),
    digits=st.from_regex(r"(\+|00|0)?[1-9][0-9]{0,8}", fullmatch=True),
)
def test_trie_agrees_with_a_linear_scan(patterns: set[str], digits: str) -> None:
    """The trie picks what scanning every pattern by (length, literal digits) would pick."""
    rules = []
    for text in sorted(patterns):
        try:
            rules.append((parse_pattern(text), klass(f"c{text}")))
        except ValueError:
            continue
    try:
        plan = NumberingPlan(rules)
    except AmbiguousPatterns:
        assume(False)
        return
    expected = _brute_force(rules, normalise(digits))
    if expected is None:
        with pytest.raises(ValueError):
            plan.classify(digits)
    else:
        assert plan.classify(digits).name == expected


# -- the shipped plan ---------------------------------------------------------------------------

TABLE = [
    # national form, class, kind, tariff
    ("090 291 123", "premium_call_049", NumberKind.PREMIUM_PER_CALL, "premium_call_049"),
    ("092 291 123", "premium_call_049", NumberKind.PREMIUM_PER_CALL, "premium_call_049"),
    ("094 291 999", "premium_call_049", NumberKind.PREMIUM_PER_CALL, "premium_call_049"),
    ("090 292 123", "premium_call_099", NumberKind.PREMIUM_PER_CALL, "premium_call_099"),
    ("090 293 100", "premium_call_125", NumberKind.PREMIUM_PER_CALL, "premium_call_125"),
    ("090 291 223", "premium_other", NumberKind.PREMIUM_PER_MINUTE, "premium_t8"),
    ("090 211 234", "premium_t1", NumberKind.PREMIUM_PER_MINUTE, "premium_t1"),
    ("092 241 234", "premium_t4", NumberKind.PREMIUM_PER_MINUTE, "premium_t4"),
    ("094 281 234", "premium_t8", NumberKind.PREMIUM_PER_MINUTE, "premium_t8"),
    ("096 123 456", "premium_other", NumberKind.PREMIUM_PER_MINUTE, "premium_t8"),
    ("080 012 345", "free_phone", NumberKind.FREE_PHONE, "free_phone"),
    ("081 920 123", "unique_access", NumberKind.UNIQUE_ACCESS, "bih_fixed"),
    ("033 123 456", "bih_geographic", NumberKind.GEOGRAPHIC, "bih_fixed"),
    ("051 123 456", "bih_geographic", NumberKind.GEOGRAPHIC, "bih_fixed"),
    ("049 123 456", "bih_geographic", NumberKind.GEOGRAPHIC, "bih_fixed"),
    ("063 123 456", "bih_mobile_ht_eronet", NumberKind.MOBILE, "bih_mobile_ht_eronet"),
    ("064 412 3456", "bih_mobile_ht_eronet", NumberKind.MOBILE, "bih_mobile_ht_eronet"),
    ("061 123 456", "bih_mobile", NumberKind.MOBILE, "bih_mobile_other"),
    ("065 123 456", "bih_mobile", NumberKind.MOBILE, "bih_mobile_other"),
    ("070 123 456", "bih_other", NumberKind.NATIONAL_OTHER, "bih_fixed"),
    ("00385 91 123 4567", "croatia", NumberKind.INTERNATIONAL, "croatia_mobile"),
    ("00385 1 234 5678", "croatia", NumberKind.INTERNATIONAL, "croatia_fixed"),
    (
        "00381 64 123 4567",
        "serbia_montenegro",
        NumberKind.INTERNATIONAL,
        "serbia_montenegro_mobile",
    ),
    ("00382 20 123 456", "serbia_montenegro", NumberKind.INTERNATIONAL, "serbia_montenegro_fixed"),
    (
        "00386 40 123 456",
        "slovenia_macedonia",
        NumberKind.INTERNATIONAL,
        "slovenia_macedonia_mobile",
    ),
    (
        "00389 2 312 3456",
        "slovenia_macedonia",
        NumberKind.INTERNATIONAL,
        "slovenia_macedonia_fixed",
    ),
    ("0049 151 1234 5678", "europe", NumberKind.INTERNATIONAL, "europe_mobile"),
    ("0049 30 1234 5678", "europe", NumberKind.INTERNATIONAL, "europe_fixed"),
    ("001 212 555 1234", "world", NumberKind.INTERNATIONAL, "world_fixed"),
    ("0061 412 345 678", "world", NumberKind.INTERNATIONAL, "world_mobile"),
    ("00870 773 112 345", "satellite", NumberKind.SATELLITE, "satellite"),
    ("00881 6 1234 5678", "satellite", NumberKind.SATELLITE, "satellite"),
]


def _forms(national: str) -> list[str]:
    """The national/international form as written, and its +E.164 and bare E.164 forms."""
    key = normalise(national)
    return [national, key, key[1:]]


@pytest.mark.parametrize(("number", "name", "kind", "tariff"), TABLE)
def test_shipped_plan_classifies_every_class_in_every_form(
    number: str, name: str, kind: NumberKind, tariff: str
) -> None:
    """Representative numbers of each class get their class in national and E.164 forms."""
    for form in _forms(number):
        got = PLAN.classify(form)
        assert (got.name, got.kind, got.tariff) == (name, kind, tariff), form


@pytest.mark.parametrize(
    ("number", "name", "kind"),
    [
        ("112", "emergency", NumberKind.EMERGENCY),
        ("122", "emergency", NumberKind.EMERGENCY),
        ("124", "emergency", NumberKind.EMERGENCY),
        ("1282", "short", NumberKind.SHORT),
        ("1182", "short", NumberKind.SHORT),
    ],
)
def test_shipped_plan_classifies_short_codes(number: str, name: str, kind: NumberKind) -> None:
    """Emergency numbers and other short codes, dialled as they are."""
    got = PLAN.classify(number)
    assert (got.name, got.kind) == (name, kind)


def test_shipped_plan_caps_per_call_premium_numbers_at_180_s() -> None:
    """Every per-call premium class carries the 180 s cap; other classes have none."""
    for number_class in PLAN.classes:
        expected = 180 if number_class.kind is NumberKind.PREMIUM_PER_CALL else None
        assert number_class.max_duration == expected, number_class.name
