"""DTMF out of band in RTP: RFC 4733 telephone-events (SIP INFO bodies: ``dtmf_info``).

Theory of operation
-------------------
A telephone-event payload (RFC 4733 §2.3) is four octets: the event code, the E (end) bit, a
reserved bit, the volume and the duration so far in timestamp units. One key press is sent as a
run of packets that all carry the RTP timestamp of the event's start (§2.5.1.2): the first with
the marker bit, then updates with a growing duration, then the final packet with E set, sent
three times (§2.5.1.4). So ``(ssrc, RTP timestamp)`` names one event.

:class:`TelephoneEventReceiver` reports each event exactly once:

* on the first packet with the E bit; its redundant copies, and any late update, find the key in
  a small bounded memory of reported events and are counted as duplicates (§2.5.1.4, §2.5.2);
* a lost start packet does not matter: the first packet seen opens the event, whatever it is;
* if every end packet is lost, the event is reported when a packet with another timestamp
  arrives from the same ssrc (a new event has begun, so the old one is over), or when
  :meth:`TelephoneEventReceiver.expire` finds that no update came for ``timeout`` seconds
  (updates arrive every ptime, so 0.25 s of silence means the end was lost);
* an event whose end never comes because its updates never stop (a phone that sends no key
  release) is reported once it has lasted ``max_event`` seconds, by its duration field or by
  the time its packets have been arriving; the rest of it, its end included, is absorbed;
* a long event split into 0xFFFF-sample segments (§2.5.1.3) is one key press: a segment that
  ends at duration 0xFFFF and is followed by the same event at timestamp + 0xFFFF is continued,
  not reported again.

:class:`TelephoneEventSender` produces the payloads of one event, one per ptime tick.
Everything here is sans-IO: payload bytes and ``now`` in, digits and bytes out.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = [
    "DIGITS",
    "DtmfStatistics",
    "TelephoneEvent",
    "TelephoneEventReceiver",
    "TelephoneEventSender",
    "parse_telephone_event",
]

DIGITS = "0123456789*#ABCD"
"""The DTMF digits in event-code order: code 0-9 are the digits, 10 is ``*``, 11 is ``#`` and
12-15 are A-D (RFC 4733 §3.2)."""

_RATE = 8000  # the telephone-event clock rate used for DTMF in telephony
_PAYLOAD = struct.Struct("!BBH")
_END_BIT = 0x80
_VOLUME_MASK = 0x3F
_MAX_DURATION = 0xFFFF
_SEGMENT_SLACK = 800  # 100 ms: how far from old timestamp + 0xFFFF a next segment may start


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One decoded telephone-event payload (RFC 4733 §2.3)."""

    event: int
    end: bool
    volume: int
    duration: int


def parse_telephone_event(payload: bytes) -> TelephoneEvent:
    """Decode the first four octets of a telephone-event payload (RFC 4733 §2.3).

    Only the first event block is read; further blocks that a sender may pack after it
    (RFC 4733 §2.5) are not needed here. The R bit is ignored ("the
    receiver MUST ignore it", §2.3.3).

    Raises:
        ValueError: if the payload is shorter than the 4-octet event block.
    """
    if len(payload) < _PAYLOAD.size:
        raise ValueError(
            f"telephone-event payload is {len(payload)} bytes, shorter than the 4-byte event block"
        )
    event, flags, duration = _PAYLOAD.unpack_from(payload)
    return TelephoneEvent(
        event=event,
        end=bool(flags & _END_BIT),
        volume=flags & _VOLUME_MASK,
        duration=duration,
    )


@dataclass(frozen=True, slots=True)
class DtmfStatistics:
    """Counters of a :class:`TelephoneEventReceiver`."""

    digits: int = 0
    duplicates_ignored: int = 0
    malformed: int = 0
    unknown_events: int = 0


@dataclass(slots=True)
class _Open:
    """An event seen from one ssrc whose end has not been handled yet."""

    timestamp: int
    digit: str
    last_seen: float
    duration: int
    started: float  # when its first packet (of its first segment) arrived
    before: int = 0  # samples of its earlier 0xFFFF segments (RFC 4733 §2.5.1.3)
    ended: bool = False  # its end arrived while another event was being reported
    reported: bool = False  # reported for lasting max_event; the rest of it is absorbed

    def lasted(self, now: float) -> float:
        """Seconds the event has lasted: by its duration fields and the time since the last
        of them, or by the time its packets have been arriving if that is longer."""
        by_fields = (self.before + self.duration) / _RATE + now - self.last_seen
        return max(by_fields, now - self.started)


