"""Overload control: the three signals, the refusal they give, and the episodes they make."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from callserver.policy.overload import (
    EpisodeEnded,
    EpisodeStarted,
    OverloadControl,
    OverloadSettings,
)


@dataclass
class _Load:
    """The signals, set by each test."""

    backlog: int = 0
    load: float = 0.0
    lag: float = 0.0
    in_setup: int = 0
    free_ports: int = 1000


def _control(load: _Load, *, started: bool = True, **settings: object) -> OverloadControl:
    control = OverloadControl(
        OverloadSettings.model_validate(settings),
        receive_backlog=lambda: load.backlog,
        loop_load=lambda: load.load,
        clock_lag=lambda: load.lag,
        in_setup=lambda: load.in_setup,
        free_ports=lambda: load.free_ports,
    )
    if started:
        control.start(0.0)
    return control


def test_a_server_within_its_limits_admits() -> None:
    """Signals under every limit: the INVITE is served, nothing is counted."""
    control = _control(_Load(load=0.79, lag=0.009, in_setup=399, free_ports=5))
    assert control.admit(10.0) is None
    assert control.statistics().refused == 0
    assert control.poll(10.0) == []


def test_each_signal_past_its_limit_refuses_with_its_name() -> None:
    """A busy loop, a late clock, too many INVITEs in setup, too few ports: 503 naming it."""
    load = _Load()
    control = _control(load, retry_after=9)
    load.load = 0.95
    busy = control.admit(0.9)
    load.load, load.lag = 0.5, 0.011
    lag = control.admit(1.0)
    load.lag, load.in_setup = 0.0, 400
    setup = control.admit(1.1)
    load.in_setup, load.free_ports = 0, 4
    ports = control.admit(1.2)
    refusals = [s for s in (busy, lag, setup, ports) if s is not None]
    assert [(s.reason, s.retry_after) for s in refusals] == [
        ("loop_load", 9),
        ("clock_lag", 9),
        ("calls_in_setup", 9),
        ("rtp_ports", 9),
    ]
    stats = control.statistics()
    assert stats.by_reason == {
        "loop_load": 1,
        "clock_lag": 1,
        "calls_in_setup": 1,
        "rtp_ports": 1,
    }
    assert (stats.refused, stats.episodes, stats.shedding) == (4, 1, True)


def test_an_episode_starts_at_the_first_refusal_and_ends_after_a_calm_spell() -> None:
    """One started event with the signals, one ended event after ``calm`` seconds without."""
    load = _Load(load=0.5, lag=0.020, in_setup=12, free_ports=900)
    control = _control(load, calm=1.0)
    control.admit(5.0)
    control.admit(5.5)
    load.lag = 0.001
    assert control.admit(5.6) is None  # admitted during the episode
    started = EpisodeStarted(
        reason="clock_lag",
        receive_backlog_kib=0,
        loop_load=0.5,
        clock_lag_ms=20.0,
        invites_in_setup=12,
        free_rtp_ports=900,
    )
    assert control.poll(5.7) == [started]
    assert control.poll(6.4) == []  # 0.9 s calm: still on
    assert control.poll(6.5) == [EpisodeEnded(duration_s=0.5, refused=2, admitted=1)]
    assert not control.statistics().shedding
    load.lag = 0.011
    control.admit(9.0)
    assert [type(e) for e in control.poll(9.0)] == [EpisodeStarted]
    assert control.statistics().episodes == 2


def test_requests_waiting_unread_refuse_even_before_the_load_counts() -> None:
    """Over max_receive_backlog_kib of unread requests every new INVITE is refused, at once."""
    load = _Load(backlog=512 * 1024)
    control = _control(load)
    assert control.admit(0.1) is None
    load.backlog += 1
    refused = control.admit(0.2)
    assert refused is not None and refused.reason == "receive_backlog"
    (started,) = control.poll(0.2)
    assert isinstance(started, EpisodeStarted) and started.receive_backlog_kib == 512


def test_near_the_load_limit_a_growing_share_is_refused_evenly() -> None:
    """From 0.1 below max_loop_load: at 0.85 every second INVITE, at 0.875 three in four."""
    load = _Load(load=0.85)
    control = _control(load)
    half = [control.admit(1.0) is not None for _ in range(20)]
    assert sum(half) in (9, 10)
    assert all(not (a and b) for a, b in itertools.pairwise(half))  # never two in a row
    load.load = 0.875
    three_quarters = [control.admit(1.0) is not None for _ in range(20)]
    assert sum(three_quarters) in (14, 15, 16)
    assert all(a or b for a, b in itertools.pairwise(three_quarters))  # never two admitted
    load.load = 0.5
    assert control.admit(1.0) is None


def test_a_late_clock_on_a_mostly_idle_loop_is_not_overload() -> None:
    """Lateness while the loop is under half loaded is another process's doing: admitted."""
    load = _Load(load=0.44, lag=0.050)
    control = _control(load)
    assert control.admit(1.0) is None
    load.load = 0.45
    refused = control.admit(1.1)
    assert refused is not None and refused.reason == "clock_lag"


def test_start_up_work_is_not_load() -> None:
    """Before start() and a quarter second after it, a busy or late loop refuses nothing;
    INVITEs in setup and the RTP ports count from the first."""
    load = _Load(load=1.0, lag=0.5)
    control = _control(load, started=False)
    assert control.admit(5.0) is None
    control.start(10.0)
    assert control.admit(10.2) is None
    refused = control.admit(10.25)
    assert refused is not None and refused.reason == "loop_load"
    load.load, load.free_ports = 0.0, 0
    ports = _control(load, started=False).admit(1.0)
    assert ports is not None and ports.reason == "rtp_ports"


def test_disabled_control_admits_everything() -> None:
    """``enabled: false`` serves every INVITE whatever the signals say."""
    control = _control(_Load(load=1.0, lag=1.0, in_setup=10_000, free_ports=0), enabled=False)
    assert control.admit(1.0) is None
