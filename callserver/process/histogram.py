"""A histogram of fixed buckets, as Prometheus reads one: counts per bucket and their sum.

Observing is one bisection and two additions, cheap enough for a hook that runs on every
garbage-collector pass or every shared admission; the metrics read :meth:`Histogram.buckets`
at scrape time.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

__all__ = ["Histogram"]


class Histogram:
    """Values counted into the buckets ``bounds`` (ascending upper bounds), one more for the
    values above the last, and their sum."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count ``value``."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def cumulative(self) -> tuple[int, ...]:
        """The count of values up to each bound, then of all of them (``+Inf``)."""
        cumulative, total = [], 0
        for count in self.counts:
            total += count
            cumulative.append(total)
        return tuple(cumulative)

    def buckets(self) -> list[tuple[str, float]]:
        """The cumulative buckets as Prometheus names them (``le``; the last ``+Inf``)."""
        names = (*map(str, self.bounds), "+Inf")
        return [(name, float(count)) for name, count in zip(names, self.cumulative(), strict=True)]
