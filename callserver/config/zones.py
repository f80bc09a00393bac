"""IANA time zone names in the operator's settings, checked when the file is read."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["check_zone"]


def check_zone(value: str) -> str:
    """Return ``value`` if it names an IANA time zone.

    Raises:
        ValueError: the zone is not known (the message says what to write).
    """
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (an IANA name: Europe/Sarajevo)") from exc
    return value
