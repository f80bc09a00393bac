"""Who is calling: the caller's number, country and privacy from an INVITE's identity headers.

Theory of operation
-------------------
The calls layer extracts four strings from the INVITE and ``caller_identity`` turns them into a
``CallerId``, the one view of the caller that the CDR, the dialplan's ``caller_country``
condition (the language of a call) and the blacklist share:

- the user part of the From URI (RFC 3261 §20.20) and its display name;
- the user part of the P-Asserted-Identity URI (RFC 3325 §9.1), or the number of its tel URI,
  when a trusted trunk sent one;
- the Privacy header's value (RFC 3323 §4.2, with RFC 3325 §9.3's ``id``).

``raw`` is always what the caller presented in From. The *number* (``e164``) comes from
P-Asserted-Identity when that holds one, because a trunk asserts it and From is whatever the
caller's equipment wrote; else from From. Either is read with ``numbering.normalise``, so
``+38761123456``, ``0038761123456``, ``38761123456`` and the national ``061 123 456`` give the
same ``+38761123456``. URI escapes (``%2B387...``) are decoded and user parameters
(``;phone-context=...``, ``;isub=...``) are dropped first. A national number takes the country
code of ``default_region``. A key libphonenumber cannot read as E.164 (an unknown country code,
too few digits) is no number: ``e164`` is None. A short code (``1282``, an extension) stays a
short code: no ``e164`` and no country, but ``CallerId.key`` still offers it to number lists.

``country`` is libphonenumber's region of the number (``numbering.e164_region``): ``+387`` is
``"BA"``, ``+385`` ``"HR"``; numbers of non-geographic codes (``+800``, ``+881``) have none.

``withheld`` marks an anonymous caller: a From user or display name such as ``anonymous``,
``unknown``, ``restricted``, ``unavailable`` or ``private`` (any case; RFC 3323 §4.1.1.3
recommends ``"Anonymous" <sip:anonymous@anonymous.invalid>``, and the calls layer passes the
user ``anonymous`` for an ``anonymous.invalid`` host), an empty From user, or a Privacy header
asking for ``id``, ``user`` or ``header`` privacy. A withheld caller may still have an
``e164`` from P-Asserted-Identity: the network knows the number, the callee must not see it.

Nothing here raises on what a caller sends: junk gives ``e164`` and ``country`` None.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import phonenumbers

from callserver.policy.numbering import BIH_COUNTRY_CODE, e164_region, normalise
from callserver.sip.uri import unescape

__all__ = ["ANONYMOUS_NAMES", "WITHHOLDING_PRIVACY", "CallerId", "caller_identity"]

ANONYMOUS_NAMES = frozenset(
    {"anonymous", "unknown", "restricted", "unavailable", "private", "withheld"}
)
"""From users and display names (lower case) that mean the caller's identity is withheld."""

WITHHOLDING_PRIVACY = frozenset({"id", "user", "header"})
"""Privacy values that withhold the caller's identity (RFC 3323 §4.2, RFC 3325 §9.3)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerId:
    """The caller as the CDR, the dialplan and the number lists see it.

    ``raw`` is the From user part as presented ("" when there is none); ``e164`` the caller's
    number (``+38761123456``) or None; ``country`` its ISO 3166 region (``"BA"``) or None;
    ``withheld`` whether the caller is anonymous (see the module docstring).
    """

    raw: str
    e164: str | None = None
    country: str | None = None
    withheld: bool = False

    @property
    def key(self) -> str | None:
        """The key number lists match on: ``e164``, else the short code in ``raw``, else None.

        The short code is ``numbering.normalise``'s key of a bare number of up to six digits
        (``1282``); a From user that is neither gives None.
        """
        if self.e164 is not None:
            return self.e164
        # A short code's key does not depend on the country code: any will do.
        key = _normalised(self.raw, BIH_COUNTRY_CODE)
        return key if key is not None and not key.startswith("+") else None


def caller_identity(
    from_user: str | None,
    from_display: str | None,
    asserted_user: str | None,
    privacy: str | None,
    default_region: str = "BA",
) -> CallerId:
    """The caller of an INVITE (RFC 3261 §20.20 From, RFC 3325 §9.1, RFC 3323 §4.2).

    Args:
        from_user: the user part of the From URI (None when it has none).
        from_display: the From header's display name, quotes removed or not.
        asserted_user: the user part of P-Asserted-Identity's URI (or its tel number), if any.
        privacy: the Privacy header's value (``"id"``, ``"user;header"``), if any.
        default_region: the ISO 3166 region whose country code national numbers take.

    Returns:
        The caller; never raises on what the headers hold (see the module docstring).

    Raises:
        ValueError: ``default_region`` is not a region libphonenumber knows.
    """
    country_code = _country_code(default_region)
    number = _e164(asserted_user, country_code) or _e164(from_user, country_code)
    return CallerId(
        raw=from_user or "",
        e164=number,
        country=None if number is None else e164_region(number)[1],
        withheld=_withheld(from_user, from_display, privacy),
    )


@functools.lru_cache(maxsize=64)
def _country_code(region: str) -> str:
    code = phonenumbers.country_code_for_region(region.upper())
    if not code:
        raise ValueError(
            f"unknown region {region!r}: use an ISO 3166 region code such as 'BA' or 'HR'"
        )
    return str(code)


def _user_text(user: str) -> str:
    """The user part without escapes and user parameters (RFC 3261 §19.1.1, §25.1)."""
    return unescape(user).partition(";")[0].strip()


def _normalised(user: str | None, country_code: str) -> str | None:
    """``numbering.normalise``'s key of a user part, or None when it is no number."""
    if not user:
        return None
    try:
        return normalise(_user_text(user), country_code=country_code)
    except ValueError:
        return None


def _e164(user: str | None, country_code: str) -> str | None:
    """The E.164 number in a user part, when libphonenumber can read it as one."""
    key = _normalised(user, country_code)
    if key is None or not key.startswith("+"):
        return None
    return key if e164_region(key)[0] else None


def _withheld(from_user: str | None, from_display: str | None, privacy: str | None) -> bool:
    user = _user_text(from_user or "").lower()
    display = (from_display or "").strip().strip('"').strip().lower()
    return not user or user in ANONYMOUS_NAMES or display in ANONYMOUS_NAMES or _private(privacy)


def _private(privacy: str | None) -> bool:
    """Whether a Privacy value asks to withhold the identity (several headers: ``,``-joined)."""
    if not privacy:
        return False
    values = privacy.replace(",", ";").split(";")
    return any(value.strip().lower() in WITHHOLDING_PRIVACY for value in values)
