"""From a step's prompt items to the media engine's playlist, with ``${variable}`` filled in.

Variables come from the call (``caller``, ``called``, ``digits`` and whatever ``set`` and menus
stored). A say item whose value is missing or not sayable at play time is left out, never raised:
the file was checked at load time and the caller should still hear the rest.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from callserver.dialplan.values import (
    VARIABLE,
    PromptItem,
    SayDigitsItem,
    SayNumberItem,
    SilenceItem,
)
from callserver.media.prompts import Play, PlaylistItem, SayDigits, SayNumber, Silence

__all__ = ["expand", "substitute"]


def substitute(text: str, variables: Mapping[str, str]) -> str:
    """``text`` with each ``${name}`` replaced by its variable (empty when unset)."""
    return VARIABLE.sub(lambda match: variables.get(match.group(1), ""), text)


def expand(items: Sequence[PromptItem], variables: Mapping[str, str]) -> list[PlaylistItem]:
    """The media playlist of ``items``; unsayable say items are left out."""
    out: list[PlaylistItem] = []
    for item in items:
        try:
            out.append(_item(item, variables))
        except ValueError:
            continue
    return out


def _item(item: PromptItem, variables: Mapping[str, str]) -> PlaylistItem:
    if isinstance(item, str):
        return Play(item)
    if isinstance(item, SilenceItem):
        return Silence(round(item.silence * 1000))
    if isinstance(item, SayDigitsItem):
        text = substitute(item.say_digits, variables).lstrip("+")
        if not text:
            raise ValueError("nothing to say")
        return SayDigits(text)
    assert isinstance(item, SayNumberItem)
    value = substitute(item.say_number, variables)
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a number")
    return SayNumber(int(value))
