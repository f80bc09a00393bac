"""Garbage-collector tuning of the server process (bench/RESULTS.md, sip_cps)."""

from __future__ import annotations

import gc

__all__ = ["FULL_GC_INTERVAL", "tune_gc"]


# A full collection walks every live dialog and transaction (a few hundred ms at 700 calls/s),
# so it runs on this schedule rather than whenever CPython's heuristics decide.
FULL_GC_INTERVAL = 600.0


def tune_gc() -> None:
    """Keep full garbage-collector passes off the call path.

    Young generations keep CPython's thresholds, so short-lived cycles go as before and each
    pass stays small. Full passes are left to ``Server``'s schedule (FULL_GC_INTERVAL): at
    700 calls/s they were what pushed INVITE->200 p99 to 212 ms, against 4 ms without them
    (bench/RESULTS.md). Objects from start-up are frozen out of the collector's view.
    """
    gc.freeze()
    gc.set_threshold(700, 10, 1_000_000)