class TelephoneEventReceiver:
    """Turns telephone-event packets of one RTP session into digits (RFC 4733 §2.5.2).

    Args:
        timeout: report an event whose end packets were all lost once no update has come for
            this many seconds (see :meth:`expire`).
        max_event: report an event that has lasted this many seconds without its end (its
            updates go on); once, whatever follows of it.
        memory: how many reported ``(ssrc, timestamp)`` keys are remembered to drop the
            redundant end packets and late updates of events already reported.
        max_sources: how many ssrcs may have an open event at once; beyond it the oldest open
            event is dropped (a peer cannot make the receiver grow without bound).
    """

    __slots__ = (
        "_digits",
        "_done",
        "_duplicates",
        "_malformed",
        "_max_event",
        "_max_sources",
        "_memory",
        "_open",
        "_timeout",
        "_unknown",
        "last_event_at",
        "last_started",
    )

    def __init__(
        self,
        *,
        timeout: float = 0.25,
        max_event: float = 2.0,
        memory: int = 32,
        max_sources: int = 8,
    ) -> None:
        if timeout <= 0 or max_event <= 0 or memory < 1 or max_sources < 1:
            raise ValueError("timeout, max_event, memory and max_sources must be positive")
        self._timeout = timeout
        self._max_event = max_event
        self._memory = memory
        self._max_sources = max_sources
        self._open: dict[int, _Open] = {}
        # Events reported, oldest first (a dict keeps its order: one small object per stream).
        self._done: dict[tuple[int, int], None] = {}
        self._digits = self._duplicates = self._malformed = self._unknown = 0
        self.last_event_at: float | None = None
        """``now`` of the last telephone-event packet; the engine mutes in-band detection
        while events arrive."""
        self.last_started: float | None = None
        """When the first packet of the last event reported arrived: when its key was
        pressed, as far as the receiver saw (a recording ended by the key drops from there)."""

    def receive(self, ssrc: int, timestamp: int, payload: bytes, now: float) -> str | None:
        """Feed one telephone-event packet; return the digit it completes, if any.

        Args:
            ssrc: the packet's RTP SSRC.
            timestamp: the packet's RTP timestamp, the start of the event (RFC 4733 §2.5.1.2).
            payload: the RTP payload.
            now: monotonic arrival time.

        Returns:
            The digit (one of :data:`DIGITS`) when this packet completes an event not reported
            before, else None. Event codes above 15 (not DTMF) are counted and ignored.

        Raises:
            ValueError: for a payload shorter than 4 octets (also counted as malformed).
        """
        try:
            event = parse_telephone_event(payload)
        except ValueError:
            self._malformed += 1
            raise
        self.last_event_at = now
        if event.event >= len(DIGITS):
            self._unknown += 1
            return None
        key = (ssrc, timestamp)
        if key in self._done:
            # RFC 4733 §2.5.1.4: the final packet is sent three times; report it once.
            self._duplicates += 1
            return None
        current = self._open.get(ssrc)
        if current is not None and current.timestamp != timestamp:
            return self._next_event(ssrc, current, timestamp, event, now)
        if current is None:
            current = self._start(ssrc, timestamp, event, now)
        return self._update(ssrc, current, event, now)

    def expire(self, now: float) -> list[str]:
        """Report events whose end packets never came (RFC 4733 §2.5.2, §2.5.1.3).

        An open event is reported when no packet for it has arrived for ``timeout`` seconds,
        at once if its end already arrived but had to wait (see :meth:`receive`), or when it
        has lasted ``max_event`` seconds; each event once. Call it on the media tick, or at
        :meth:`get_timer`.

        Returns:
            The digits reported, oldest first.
        """
        digits: list[str] = []
        for ssrc, current in list(self._open.items()):
            if current.ended or now - current.last_seen >= self._timeout:
                digit = self._report(ssrc)
            else:
                digit = self._report_if_long(current, now)
            digits += [digit] if digit is not None else []
        return digits

    def get_timer(self) -> float | None:
        """The earliest time at which :meth:`expire` will report something, or None."""
        deadlines = [
            current.last_seen
            if current.ended
            else min(current.last_seen + self._timeout, self._long_at(current))
            for current in self._open.values()
        ]
        return min(deadlines, default=None)

    def statistics(self) -> DtmfStatistics:
        """Counters since creation."""
        return DtmfStatistics(
            digits=self._digits,
            duplicates_ignored=self._duplicates,
            malformed=self._malformed,
            unknown_events=self._unknown,
        )

    def _start(self, ssrc: int, timestamp: int, event: TelephoneEvent, now: float) -> _Open:
        if len(self._open) >= self._max_sources:
            del self._open[next(iter(self._open))]
        current = _Open(timestamp, DIGITS[event.event], now, event.duration, now)
        self._open[ssrc] = current
        return current

    def _update(self, ssrc: int, current: _Open, event: TelephoneEvent, now: float) -> str | None:
        """A packet of the open event ``current``: its end reports it, else it may be long."""
        current.last_seen = now
        current.duration = max(current.duration, event.duration)  # updates may come reordered
        if event.end or current.ended:
            return self._report(ssrc)
        return self._report_if_long(current, now)

    def _next_event(
        self, ssrc: int, previous: _Open, timestamp: int, event: TelephoneEvent, now: float
    ) -> str | None:
        """A packet with a new timestamp: the previous event is over and its end was lost."""
        del self._open[ssrc]
        self._remember((ssrc, previous.timestamp))
        current = self._start(ssrc, timestamp, event, now)
        if _continues(previous, current.digit, timestamp):
            # RFC 4733 §2.5.1.3: a long event goes on in a segment that starts where the full
            # one ends (within a packet or so); it is still one key press.
            current.started, current.reported = previous.started, previous.reported
            current.before = previous.before + _MAX_DURATION
            return self._update(ssrc, current, event, now)
        if previous.reported:
            return self._update(ssrc, current, event, now)
        self._digits += 1
        self.last_started = previous.started
        # Should this packet also end the new event, it is reported on its next end copy or
        # at the next expire(): receive() returns one digit at a time.
        current.ended = event.end
        return previous.digit

    def _report(self, ssrc: int) -> str | None:
        """Close the open event of ``ssrc``: its digit, or None if reported already."""
        current = self._open.pop(ssrc)
        self._remember((ssrc, current.timestamp))
        if current.reported:
            return None
        self._digits += 1
        self.last_started = current.started
        return current.digit

    def _report_if_long(self, current: _Open, now: float) -> str | None:
        """Report an event still going on after ``max_event`` seconds, once."""
        if current.reported or current.lasted(now) < self._max_event:
            return None
        current.reported = True
        self._digits += 1
        self.last_started = current.started
        return current.digit

    def _long_at(self, current: _Open) -> float:
        """When ``current`` will have lasted ``max_event`` (inf once it is reported)."""
        if current.reported:
            return float("inf")
        by_duration = self._max_event - (current.before + current.duration) / _RATE
        return min(current.started + self._max_event, current.last_seen + by_duration)

    def _remember(self, key: tuple[int, int]) -> None:
        done = self._done
        done[key] = None
        if len(done) > self._memory:
            del done[next(iter(done))]


