"""The numbering plan: a dialled number to its number class (ITU-T E.164; the BiH national plan).

Theory of operation
-------------------
A dialled number is first normalised to a key (``policy.number_forms``: ``090 291-123`` and
``+38790291123`` are the same key), so that every way of writing it compares equal.

Patterns (``config/tariffs.yaml``) normalise the same way, with ``x`` for any one digit:
``"090 291 1xx"`` is ``+387902911xx``, ``"+385"`` is every Croatian number, ``"0"`` every
national number, ``"+"`` every international one, ``"12x"`` the short codes 120-129 and ``"x"``
every short code. Quote patterns in YAML: an unquoted ``063`` is read as the octal number 51.

A pattern matches every key that *begins* with it (numbers are longer than their range's
prefix). Of the patterns that match, the longest wins; of equally long ones, the one with more
literal digits. Two equally long, equally literal patterns that can match the same number are
refused when the plan is built (``AmbiguousPatterns``), so no answer depends on the order of the
file. Patterns compile once into a trie whose edges are digits and ``x``; ``classify`` walks it
once per call set-up and never validates anything.

The BiH national significant number follows the plan of the regulator (RAK) as libphonenumber
records it: geographic 3x, 49, 5x; mobile 6x; free phone 80; shared cost / unique access 81;
premium 90, 92, 94, 96. International classes may name a ``mobile_tariff``: libphonenumber's
metadata (``phonenumbers``) then tells a mobile number from a fixed one, so no list of foreign
mobile ranges has to be kept by hand. A number it cannot place is rated as fixed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from callserver.policy.number_forms import (
    BIH_COUNTRY_CODE,
    MAX_E164_DIGITS,
    MAX_SHORT_DIGITS,
    SEPARATORS,
    e164,
    e164_region,
    is_mobile,
    national_number,
    normalise,
    possible_e164,
    region_of,
    split_prefix,
)

__all__ = [
    "BIH_COUNTRY_CODE",
    "MAX_E164_DIGITS",
    "MAX_SHORT_DIGITS",
    "AmbiguousPatterns",
    "NumberClass",
    "NumberKind",
    "NumberingPlan",
    "Pattern",
    "PatternTable",
    "e164",
    "e164_region",
    "national_number",
    "normalise",
    "number_owners",
    "parse_pattern",
    "possible_e164",
    "region_of",
]

_PATTERN_DIGITS = re.compile(r"[0-9x]*")
T = TypeVar("T")


class NumberKind(StrEnum):
    """What a number class is: decides its default barring classes and how it is rated."""

    PREMIUM_PER_MINUTE = "premium_per_minute"
    PREMIUM_PER_CALL = "premium_per_call"
    FREE_PHONE = "free_phone"
    UNIQUE_ACCESS = "unique_access"
    GEOGRAPHIC = "geographic"
    MOBILE = "mobile"
    NATIONAL_OTHER = "national_other"
    INTERNATIONAL = "international"
    SATELLITE = "satellite"
    SHORT = "short"
    EMERGENCY = "emergency"


@dataclass(frozen=True, slots=True, kw_only=True)
class NumberClass:
    """One class of the numbering plan, as config/tariffs.yaml defines it.

    ``max_duration`` is the class's cap in seconds from answer (None: only the global default
    applies); ``warn_before`` asks for a warning prompt that many seconds before it. ``barring``
    holds the names of the outbound barring classes the class belongs to. ``mobile_tariff``
    (international classes) is the tariff of the numbers libphonenumber types as mobile;
    ``classify`` returns those as a copy with ``mobile=True`` and that tariff.
    ``tariff_from`` holds ``(network, tariff)`` pairs: a call from a caller of that network is
    rated with that tariff instead of ``tariff`` (the unique access number's split charge).
    """

    name: str
    kind: NumberKind
    tariff: str
    max_duration: float | None = None
    warn_before: float | None = None
    zone: str | None = None
    mobile_tariff: str | None = None
    mobile: bool = False
    barring: frozenset[str] = frozenset()
    tariff_from: tuple[tuple[str, str], ...] = ()

    def as_mobile(self) -> NumberClass:
        """This class for a mobile number: the mobile tariff (itself when it has none)."""
        if self.mobile_tariff is None:
            return self
        return dataclasses.replace(self, tariff=self.mobile_tariff, mobile=True)

    def tariff_for(self, network: str | None) -> str:
        """The tariff of a call from a caller of ``network`` (None: a network of no list)."""
        return dict(self.tariff_from).get(network or "", self.tariff)


@dataclass(frozen=True, slots=True)
class Pattern:
    """A compiled pattern: ``text`` as written, ``key`` normalised (``x``: any digit)."""

    text: str
    key: str

    @property
    def literals(self) -> int:
        """How many characters of the key are not wildcards (ranks equally long patterns)."""
        return len(self.key) - self.key.count("x")

    def overlaps(self, other: Pattern) -> bool:
        """Whether some number of this pattern's length matches both patterns."""
        return len(self.key) == len(other.key) and all(
            a == b or "x" in (a, b) for a, b in zip(self.key, other.key, strict=True)
        )

    def matches(self, key: str) -> bool:
        """Whether the normalised ``key`` begins with this pattern."""
        return len(key) >= len(self.key) and all(
            p == k or (p == "x" and k != "+") for p, k in zip(self.key, key, strict=False)
        )


class AmbiguousPatterns(ValueError):
    """Two rules of a plan can match the same number with the same rank.

    ``first`` and ``second`` are the indexes of the two rules in the order given to the plan.
    """

    def __init__(self, message: str, first: int, second: int) -> None:
        super().__init__(message)
        self.first = first
        self.second = second


def parse_pattern(text: str, *, country_code: str = BIH_COUNTRY_CODE) -> Pattern:
    """Compile a numbering-plan pattern (syntax in the module docstring).

    Raises:
        ValueError: a character other than digits, ``x`` and separators, an empty pattern, or
            a bare (short-code) pattern longer than a short code can be.
    """
    compact = text.translate(SEPARATORS).lower()
    if not compact:
        raise ValueError("a pattern must not be empty")
    prefix, rest = split_prefix(compact, country_code)
    if not _PATTERN_DIGITS.fullmatch(rest):
        raise ValueError(f"pattern {text!r}: use digits, x for any digit, and a leading 0, 00 or +")
    if not prefix and len(rest) > MAX_SHORT_DIGITS:
        raise ValueError(
            f"pattern {text!r}: a bare pattern is a short code of at most {MAX_SHORT_DIGITS} "
            "digits; write a national number with its 0 or an international one with +"
        )
    if len(prefix) - 1 + len(rest) > MAX_E164_DIGITS:
        raise ValueError(f"pattern {text!r} is longer than the {MAX_E164_DIGITS} digits of E.164")
    return Pattern(text, prefix + rest)


class _Node:
    __slots__ = ("children", "rule")

    def __init__(self) -> None:
        self.children: dict[str, _Node] = {}
        self.rule: int | None = None


class PatternTable(Generic[T]):
    """Patterns to values, matched longest first (see the module docstring).

    The trie behind ``NumberingPlan``, also used alone where a number only needs a name (the
    network a caller belongs to).

    Args:
        rules: ``(pattern, value)`` pairs; one value usually appears with several patterns.
        country_code: the country whose national numbers start with the trunk prefix 0.

    Raises:
        AmbiguousPatterns: a pattern is listed twice, or two patterns of equal rank overlap.
    """

    def __init__(
        self,
        rules: Iterable[tuple[Pattern, T]],
        *,
        country_code: str = BIH_COUNTRY_CODE,
    ) -> None:
        self.country_code = country_code
        self._rules = tuple(rules)
        self._root = _Node()
        for index, (pattern, _) in enumerate(self._rules):
            self._insert(index, pattern)
        self._check_overlaps()

    @property
    def rules(self) -> tuple[tuple[Pattern, T], ...]:
        """Every ``(pattern, value)`` pair, in the order given."""
        return self._rules

    def _insert(self, index: int, pattern: Pattern) -> None:
        node = self._root
        for char in pattern.key:
            node = node.children.setdefault(char, _Node())
        if node.rule is not None:
            first = self._rules[node.rule][0].text
            raise AmbiguousPatterns(
                f"pattern {pattern.text!r} is the same as {first!r}", node.rule, index
            )
        node.rule = index

    def _check_overlaps(self) -> None:
        by_rank: dict[tuple[int, int], list[int]] = {}
        for index, (pattern, _) in enumerate(self._rules):
            by_rank.setdefault((len(pattern.key), pattern.literals), []).append(index)
        for indexes in by_rank.values():
            for n, i in enumerate(indexes):
                for j in indexes[n + 1 :]:
                    a, b = self._rules[i][0], self._rules[j][0]
                    if a.overlaps(b):
                        raise AmbiguousPatterns(
                            f"pattern {b.text!r} overlaps {a.text!r}: both match the same "
                            "numbers with the same length and number of digits",
                            i,
                            j,
                        )

    def lookup(self, number: str) -> T | None:
        """The value of the best pattern ``number`` begins with; None if none matches.

        Raises:
            ValueError: the number is not a telephone number (see ``normalise``).
        """
        index = self._best(normalise(number, country_code=self.country_code))
        return None if index is None else self._rules[index][1]

    def _best(self, key: str) -> int | None:
        """Index of the best rule matching ``key``: longest, then most literal characters."""
        best: tuple[int, int, int] | None = None  # (length, literals, rule)
        stack = [(self._root, 0, 0)]
        while stack:
            node, depth, literals = stack.pop()
            if node.rule is not None and (best is None or (depth, literals) > best[:2]):
                best = (depth, literals, node.rule)
            if depth == len(key):
                continue
            char = key[depth]
            exact = node.children.get(char)
            if exact is not None:
                stack.append((exact, depth + 1, literals + 1))
            wildcard = node.children.get("x") if char != "+" else None
            if wildcard is not None:
                stack.append((wildcard, depth + 1, literals))
        return None if best is None else best[2]


class NumberingPlan(PatternTable[NumberClass]):
    """Patterns to number classes, matched longest first (see the module docstring).

    Args:
        rules: ``(pattern, class)`` pairs; one class usually appears with several patterns.
        country_code: the country whose national numbers start with the trunk prefix 0.

    Raises:
        AmbiguousPatterns: a pattern is listed twice, or two patterns of equal rank overlap.
    """

    @property
    def classes(self) -> tuple[NumberClass, ...]:
        """Every class of the plan, each once, in the order of its first rule."""
        return tuple(dict.fromkeys(number_class for _, number_class in self._rules))

    def classify(self, number: str) -> NumberClass:
        """The class of a dialled number (any form ``normalise`` accepts).

        Raises:
            ValueError: the number is not a telephone number, or no pattern matches it.
        """
        key = normalise(number, country_code=self.country_code)
        index = self._best(key)
        if index is None:
            raise ValueError(f"number {number!r} matches no class of the numbering plan")
        number_class = self._rules[index][1]
        if number_class.mobile_tariff is not None and is_mobile(key):
            return number_class.as_mobile()
        return number_class


def number_owners(numbers: Mapping[str, Iterable[str]]) -> dict[str, str]:
    """The owner of each number, keyed as its dialplan is named (E.164 digits without ``+``),
    from each owner's E.164 numbers (trunks.yaml's ``customers.<name>.numbers``)."""
    return {number.lstrip("+"): owner for owner, own in numbers.items() for number in own}
