"""Identifiers the core generates: tags and branches (RFC 3261 §19.3, §8.1.1.7)."""

from __future__ import annotations

from secrets import token_hex

__all__ = ["new_branch", "new_call_id", "new_tag"]


def new_tag() -> str:
    """A From/To tag with 64 bits of randomness (RFC 3261 §19.3)."""
    return token_hex(8)


def new_branch() -> str:
    """A branch starting with the RFC 3261 magic cookie, unique in space and time (§8.1.1.7)."""
    return "z9hG4bK" + token_hex(10)


def new_call_id() -> str:
    """A Call-ID, globally unique over space and time (RFC 3261 §8.1.1.4)."""
    return f"{token_hex(12)}@callserver"
