"""Numbers and digit strings as sequences of recorded word prompts (pure, no I/O).

Theory of operation
-------------------
An IVR says "your position in the queue is twenty one" by playing short recorded words back to
back. This module only chooses the words: it turns a digit string or a number into the list of
prompt names to play, following each language's grammar. The prompt store then plays
``prompts/<lang>/<name>.wav`` for each name.

Prompt names (one recording per name and language; the texts are in ``prompts/<lang>.txt``):

========================  ==============================================================
``n0`` .. ``n19``         the numbers zero to nineteen as said alone ("one", "eins", "jedan")
``n20`` .. ``n90``        the tens ("twenty", "zwanzig", "dvadeset"), every ten
``n100`` .. ``n900``      hr, bs: the hundreds, irregular words ("sto", "dvjesto"/"dvjesta",
                          "tristo"/"trista", "četiristo", ... "devetsto")
``n1f``, ``n2f``          hr, bs: the feminine "jedna", "dvije", said before thousand
``thousand``              en "thousand", de "tausend"; hr "tisuću", bs "hiljadu" (1000 alone)
``thousand_pl2``          hr "tisuće", bs "hiljade": after 2, 3, 4 (not 12, 13, 14)
``thousand_pl5``          hr "tisuća", bs "hiljada": after 5..20, after 11..14 and after "jedna"
``hundred``               en "hundred", de "hundert"
``and``                   en "and", de "und"
``n1c``                   de "ein", the form of one inside a compound ("einundzwanzig",
                          "einhundert", "eintausend"); "eins" (``n1``) ends a number
========================  ==============================================================

Grammar, for 0 .. 999 999:

* en (British): "one hundred and five", "twenty one", "one thousand and one",
  "one hundred and twenty three thousand four hundred and fifty six".
* de: compounds are said as their parts back to back: 21 is ``n1c and n20`` ("ein", "und",
  "zwanzig"), 101 is ``n1c hundred n1`` ("einhunderteins"), 1000 is ``n1c thousand``.
* hr, bs: "dvadeset jedan" (the spoken form, without "i"), "sto pet"; 1000 is "tisuću" /
  "hiljadu" alone; otherwise the thousands count takes the feminine "jedna"/"dvije" and the noun
  agrees with its last digits: "dvije tisuće", "pet tisuća", "jedanaest tisuća",
  "dvadeset jedna tisuća" (hr) / "dvije hiljade", "pet hiljada" (bs).

Digits (``say_digits``) use ``n0`` .. ``n9`` in every language.

Dates and times (``say_datetime``, a voicemail message's) use, besides the numbers:

========================  ==============================================================
``weekday1`` .. ``7``     Monday .. Sunday (ISO 8601 day numbers)
``day1`` .. ``day31``     the day of the month as an ordinal: en "the seventh", de "den
                          siebten", hr/bs "sedmi"
``month1`` .. ``12``      en "of December", de "Dezember", hr "prosinca", bs "decembra"
                          (the genitive hr and bs say after a day)
``clock_at``              en "at", de "um", hr/bs "u"
``clock_hours``           en "o'clock", de "Uhr", hr/bs "sati"
``clock_oh``              en "oh" ("ten oh five"); the other languages do not use it
``clock_and``             hr/bs "i" ("u deset i petnaest"); the other languages do not use it
========================  ==============================================================

The time is said on the 24-hour clock: en "at fourteen oh five", "at nine o'clock";
de "um vierzehn Uhr fünf", "um ein Uhr"; hr/bs "u četrnaest i pet", "u devet sati".
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

__all__ = [
    "MAX_NUMBER",
    "NUMBER_LANGUAGES",
    "date_prompts",
    "digit_prompts",
    "number_prompts",
    "say_datetime",
    "say_digits",
    "say_number",
]

MAX_NUMBER = 999_999
_SEPARATORS = frozenset(" -")
_DIGITS = tuple(f"n{d}" for d in range(10))
_TEENS = tuple(f"n{n}" for n in range(20))
_TENS = tuple(f"n{t}" for t in range(20, 100, 10))
_HUNDREDS = tuple(f"n{h}" for h in range(100, 1000, 100))


def say_digits(text: str) -> list[str]:
    """The prompt names that read ``text`` digit by digit ("0385" -> n0 n3 n8 n5).

    Spaces and dashes are skipped, so "01 234-56" reads as its seven digits.

    Raises:
        ValueError: ``text`` holds a character other than a digit, space or dash.
    """
    names = []
    for char in text:
        if char in _SEPARATORS:
            continue
        if not ("0" <= char <= "9"):
            raise ValueError(f"cannot say {char!r} in {text!r}: only digits, spaces and dashes")
        names.append(_DIGITS[ord(char) - ord("0")])
    return names


def say_number(value: int, language: str) -> list[str]:
    """The prompt names that say ``value`` (0 .. 999 999) in ``language`` (bs, hr, en or de).

    See the module docstring for the prompt names and each language's grammar.

    Raises:
        ValueError: ``value`` is out of range, or there is no grammar for ``language``.
    """
    grammar = _GRAMMARS.get(language)
    if grammar is None:
        raise ValueError(f"no number grammar for language {language!r}")
    if not 0 <= value <= MAX_NUMBER:
        raise ValueError(f"cannot say {value}: numbers from 0 to {MAX_NUMBER} only")
    if value == 0:
        return ["n0"]
    return grammar(value)


def digit_prompts() -> frozenset[str]:
    """The prompt names ``say_digits`` may return: ``n0`` .. ``n9``."""
    return frozenset(_DIGITS)


def number_prompts(language: str) -> frozenset[str]:
    """Every prompt name ``say_number`` or ``say_digits`` may return in ``language``.

    A language without a number grammar needs only the digits.
    """
    return _PROMPTS.get(language, digit_prompts())


def _below_hundred(n: int) -> list[str]:
    """1 .. 99 as "twenty one": the tens word, then the unit word (en, and hr/bs masculine)."""
    if n < 20:
        return [_TEENS[n]]
    tens, unit = divmod(n, 10)
    return [_TENS[tens - 2], *([_TEENS[unit]] if unit else [])]


# -- English (British) -----------------------------------------------------------------------


def _en_group(n: int) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_TEENS[hundreds], "hundred"] if hundreds else []
    if hundreds and rest:
        words.append("and")  # British: "one hundred and five"
    return words + (_below_hundred(rest) if rest else [])


def _en(value: int) -> list[str]:
    high, low = divmod(value, 1000)
    words = [*_en_group(high), "thousand"] if high else []
    if high and 0 < low < 100:
        words.append("and")  # British: "one thousand and one"
    return words + (_en_group(low) if low else [])


# -- German ----------------------------------------------------------------------------------


def _de_unit(unit: int) -> str:
    return "n1c" if unit == 1 else _TEENS[unit]


def _de_group(n: int, *, final: bool) -> list[str]:
    """1 .. 999; ``final``: the group ends the number, where one is "eins" rather than "ein"."""
    hundreds, rest = divmod(n, 100)
    words = [_de_unit(hundreds), "hundred"] if hundreds else []
    if rest == 1:
        words.append("n1" if final else "n1c")
    elif 1 < rest < 20 or (rest >= 20 and rest % 10 == 0):
        words.append(_TEENS[rest] if rest < 20 else _TENS[rest // 10 - 2])
    elif rest:
        words += [_de_unit(rest % 10), "and", _TENS[rest // 10 - 2]]  # "ein-und-zwanzig"
    return words


def _de(value: int) -> list[str]:
    high, low = divmod(value, 1000)
    words = [*_de_group(high, final=False), "thousand"] if high else []
    return words + (_de_group(low, final=True) if low else [])


# -- Croatian and Bosnian (same grammar and prompt names, different recordings) --------------


def _hbs_group(n: int, *, feminine: bool = False) -> list[str]:
    hundreds, rest = divmod(n, 100)
    words = [_HUNDREDS[hundreds - 1]] if hundreds else []
    if not rest:
        return words
    tail = _below_hundred(rest)
    if feminine and tail[-1] in ("n1", "n2"):
        tail[-1] += "f"  # "jedna tisuća", "dvije tisuće": thousand is a feminine noun
    return words + tail


def _hbs_thousand(count: int) -> str:
    """The noun after ``count`` thousands: paucal after 2-4, genitive plural after 5+ and teens."""
    paucal = 2 <= count % 10 <= 4 and not 12 <= count % 100 <= 14
    return "thousand_pl2" if paucal else "thousand_pl5"


def _hbs(value: int) -> list[str]:
    high, low = divmod(value, 1000)
    if high == 1:
        words = ["thousand"]  # "tisuću" / "hiljadu", not "jedna tisuća"
    elif high:
        words = [*_hbs_group(high, feminine=True), _hbs_thousand(high)]
    else:
        words = []
    return words + (_hbs_group(low) if low else [])


_GRAMMARS: dict[str, Callable[[int], list[str]]] = {"en": _en, "de": _de, "hr": _hbs, "bs": _hbs}
_BASE = frozenset((*_TEENS, *_TENS))
_PROMPTS: dict[str, frozenset[str]] = {
    "en": _BASE | {"hundred", "thousand", "and"},
    "de": _BASE | {"hundred", "thousand", "and", "n1c"},
    "hr": _BASE | {*_HUNDREDS, "n1f", "n2f", "thousand", "thousand_pl2", "thousand_pl5"},
    "bs": _BASE | {*_HUNDREDS, "n1f", "n2f", "thousand", "thousand_pl2", "thousand_pl5"},
}
NUMBER_LANGUAGES: frozenset[str] = frozenset(_GRAMMARS)


# -- Dates and times -------------------------------------------------------------------------

_WEEKDAYS = tuple(f"weekday{d}" for d in range(1, 8))
_DAYS = tuple(f"day{d}" for d in range(1, 32))
_MONTHS = tuple(f"month{m}" for m in range(1, 13))
_CLOCK = ("clock_at", "clock_hours", "clock_oh", "clock_and")


def say_datetime(moment: datetime, language: str) -> list[str]:
    """The prompt names that read ``moment`` (already in the listener's time zone) as weekday,
    day, month and time on the 24-hour clock in ``language``: "Monday the seventh of December
    at ten fifteen", "Montag den siebten Dezember um zehn Uhr fünfzehn", "ponedjeljak sedmi
    prosinca u deset i petnaest".

    Raises:
        ValueError: there is no grammar for ``language``.
    """
    date = [_WEEKDAYS[moment.isoweekday() - 1], _DAYS[moment.day - 1], _MONTHS[moment.month - 1]]
    return date + _clock(moment.hour, moment.minute, language)


def _clock(hour: int, minute: int, language: str) -> list[str]:
    hours = ["n1c"] if language == "de" and hour == 1 else say_number(hour, language)
    if minute == 0:
        return ["clock_at", *hours, "clock_hours"]
    minutes = say_number(minute, language)
    if language == "en":
        return ["clock_at", *hours, *(["clock_oh"] if minute < 10 else []), *minutes]
    if language == "de":
        return ["clock_at", *hours, "clock_hours", *minutes]
    return ["clock_at", *hours, "clock_and", *minutes]


def date_prompts() -> frozenset[str]:
    """The prompt names ``say_datetime`` may return besides the numbers'."""
    return frozenset((*_WEEKDAYS, *_DAYS, *_MONTHS, *_CLOCK))
