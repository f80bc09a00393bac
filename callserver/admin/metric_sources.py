"""What the metrics read from the server's objects, grouped into label sets at scrape time.

Pure functions over what ``admin.metrics`` hands them: the calls in progress, the registrar's
bindings; each returns counts keyed by bounded labels (the channel pools are ``admin.pools``,
which the API reads too).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from callserver.calls.call import Call
    from callserver.config.centrex_groups import Centrex
    from callserver.config.tariffs import Tariffs

__all__ = [
    "REJECTIONS",
    "bindings_per_customer",
    "calls_in_progress",
    "customer_of_aor",
    "ingest_lag",
]

# The CDR reasons of an inbound call refused before any answer (calls.reporting).
REJECTIONS = frozenset(
    {
        "overload",
        "channel_limit",
        "cps_limit",
        "blacklist",
        "barred",
        "auth_failed",
        "unknown_source",
        "no_route",
        "anonymous",
        "rejected",
    }
)


def calls_in_progress(
    calls: Iterable[Call], tariffs: Tariffs
) -> dict[tuple[str, str, str, str], int]:
    """Calls by (trunk, customer, number class, direction); "" where a call has none."""
    counts: dict[tuple[str, str, str, str], int] = {}
    classes: dict[str, str] = {}  # called number: its class, once per scrape
    for call in calls:
        facts = call.facts
        if facts is None:
            key = ("", "", call.number_class or "", "inbound")
        else:
            number_class = call.number_class or _class_of(facts.called, tariffs, classes)
            key = (facts.trunk or "", facts.customer or "", number_class, facts.direction)
        counts[key] = counts.get(key, 0) + 1
    return counts


def _class_of(called: str, tariffs: Tariffs, known: dict[str, str]) -> str:
    found = known.get(called)
    if found is None:
        try:
            found = tariffs.classify(called).name
        except ValueError:  # not a number (a SIP URI, a service) or no class matches
            found = ""
        known[called] = found
    return found


def bindings_per_customer(counts: Mapping[str, int], centrex: Centrex) -> dict[str, int]:
    """The registrar's bindings by the customer of each address-of-record's phone ("" for
    an address that is no Centrex phone)."""
    customers: dict[str, int] = {}
    for aor, count in counts.items():
        customer = customer_of_aor(aor, centrex) or ""
        customers[customer] = customers.get(customer, 0) + count
    return customers


def customer_of_aor(aor: str, centrex: Centrex) -> str | None:
    """The customer of the Centrex phone whose bindings are kept under ``aor`` (its E.164
    number, ``calls.registration``); None for an address that is no Centrex phone."""
    subscriber = centrex.subscriber(aor) if aor.lstrip("+").isdigit() else None
    if subscriber is None:
        return None
    return centrex.groups[subscriber.group].customer


def ingest_lag(last_success: float | None, now: float | None) -> float | None:
    """Seconds since the last successful CDR ingest; None before the first or without ``now``."""
    if last_success is None or now is None:
        return None
    return max(0.0, now - last_success)
