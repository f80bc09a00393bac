"""A compiled dialplan and the set of them the server runs, one per called number.

A ``Plan`` is immutable: a call keeps the plan it started with while reload builds a new
``PlanSet`` and swaps one reference, so calls in progress finish on their version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from callserver.dialplan.values import number_key
from callserver.dialplan.verbs.base import Step

__all__ = ["DEFAULT_PLAN", "Plan", "PlanSet"]

DEFAULT_PLAN = "default"
"""The plan of numbers that have no file of their own (``dialplans/default.yaml``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """One number's compiled dialplan; ``version`` is a hash of the file's content."""

    number: str
    source: str
    version: str
    start: str
    steps: Mapping[str, Step]
    language: str | None = None
    languages: frozenset[str] = frozenset()
    max_duration: float | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PlanSet:
    """Every loaded plan by number (E.164 digits, no ``+``) and ``default``."""

    plans: Mapping[str, Plan] = field(default_factory=dict)

    def plan_for(self, called: str) -> Plan | None:
        """The plan of the called number (any written form), else the default plan, else None."""
        return self.plans.get(number_key(called)) or self.plans.get(DEFAULT_PLAN)

    def own_plan(self, called: str) -> Plan | None:
        """The plan written for the called number itself (not the default), else None."""
        return self.plans.get(number_key(called))

    def __len__(self) -> int:
        return len(self.plans)
