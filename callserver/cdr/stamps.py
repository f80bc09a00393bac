"""CDR stamps: ISO 8601 UTC times with milliseconds, ``2026-11-22T10:15:30.123Z``.

A stamp has a fixed width, so stamps sort as text; sub-millisecond digits are truncated, never
rounded, so a stamp is never later than the moment it records. A stamp is only ever written
from an aware datetime (a naive one is refused: a CDR time must say which zone it is in) and
read back exactly in this form.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["naive_moment", "parse_stamp", "stamp_from_epoch", "utc_stamp"]

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


def utc_stamp(moment: datetime) -> str:
    """Format an aware datetime as a CDR stamp, ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (ISO 8601, UTC).

    Sub-millisecond digits are truncated.

    Raises:
        ValueError: if ``moment`` is naive (a CDR time must say which zone it is in).
    """
    if moment.tzinfo is None:
        raise ValueError(f"CDR time {moment.isoformat()} has no time zone")
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
        f".{m.microsecond // 1000:03d}Z"
    )


def stamp_from_epoch(seconds: float) -> str:
    """The CDR stamp of a POSIX time (``time.time()``), truncated to the millisecond."""
    return utc_stamp(datetime.fromtimestamp(seconds, UTC))


def parse_stamp(text: str) -> datetime:
    """Parse a CDR stamp back into an aware UTC datetime.

    Raises:
        ValueError: if ``text`` is not exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ`` or not a real date.
    """
    if not isinstance(text, str) or _STAMP.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a CDR stamp (YYYY-MM-DDTHH:MM:SS.mmmZ)")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def naive_moment(text: str) -> datetime:
    """A CDR stamp as a naive UTC datetime: enough for differences, and faster than
    ``parse_stamp``'s aware result.

    Raises:
        ValueError: if ``text`` is not exactly ``YYYY-MM-DDTHH:MM:SS.mmmZ`` or not a real date.
    """
    if _STAMP.fullmatch(text) is None:
        raise ValueError(f"{text!r} is not a CDR stamp (YYYY-MM-DDTHH:MM:SS.mmmZ)")
    return datetime.fromisoformat(text[:-1])
