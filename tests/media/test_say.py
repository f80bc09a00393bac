"""Tests for numbers and digits as word prompts, read back through the shipped prompt texts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from callserver.media.say import (
    MAX_NUMBER,
    NUMBER_LANGUAGES,
    date_prompts,
    digit_prompts,
    number_prompts,
    say_datetime,
    say_digits,
    say_number,
)
from callserver.media.synth import parse_texts

PROMPTS = Path(__file__).resolve().parents[2] / "prompts"
TEXTS = {language: parse_texts(PROMPTS / f"{language}.txt") for language in NUMBER_LANGUAGES}


def spoken(value: int, language: str, joiner: str = " ") -> str:
    """What a caller hears: the shipped text of each prompt ``say_number`` picks."""
    return joiner.join(TEXTS[language][name] for name in say_number(value, language))


EN = {
    0: "zero",
    7: "seven",
    11: "eleven",
    21: "twenty one",
    100: "one hundred",
    101: "one hundred and one",
    115: "one hundred and fifteen",
    200: "two hundred",
    999: "nine hundred and ninety nine",
    1000: "one thousand",
    1001: "one thousand and one",
    2000: "two thousand",
    5000: "five thousand",
    21000: "twenty one thousand",
    123456: "one hundred and twenty three thousand four hundred and fifty six",
    1100: "one thousand one hundred",
    101000: "one hundred and one thousand",
    999999: "nine hundred and ninety nine thousand nine hundred and ninety nine",
}

DE = {
    0: "null",
    7: "sieben",
    11: "elf",
    21: "einundzwanzig",
    100: "einhundert",
    101: "einhunderteins",
    115: "einhundertfünfzehn",
    200: "zweihundert",
    999: "neunhundertneunundneunzig",
    1000: "eintausend",
    1001: "eintausendeins",
    2000: "zweitausend",
    5000: "fünftausend",
    21000: "einundzwanzigtausend",
    123456: "einhundertdreiundzwanzigtausendvierhundertsechsundfünfzig",
    30: "dreißig",
    71: "einundsiebzig",
    101000: "einhunderteintausend",
    201001: "zweihunderteintausendeins",
}

HR = {
    0: "nula",
    7: "sedam",
    11: "jedanaest",
    21: "dvadeset jedan",
    100: "sto",
    101: "sto jedan",
    115: "sto petnaest",
    200: "dvjesto",
    999: "devetsto devedeset devet",
    1000: "tisuću",
    1001: "tisuću jedan",
    2000: "dvije tisuće",
    5000: "pet tisuća",
    21000: "dvadeset jedna tisuća",
    123456: "sto dvadeset tri tisuće četiristo pedeset šest",
    3000: "tri tisuće",
    11000: "jedanaest tisuća",
    12000: "dvanaest tisuća",
    14000: "četrnaest tisuća",
    22000: "dvadeset dvije tisuće",
    101000: "sto jedna tisuća",
    102000: "sto dvije tisuće",
    300000: "tristo tisuća",
}

BS = {
    0: "nula",
    7: "sedam",
    11: "jedanaest",
    21: "dvadeset jedan",
    100: "sto",
    101: "sto jedan",
    115: "sto petnaest",
    200: "dvjesta",
    999: "devetsto devedeset devet",
    1000: "hiljadu",
    1001: "hiljadu jedan",
    2000: "dvije hiljade",
    5000: "pet hiljada",
    21000: "dvadeset jedna hiljada",
    123456: "sto dvadeset tri hiljade četiristo pedeset šest",
    300: "trista",
    24000: "dvadeset četiri hiljade",
    112000: "sto dvanaest hiljada",
}


@pytest.mark.parametrize(("value", "words"), EN.items())
def test_english_is_british_with_and(value: int, words: str) -> None:
    """English numbers are said the British way, with "and" before the tens and units."""
    assert spoken(value, "en") == words


@pytest.mark.parametrize(("value", "words"), DE.items())
def test_german_compounds_from_parts(value: int, words: str) -> None:
    """German numbers are one compound word built from unit, "und", tens, hundert, tausend."""
    assert spoken(value, "de", joiner="") == words


@pytest.mark.parametrize(("value", "words"), HR.items())
def test_croatian_thousands_agree_with_their_count(value: int, words: str) -> None:
    """Croatian uses irregular hundreds and tisuću / tisuće / tisuća with feminine jedna, dvije."""
    assert spoken(value, "hr") == words


@pytest.mark.parametrize(("value", "words"), BS.items())
def test_bosnian_says_hiljada(value: int, words: str) -> None:
    """Bosnian shares the grammar, with hiljadu / hiljade / hiljada and dvjesta, trista."""
    assert spoken(value, "bs") == words


def test_german_one_is_eins_only_at_the_end() -> None:
    """German one is "eins" when it ends the number and "ein" inside a compound."""
    assert say_number(1, "de") == ["n1"]
    assert say_number(1000, "de") == ["n1c", "thousand"]
    assert say_number(31, "de") == ["n1c", "and", "n30"]


@given(st.integers(0, MAX_NUMBER), st.sampled_from(sorted(NUMBER_LANGUAGES)))
def test_every_number_uses_only_shipped_prompts(value: int, language: str) -> None:
    """Every number in range is said with prompt names the language's text file defines."""
    names = say_number(value, language)
    assert names
    assert set(names) <= number_prompts(language) <= set(TEXTS[language])


