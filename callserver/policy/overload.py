"""Overload control: whether a new call can be served, decided before any work is spent on it.

Theory of operation
-------------------
Premium-rate and free-phone numbers take bursts. Above its capacity a server that takes every
INVITE on collapses: transactions retransmit, calls pile up until the RTP ports run out, the
media clock runs late for every call in progress and goodput falls to a few percent of the
offered load. So each new INVITE (no To tag, no transaction yet) is put to ``admit`` first, by
the SIP layer itself, before caller identity, dialplans, RTP ports or CDR work, and what is
refused is answered 503 with Retry-After at once, without a transaction (RFC 3261 §8.2.7,
``callserver.sip.stateless``). ``admit`` reads five signals, each a number the server keeps
anyway or one system call:

- ``receive_backlog``: the bytes of requests waiting in the SIP sockets' kernel receive
  queues. A loop that cannot keep up leaves them there, where every one grows stale: past a
  few hundred milliseconds the callers retransmit and each INVITE counts twice. Over the limit
  every new INVITE is refused, which drains the queue at the cost of a refusal each;
- ``loop_load``: the share of wall time the event loop's thread spent on the CPU, smoothed
  over the media clock's last ticks (about 200 ms). Near 1 the loop has no time left and
  every answer comes late. From 0.1 below ``max_loop_load`` a growing share of new INVITEs is
  refused (every n-th, evenly), all of them above it: refusing all or nothing in turn would
  swing the admitted rate between bursts and silence, with the queue growing in every burst;
- ``clock_lag``: how late the media clock wakes, smoothed over about 80 ms (seconds): what every
  call in progress hears when the loop is held (a long callback, a burst of datagrams). It
  counts only while the loop is at least half loaded: lateness on a mostly idle loop is the
  machine's doing (another process on the core, a hypervisor's steal), and refusing calls
  would not give that time back;
- ``in_setup``: INVITEs received and not yet given a final response: admitted work not done;
- ``free_ports``: the RTP port pairs left.

Any signal past its limit (``OverloadSettings``) refuses the call, naming the signal
(``receive_backlog``, ``loop_load``, ``clock_lag``, ``calls_in_setup``, ``rtp_ports``). The
refused calls' retransmissions are absorbed by the SIP layer, and the calls already admitted
keep their clock: the loop spends on a refusal a small fraction of what a call costs.

The load and the lateness are read from ``start(now)`` on, a quarter of a second after the
server is ready: what start-up does on the loop (the first dialplans, the collector's freeze)
is not load, and its trace is gone from the smoothed figures by then.

Episodes. The first refusal after a calm spell starts an episode; it ends when ``calm``
seconds pass without a refusal. ``poll(now)`` returns the ``EpisodeStarted`` and
``EpisodeEnded`` events since the last poll, for the server to log (one line each), and
``statistics()`` the counters.

RFC 7339 (``oc`` in Via) lets an upstream proxy that asks for it be told, in the Via of every
response, what share of its requests to drop before sending them. It is not done here: it
needs the proxy's support and a per-client loss rate fed back on every response, and a trunk
without it is still owed the 503 with Retry-After (RFC 3261 §21.5.4) that every SIP peer
understands. It is the natural next step once a Kamailio in front of several nodes asks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from callserver.sip.stateless import Shed

__all__ = [
    "EpisodeEnded",
    "EpisodeStarted",
    "OverloadControl",
    "OverloadSettings",
    "OverloadStatistics",
]

_SETTLE = 0.25  # seconds after start() before the load and the lateness count
_BAND = 0.1  # below max_loop_load by this much, the share of INVITEs refused starts to grow


class OverloadSettings(BaseModel):
    """When new INVITEs are refused with 503 (the ``overload`` section of the settings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    enabled: bool = True
    max_receive_backlog_kib: int = Field(512, ge=1, description="SIP requests not read yet")
    max_loop_load: float = Field(0.9, gt=0.1, le=1, description="event loop's share of CPU")
    max_clock_lag_ms: float = Field(10.0, gt=0, description="smoothed media clock lateness")
    max_calls_in_setup: int = Field(400, ge=1, description="INVITEs without a final response")
    min_free_rtp_ports: int = Field(4, ge=0, description="RTP port pairs kept free")
    retry_after: int = Field(5, ge=1, le=3600, description="seconds, in the 503's Retry-After")
    calm: float = Field(1.0, gt=0, description="seconds without a refusal that end an episode")


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeStarted:
    """The first refusal after a calm spell, with the signals that refused it."""

    reason: str
    receive_backlog_kib: int
    loop_load: float
    clock_lag_ms: float
    invites_in_setup: int
    free_rtp_ports: int


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodeEnded:
    """``calm`` seconds passed without a refusal: how long it lasted and what it did."""

    duration_s: float
    refused: int
    admitted: int


@dataclass(frozen=True, slots=True, kw_only=True)
class OverloadStatistics:
    """Counters since start: INVITEs refused (by reason) and episodes; whether one is on."""

    refused: int
    by_reason: dict[str, int]
    episodes: int
    shedding: bool


class OverloadControl:
    """Admits or refuses new INVITEs by the server's load (see the module docstring).

    Args:
        settings: The limits.
        receive_backlog: Bytes waiting in the SIP sockets' receive queues.
        loop_load: The event loop thread's smoothed share of CPU (``MediaClock.load``).
        clock_lag: The media clock's smoothed lateness in seconds (``MediaClock.lag``).
        in_setup: INVITEs received without a final response yet.
        free_ports: RTP port pairs left.
    """

    def __init__(
        self,
        settings: OverloadSettings,
        *,
        receive_backlog: Callable[[], int],
        loop_load: Callable[[], float],
        clock_lag: Callable[[], float],
        in_setup: Callable[[], int],
        free_ports: Callable[[], int],
    ) -> None:
        self.settings = settings
        self._receive_backlog = receive_backlog
        self._loop_load = loop_load
        self._clock_lag = clock_lag
        self._in_setup = in_setup
        self._free_ports = free_ports
        self._watch_from = float("inf")  # the load and the lateness count from then on
        self._debt = 0.0  # refusals owed by the share the load calls for
        self._by_reason: dict[str, int] = {}
        self._episodes = 0
        self._started: float | None = None  # the episode in progress, if any
        self._last_refusal = 0.0
        self._episode_refused = self._episode_admitted = 0
        self._events: list[EpisodeStarted | EpisodeEnded] = []

    def start(self, now: float) -> None:
        """The server is ready: watch the load and the lateness from shortly after ``now``."""
        self._watch_from = now + _SETTLE

    def admit(self, now: float) -> Shed | None:
        """None if a new INVITE arriving at ``now`` can be served, else why not (a ``Gate``)."""
        settings = self.settings
        if not settings.enabled:
            return None
        if self._receive_backlog() > settings.max_receive_backlog_kib * 1024:
            return self._refuse("receive_backlog", now)
        if now >= self._watch_from:
            load = self._loop_load()
            if self._sheds_for(load, settings.max_loop_load):
                return self._refuse("loop_load", now)
            lag = self._clock_lag() > settings.max_clock_lag_ms / 1000
            if lag and load >= settings.max_loop_load / 2:
                return self._refuse("clock_lag", now)
        if self._in_setup() >= settings.max_calls_in_setup:
            return self._refuse("calls_in_setup", now)
        if self._free_ports() <= settings.min_free_rtp_ports:
            return self._refuse("rtp_ports", now)
        if self._started is not None:
            self._episode_admitted += 1
        return None

    def _sheds_for(self, load: float, limit: float) -> bool:
        """Refuse the share of INVITEs the load calls for: none below ``limit - _BAND``, all
        above ``limit``, in between a share that grows with the load, spread evenly (every
        n-th INVITE, not in bursts) so the admitted rate settles instead of swinging."""
        share = (load - limit + _BAND) / _BAND
        if share <= 0:
            self._debt = 0.0
            return False
        self._debt += min(share, 1.0)
        if self._debt < 1.0:
            return False
        self._debt -= 1.0
        return True

    def poll(self, now: float) -> list[EpisodeStarted | EpisodeEnded]:
        """The episode events since the last poll; ends the episode after ``calm`` seconds."""
        started = self._started
        if started is not None and now - self._last_refusal >= self.settings.calm:
            self._events.append(
                EpisodeEnded(
                    duration_s=round(self._last_refusal - started, 3),
                    refused=self._episode_refused,
                    admitted=self._episode_admitted,
                )
            )
            self._started = None
        events, self._events = self._events, []
        return events

    def statistics(self) -> OverloadStatistics:
        """A snapshot of the counters."""
        return OverloadStatistics(
            refused=sum(self._by_reason.values()),
            by_reason=dict(self._by_reason),
            episodes=self._episodes,
            shedding=self._started is not None,
        )

    def _refuse(self, reason: str, now: float) -> Shed:
        self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        if self._started is None:
            self._started, self._episodes = now, self._episodes + 1
            self._episode_refused = self._episode_admitted = 0
            self._events.append(
                EpisodeStarted(
                    reason=reason,
                    receive_backlog_kib=self._receive_backlog() // 1024,
                    loop_load=round(self._loop_load(), 3),
                    clock_lag_ms=round(self._clock_lag() * 1000, 1),
                    invites_in_setup=self._in_setup(),
                    free_rtp_ports=self._free_ports(),
                )
            )
        self._episode_refused += 1
        self._last_refusal = now
        return Shed(reason=reason, retry_after=self.settings.retry_after)
