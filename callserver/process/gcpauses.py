"""How long the garbage collector holds the process, by generation, for ``/metrics``.

``gc.callbacks`` calls :meth:`GcPauses.observe` as each pass starts and stops; the pause goes
into a fixed set of buckets and a sum per generation, which the metrics read as a Prometheus
histogram (``callserver_gc_pause_seconds``). A pass costs two short calls: the call path sees
about one young pass every eleven calls (bench/call_path's feed).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Mapping
from time import perf_counter

from callserver.process.histogram import Histogram

__all__ = ["BUCKETS", "GcPauses"]

BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # seconds
GENERATIONS = 3


class GcPauses:
    """The pauses of every collector pass since :meth:`install`, per generation."""

    def __init__(self, clock: Callable[[], float] = perf_counter) -> None:
        self._clock = clock
        self._began = 0.0
        self.generations = [Histogram(BUCKETS) for _ in range(GENERATIONS)]

    def install(self) -> None:
        """Time every pass from now on."""
        if self.observe not in gc.callbacks:
            gc.callbacks.append(self.observe)

    def uninstall(self) -> None:
        """Stop timing."""
        if self.observe in gc.callbacks:
            gc.callbacks.remove(self.observe)

    def observe(self, phase: str, info: Mapping[str, int]) -> None:
        """``gc.callbacks``' hook: ``start`` notes the time, ``stop`` adds the pause."""
        if phase == "start":
            self._began = self._clock()
            return
        pause = self._clock() - self._began
        self.generations[info["generation"]].observe(pause)

    def histogram(self, generation: int) -> tuple[list[tuple[str, float]], float]:
        """The cumulative buckets of ``generation`` as Prometheus names them (``le``, the last
        ``+Inf``), and the sum of its pauses in seconds."""
        histogram = self.generations[generation]
        return histogram.buckets(), histogram.sum