@given(st.integers(0, MAX_NUMBER))
def test_bosnian_and_croatian_pick_the_same_prompt_names(value: int) -> None:
    """Bosnian and Croatian differ only in their recordings, never in the grammar."""
    assert say_number(value, "bs") == say_number(value, "hr")


@pytest.mark.parametrize("value", [-1, MAX_NUMBER + 1])
def test_number_out_of_range_is_refused(value: int) -> None:
    """Numbers below zero or above 999 999 raise ValueError naming the range."""
    with pytest.raises(ValueError, match="0 to 999999"):
        say_number(value, "en")


def test_language_without_grammar_is_refused() -> None:
    """A language without a number grammar raises ValueError; it still needs the digits."""
    with pytest.raises(ValueError, match="no number grammar for language 'sl'"):
        say_number(5, "sl")
    assert number_prompts("sl") == digit_prompts() == {f"n{d}" for d in range(10)}


def test_digits_skip_spaces_and_dashes() -> None:
    """Digit strings are read one digit at a time; spaces and dashes are not said."""
    assert say_digits("01 234-56") == ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]
    assert say_digits("") == []


@pytest.mark.parametrize("text", ["12a", "+385", "1.5", "٣"])
def test_digits_refuse_other_characters(text: str) -> None:
    """Any character other than an ASCII digit, space or dash raises ValueError."""
    with pytest.raises(ValueError, match="only digits, spaces and dashes"):
        say_digits(text)


# -- dates and times -------------------------------------------------------------------------


def spoken_datetime(moment: datetime, language: str) -> str:
    """What a caller hears for a message's date and time: the shipped texts back to back."""
    return " ".join(TEXTS[language][name] for name in say_datetime(moment, language))


MONDAY = datetime(2026, 12, 7, 10, 15)


@pytest.mark.parametrize(
    ("moment", "language", "expected"),
    [
        (MONDAY, "en", "Monday the seventh of December at ten fifteen"),
        (
            MONDAY.replace(hour=14, minute=5),
            "en",
            "Monday the seventh of December at fourteen oh five",
        ),
        (MONDAY.replace(hour=9, minute=0), "en", "Monday the seventh of December at nine o'clock"),
        (MONDAY, "de", "Montag den siebten Dezember um zehn Uhr fünfzehn"),
        (MONDAY.replace(hour=1, minute=0), "de", "Montag den siebten Dezember um ein Uhr"),
        (MONDAY, "hr", "ponedjeljak sedmi prosinca u deset i petnaest"),
        (MONDAY.replace(hour=9, minute=0), "bs", "ponedjeljak sedmi decembra u devet sati"),
        (
            datetime(2027, 1, 31, 23, 59),
            "bs",
            "nedjelja trideset prvi januara u dvadeset tri i pedeset devet",
        ),
    ],
)
def test_datetime_is_said_in_each_language(moment: datetime, language: str, expected: str) -> None:
    """A message's date and time read as weekday, ordinal day, month and 24-hour time."""
    assert spoken_datetime(moment, language) == expected


@pytest.mark.parametrize("language", sorted(NUMBER_LANGUAGES))
def test_every_date_prompt_has_a_text(language: str) -> None:
    """Every weekday, day, month and clock word say_datetime picks is shipped in each language."""
    assert date_prompts() <= set(TEXTS[language])
    assert all((PROMPTS / language / f"{name}.wav").is_file() for name in date_prompts())


def test_datetime_refuses_a_language_without_grammar() -> None:
    """A language with no number grammar cannot say the time."""
    with pytest.raises(ValueError, match="no number grammar"):
        say_datetime(MONDAY, "fr")
