"""The compiled config/centrex.yaml: its groups and their subscribers, with the lookups calls need.

``centrex.compile_centrex`` builds them from the validated file (``centrex_file``). They are
values: frozen, their mappings read-only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from callserver.config.centrex_file import NumberBlock
from callserver.policy.service_codes import ServiceCodes
from callserver.policy.services import ServiceSettings

__all__ = ["Centrex", "Group", "Subscriber"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """A compiled Centrex group: its customer, number blocks, pool, barring and realm."""

    id: str
    customer: str
    blocks: tuple[NumberBlock, ...]
    channels: int | None
    barring: tuple[str, ...]
    realm: str

    def owns(self, number: str) -> bool:
        """True when the E.164 ``number`` lies in one of the group's blocks."""
        return any(number in block for block in self.blocks)


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscriber:
    """A phone of a group: number (E.164), extension, credentials as HA1 by algorithm
    (RFC 7616 §3.4.2: ``H(username:realm:password)``), barring classes (the group's and its
    own), CLIR default, maximum contacts (None: the registrar's default), the language of its
    prompts (None: the server's), its pickup group, and the services the operator set (the
    group's with its own on top) with those its phone may not change (``locks``)."""

    number: str
    group: str
    extension: str
    name: str | None
    username: str
    realm: str
    ha1: Mapping[str, str]
    barring: tuple[str, ...]
    clir: bool
    max_contacts: int | None
    language: str | None = None
    pickup_group: str = ""
    services: ServiceSettings = field(default_factory=ServiceSettings)
    locks: frozenset[str] = frozenset()
    email: str | None = None  # new voicemail messages are mailed here (None: not mailed)
    role: str | None = None  # "supervisor": may monitor the group's calls (calls.supervision)


@dataclass(frozen=True, slots=True, kw_only=True)
class Centrex:
    """Every group and subscriber of config/centrex.yaml, with the lookups calls need."""

    groups: Mapping[str, Group] = field(default_factory=lambda: MappingProxyType({}))
    by_number: Mapping[str, Subscriber] = field(default_factory=lambda: MappingProxyType({}))
    by_extension: Mapping[tuple[str, str], Subscriber] = field(
        default_factory=lambda: MappingProxyType({})
    )
    by_username: Mapping[str, Subscriber] = field(default_factory=lambda: MappingProxyType({}))
    codes: ServiceCodes = field(default_factory=ServiceCodes)  # the codes phones dial

    def subscriber(self, number: str) -> Subscriber | None:
        """The subscriber of the E.164 ``number`` (``+`` optional), else None."""
        return self.by_number.get(number if number.startswith("+") else f"+{number}")

    def extension(self, group: str, extension: str) -> Subscriber | None:
        """The subscriber of ``group`` dialled by its short number, else None."""
        return self.by_extension.get((group, extension))

    def account(self, username: str) -> Subscriber | None:
        """The subscriber whose digest username is ``username`` (case-sensitive), else None."""
        return self.by_username.get(username)

    def group_of(self, number: str) -> Group | None:
        """The group whose blocks hold the E.164 ``number`` (``+`` optional), else None."""
        number = number if number.startswith("+") else f"+{number}"
        return next((g for g in self.groups.values() if g.owns(number)), None)

    def customer_numbers(self, customer: str) -> list[str]:
        """Every number of the blocks of ``customer``'s groups, in order."""
        return [
            number
            for group in self.groups.values()
            if group.customer == customer
            for block in group.blocks
            for number in block.numbers()
        ]
