"""Who may register: the credentials of one address-of-record (RFC 3261 §10.3 steps 3-5)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["Account", "Accounts"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    """A subscriber's credentials as the registrar needs them.

    ``aor`` is the number of the address-of-record in E.164 (``+38733100201``); ``ha1`` maps a
    digest algorithm (``MD5``, ``SHA-256``) to the hex ``H(username:realm:password)`` (RFC 7616
    §3.4.2), so no password is kept; ``max_contacts`` bounds the contacts of the AOR.
    """

    aor: str
    username: str
    realm: str
    ha1: Mapping[str, str]
    max_contacts: int


Accounts = Callable[[str], Account | None]
"""The account of a digest username, or None when there is none."""
