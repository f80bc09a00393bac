"""Outbound routing of originating calls: which routes carry a number, in trying order.

Theory of operation
-------------------
Each route of config/trunks.yaml lists the E.164 prefixes it carries (``+387``, ``+387 33``;
``+`` carries every international-format number, a bare prefix such as ``12`` short codes).
Prefixes are written like numbers and normalised as ``numbering.parse_pattern`` does (``033``
is ``+38733``), without the ``x`` wildcard: a route carries a prefix, not a pattern.

For one number the longest matching prefix wins; when several routes carry that same prefix
they are all returned, in the order the routes are written in the file, so the caller can fail
over from one to the next (on 408, 5xx or a timeout, RFC 3261 §16.7 step 6 and §21.5). A
number that no prefix matches has no route.

:class:`OutboundPlan` is compiled once per trunks file: a dict of prefix to route names per
prefix length, longest length first, so a lookup costs one dict probe per distinct length,
whatever the number of routes.

Emergency numbers (``emergency.numbers``, by default 112, 122, 123 and 124: the BiH numbers of
the single European emergency number, police, fire and ambulance) are recognised as dialled and
go to ``emergency.route``; they are never barred (``policy.barring``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

from callserver.policy.numbering import normalise, parse_pattern

__all__ = ["DEFAULT_EMERGENCY_NUMBERS", "OutboundPlan", "RoutingFile", "route_prefix"]

DEFAULT_EMERGENCY_NUMBERS = ("112", "122", "123", "124")
_WRITTEN = "+0123456789 \t-./()"  # digits and the separators numbering.normalise ignores


def route_prefix(text: str) -> str:
    """The normalised key of a route prefix as written (``"+387 33"`` -> ``"+38733"``).

    Raises:
        ValueError: not digits after an optional ``+``, ``00`` or ``0``; a wildcard; too long.
    """
    hint = "write digits after an optional +, 00 or 0 ('+387 33'; '+' is every number)"
    if "x" in text.lower():
        raise ValueError(f"prefix {text!r}: a route carries a prefix, not a pattern: {hint}")
    if text.strip(_WRITTEN):
        raise ValueError(f"prefix {text!r} is not the beginning of a number: {hint}")
    try:
        return parse_pattern(text).key
    except ValueError as exc:  # too long, or empty
        raise ValueError(str(exc).replace("pattern", "prefix", 1)) from None


class _Route(Protocol):
    @property
    def prefixes(self) -> Sequence[str]: ...


class _Emergency(Protocol):
    @property
    def numbers(self) -> Sequence[str]: ...

    @property
    def route(self) -> str | None: ...


class RoutingFile(Protocol):
    """What the plan reads of config/trunks.yaml (``config.trunks.TrunksFile``)."""

    @property
    def routes(self) -> Mapping[str, _Route]: ...

    @property
    def emergency(self) -> _Emergency: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundPlan:
    """Routes by prefix and the emergency numbers of one trunks file; see the module docstring.

    ``by_length`` maps a prefix length to ``{prefix: route names in file order}``;
    ``lengths`` are those lengths, longest first.
    """

    by_length: Mapping[int, Mapping[str, tuple[str, ...]]]
    lengths: tuple[int, ...]
    emergency_numbers: frozenset[str]
    emergency: str | None

    @classmethod
    def of(cls, trunks: RoutingFile) -> OutboundPlan:
        """Compile the ``routes`` prefixes and the ``emergency`` section of ``trunks``.

        Raises:
            ValueError: a prefix or emergency number that does not normalise.
        """
        table: dict[int, dict[str, list[str]]] = {}
        for name, route in trunks.routes.items():
            for written in route.prefixes:
                key = route_prefix(written)
                names = table.setdefault(len(key), {}).setdefault(key, [])
                if name not in names:
                    names.append(name)
        by_length = {
            length: MappingProxyType({key: tuple(names) for key, names in keys.items()})
            for length, keys in table.items()
        }
        return cls(
            by_length=MappingProxyType(by_length),
            lengths=tuple(sorted(by_length, reverse=True)),
            emergency_numbers=frozenset(normalise(n) for n in trunks.emergency.numbers),
            emergency=trunks.emergency.route,
        )

    def routes_for(self, number_e164: str) -> tuple[str, ...]:
        """The routes for the normalised number ``number_e164`` (``+38761123456``, or a short
        code's digits), longest matching prefix first, in trying order; () when none."""
        for length in self.lengths:
            if length <= len(number_e164):
                names = self.by_length[length].get(number_e164[:length])
                if names is not None:
                    return names
        return ()

    def is_emergency(self, dialled: str) -> bool:
        """True when ``dialled`` (as dialled: ``"112"``) is an emergency number."""
        try:
            return normalise(dialled) in self.emergency_numbers
        except ValueError:
            return False

    def emergency_route(self, dialled: str) -> str | None:
        """The route for the emergency number ``dialled`` (as dialled: ``"112"``), or None when
        it is not one or no route is named for emergency calls."""
        return self.emergency if self.is_emergency(dialled) else None
