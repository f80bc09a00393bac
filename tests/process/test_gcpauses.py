"""The garbage collector's pauses, timed by gc.callbacks into per-generation buckets."""

from __future__ import annotations

import gc

from callserver.process.gcpauses import BUCKETS, GcPauses


def test_each_pass_lands_in_its_bucket_and_the_sum() -> None:
    """A 3 ms young pass and a 2 s full one: cumulative buckets, +Inf and sums as timed."""
    times = iter([10.0, 10.003, 20.0, 22.0])
    pauses = GcPauses(clock=lambda: next(times))
    pauses.observe("start", {"generation": 0})
    pauses.observe("stop", {"generation": 0, "collected": 5, "uncollectable": 0})
    pauses.observe("start", {"generation": 2})
    pauses.observe("stop", {"generation": 2, "collected": 0, "uncollectable": 0})
    young, young_sum = pauses.histogram(0)
    assert young[0] == ("0.0005", 0.0)
    assert dict(young)["0.002"] == 0.0
    assert dict(young)["0.005"] == 1.0
    assert young[-1] == ("+Inf", 1.0)
    assert abs(young_sum - 0.003) < 1e-9
    full, full_sum = pauses.histogram(2)
    assert dict(full)[str(BUCKETS[-1])] == 0.0
    assert full[-1] == ("+Inf", 1.0)
    assert full_sum == 2.0
    assert pauses.histogram(1) == ([(str(b), 0.0) for b in BUCKETS] + [("+Inf", 0.0)], 0.0)


def test_installed_it_times_a_real_collection_and_uninstalled_it_stops() -> None:
    """gc.collect() with the hook installed counts one full pass; after uninstall none."""
    pauses = GcPauses()
    pauses.install()
    pauses.install()  # once only
    try:
        gc.collect()
    finally:
        pauses.uninstall()
    assert pauses.histogram(2)[0][-1] == ("+Inf", 1.0)
    gc.collect()
    assert pauses.histogram(2)[0][-1] == ("+Inf", 1.0)
    assert pauses.observe not in gc.callbacks