def _continues(previous: _Open, digit: str, timestamp: int) -> bool:
    """Whether an event at ``timestamp`` is the next 0xFFFF segment of ``previous``."""
    if previous.duration != _MAX_DURATION or digit != previous.digit:
        return False
    advance = (timestamp - previous.timestamp) & 0xFFFFFFFF
    return abs(advance - _MAX_DURATION) <= _SEGMENT_SLACK


class TelephoneEventSender:
    """The telephone-event payloads of one key press, one per ptime tick (RFC 4733 §2.5.1).

    Every packet of the event goes out with the same RTP timestamp, the one the caller's
    stream has when the event starts (§2.5.1.2); the marker bit is set on the first packet only;
    each update's duration grows by one ptime in 8 kHz samples; the last packet has the E bit
    and is sent ``end_repeats`` times in all ("The final packet for each event and for each
    segment SHOULD be sent a total of three times", §2.5.1.4). The R bit is zero ("The sender
    MUST set it to zero", §2.3.3).

    Args:
        digit: one of :data:`DIGITS`.
        duration_ms: the tone's duration, at most 0xFFFF samples (8191 ms) so it needs no
            segments.
        volume: the tone's power level in -dBm0, 0..63 (§2.3.4).
        ptime_ms: the packet interval.
        end_repeats: how many times the final packet is sent.

    Raises:
        ValueError: for a digit not in :data:`DIGITS` or a value out of range.
    """

    __slots__ = ("_elapsed", "_ends_left", "_event", "_first", "_flags", "_step", "_total")

    def __init__(
        self,
        digit: str,
        *,
        duration_ms: int = 100,
        volume: int = 10,
        ptime_ms: int = 20,
        end_repeats: int = 3,
    ) -> None:
        if len(digit) != 1 or digit not in DIGITS:
            raise ValueError(f"{digit!r} is not a DTMF digit (one of {DIGITS})")
        if not 0 < duration_ms * _RATE // 1000 <= _MAX_DURATION:
            raise ValueError(f"duration {duration_ms} ms is outside 1..8191 ms")
        if not 0 <= volume <= _VOLUME_MASK:
            raise ValueError(f"volume {volume} is outside 0..63 (-dBm0)")
        if ptime_ms <= 0 or end_repeats < 1:
            raise ValueError("ptime_ms and end_repeats must be positive")
        self._event = DIGITS.index(digit)
        self._flags = volume
        self._total = duration_ms * _RATE // 1000
        self._step = ptime_ms * _RATE // 1000
        self._elapsed = 0
        self._ends_left = end_repeats
        self._first = True

    def next_payload(self) -> tuple[bool, bytes] | None:
        """The next packet's marker bit and 4-octet payload, or None once the event is sent."""
        if self._ends_left == 0:
            return None
        marker, self._first = self._first, False
        self._elapsed = min(self._elapsed + self._step, self._total)
        flags = self._flags
        if self._elapsed == self._total:
            flags |= _END_BIT
            self._ends_left -= 1
        return marker, _PAYLOAD.pack(self._event, flags, self._elapsed)
