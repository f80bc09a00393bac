"""Numbers as dialled, to the one key each compares by (ITU-T E.164; the BiH national plan).

Theory of operation
-------------------
A dialled number is *normalised* to a key, so that every way of writing it compares equal:

==========================================  ===============  ====================================
written                                     key              rule
==========================================  ===============  ====================================
``090291123``, ``090 291-123``              ``+38790291123``  national: trunk prefix 0 -> +387
``+38790291123``, ``0038790291123``         ``+38790291123``  international (``+`` or ``00``)
``38790291123``                             ``+38790291123``  bare, 7 digits or more: E.164
``112``, ``1282``                           ``112``, ``1282``  bare, up to 6 digits: a short code
==========================================  ===============  ====================================

Spaces, ``-``, ``.``, ``/`` and parentheses are ignored. An E.164 number has at most 15 digits
(ITU-T E.164, number length), so a longer one is refused, as is anything that is not digits.

libphonenumber's metadata (``phonenumbers``) answers what the key alone cannot: whether a
number of its length is possible for its country code, its ISO 3166 region, and whether it is
a mobile number. ``policy.numbering`` matches the keys against the numbering plan's patterns.
"""

from __future__ import annotations

import functools
import re

import phonenumbers

__all__ = [
    "BIH_COUNTRY_CODE",
    "MAX_E164_DIGITS",
    "MAX_SHORT_DIGITS",
    "SEPARATORS",
    "e164",
    "e164_region",
    "is_mobile",
    "national_number",
    "normalise",
    "possible_e164",
    "region_of",
    "split_prefix",
]

BIH_COUNTRY_CODE = "387"
MAX_E164_DIGITS = 15  # ITU-T E.164's maximum: country code plus national number
MAX_SHORT_DIGITS = 6  # a bare number this long or shorter is a short code, longer is E.164
SEPARATORS = str.maketrans("", "", " \t-./()")
_DIGITS = re.compile(r"[0-9]+")


def split_prefix(text: str, country_code: str) -> tuple[str, str]:
    """``(key prefix, rest)``: ``+``/``00`` international, ``0`` national, else bare."""
    if text.startswith("+"):
        return "+", text[1:]
    if text.startswith("00"):
        return "+", text[2:]
    if text.startswith("0"):
        return "+" + country_code, text[1:]
    return "", text


def normalise(number: str, *, country_code: str = BIH_COUNTRY_CODE) -> str:
    """The key of a dialled number: ``+`` and its E.164 digits, or the digits of a short code.

    See the table in the module docstring; ``country_code`` replaces the national trunk
    prefix 0 (ITU-T E.164: an international number is the country code followed by the
    national significant number, which the national format prefixes with the trunk prefix).

    Raises:
        ValueError: the number holds anything but digits (after separators and one leading
            ``+``), has no digits after its prefix, or is longer than E.164 allows.
    """
    text = number.translate(SEPARATORS)
    prefix, digits = split_prefix(text, country_code)
    if not _DIGITS.fullmatch(digits):
        raise ValueError(f"{number!r} is not a telephone number: use digits after an optional +")
    if not prefix and len(digits) > MAX_SHORT_DIGITS:
        prefix = "+"
    if len(prefix) - 1 + len(digits) > MAX_E164_DIGITS:
        # ITU-T E.164: an international number has at most 15 digits.
        raise ValueError(f"{number!r} has more than the {MAX_E164_DIGITS} digits of E.164")
    return prefix + digits


def e164(text: str, *, country_code: str = BIH_COUNTRY_CODE) -> str:
    """``text`` as an E.164 number (``+`` and digits), normalised as ``normalise`` does.

    Raises:
        ValueError: not a telephone number, or a short code.
    """
    number = normalise(text, country_code=country_code)
    if not number.startswith("+"):
        raise ValueError(f"{text!r} is not a full number: write it in E.164 (+387 ...)")
    return number


def possible_e164(text: str, *, country_code: str = BIH_COUNTRY_CODE) -> str:
    """``text`` as ``e164`` gives it, when its length is possible for its country code
    (libphonenumber's ``is_possible_number``): a number with digits run together, such as a
    block ``+387 33 100 250-259`` written where one number belongs, is refused.

    Raises:
        ValueError: not a full number, or not a possible one.
    """
    number = e164(text, country_code=country_code)
    try:
        possible = phonenumbers.is_possible_number(phonenumbers.parse(number))
    except phonenumbers.NumberParseException:
        possible = False
    if not possible:
        raise ValueError(
            f"{text!r} reads as {number}, which is not a possible number: write one number "
            "each (a block of numbers belongs to a group in centrex.yaml)"
        )
    return number


def national_number(key: str, *, country_code: str = BIH_COUNTRY_CODE) -> str | None:
    """The national significant number of a normalised key in ``country_code``, else None."""
    head = "+" + country_code
    return key[len(head) :] if key.startswith(head) else None


def region_of(number: str, *, country_code: str = BIH_COUNTRY_CODE) -> str | None:
    """The ISO 3166 region of a number (``"HR"``) per libphonenumber; None if it has none.

    Short codes and numbers of non-geographic codes (satellite, +800) have no region.

    Raises:
        ValueError: ``number`` is not a telephone number (see ``normalise``).
    """
    key = normalise(number, country_code=country_code)
    return e164_region(key)[1] if key.startswith("+") else None


@functools.lru_cache(maxsize=4096)
def e164_region(key: str) -> tuple[bool, str | None]:
    """Whether libphonenumber reads the key ``+...`` as a number, and its ISO 3166 region
    (None for none, e.g. +800). One parse, cached: a parse costs ~0.1 ms and callers repeat."""
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(key))
    except phonenumbers.NumberParseException:
        return False, None
    return True, region if region and region != "001" and region != "ZZ" else None


def is_mobile(key: str) -> bool:
    """Whether libphonenumber reads the key ``+...`` as a mobile number."""
    try:
        parsed = phonenumbers.parse(key)
    except phonenumbers.NumberParseException:
        return False
    return bool(phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE)
