"""Tests for RFC 4733 telephone-events (callserver.media.dtmf)."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callserver.media.dtmf import (
    DIGITS,
    DtmfStatistics,
    TelephoneEvent,
    TelephoneEventReceiver,
    TelephoneEventSender,
    parse_telephone_event,
)

SSRC = 0x1234ABCD
PTIME = 0.02


def payload(digit: str, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    """A telephone-event payload built by hand (RFC 4733 §2.3), independent of the sender."""
    return struct.pack("!BBH", DIGITS.index(digit), (0x80 if end else 0) | volume, duration)


def event_packets(digit: str, timestamp: int, updates: int = 4) -> list[tuple[int, bytes]]:
    """``(timestamp, payload)`` of one event: a start, updates and three end copies."""
    packets = [(timestamp, payload(digit, 160 * (i + 1))) for i in range(updates)]
    final = payload(digit, 160 * (updates + 1), end=True)
    return packets + [(timestamp, final)] * 3


class Feed:
    """Drives a receiver with packets 20 ms apart and collects every digit it reports."""

    def __init__(self, receiver: TelephoneEventReceiver | None = None, ssrc: int = SSRC) -> None:
        self.receiver = receiver or TelephoneEventReceiver()
        self.ssrc = ssrc
        self.now = 1000.0
        self.digits: list[str] = []

    def send(self, packets: list[tuple[int, bytes]]) -> None:
        """Deliver ``packets`` in the given order."""
        for timestamp, data in packets:
            self.now += PTIME
            digit = self.receiver.receive(self.ssrc, timestamp, data, self.now)
            if digit is not None:
                self.digits.append(digit)

    def expire(self, after: float) -> None:
        """Let ``after`` seconds pass and run the receiver's expiry."""
        self.now += after
        self.digits += self.receiver.expire(self.now)


# -- payload ------------------------------------------------------------------------------------


def test_parse_payload_fields() -> None:
    """The event code, E bit, volume and duration are read; the R bit is ignored."""
    assert parse_telephone_event(b"\x0b\xca\x03\x20") == TelephoneEvent(
        event=11, end=True, volume=10, duration=800
    )


def test_parse_payload_too_short() -> None:
    """A payload under four octets raises ValueError with the length in the message."""
    with pytest.raises(ValueError, match="3 bytes, shorter than the 4-byte"):
        parse_telephone_event(b"\x01\x02\x03")


# -- receiver -----------------------------------------------------------------------------------


def test_clean_event_reported_once_on_first_end() -> None:
    """The digit comes with the first E-bit packet; the two redundant ones are ignored."""
    feed = Feed()
    assert feed.receiver.last_event_at is None
    packets = event_packets("5", 8000)
    feed.send(packets[:-3])
    assert feed.digits == []
    assert feed.receiver.last_event_at == feed.now  # the latest packet's arrival
    feed.send(packets[-3:-2])
    assert feed.digits == ["5"]
    feed.send(packets[-2:])
    feed.expire(1.0)
    assert feed.digits == ["5"]
    assert feed.receiver.statistics() == DtmfStatistics(digits=1, duplicates_ignored=2)


def test_lost_start_packet() -> None:
    """An event whose first packet was lost is still reported once."""
    feed = Feed()
    feed.send(event_packets("7", 8000)[2:])
    feed.expire(1.0)
    assert feed.digits == ["7"]


def test_lost_middle_packets() -> None:
    """Losing updates changes nothing."""
    feed = Feed()
    packets = event_packets("9", 8000, updates=6)
    feed.send(packets[:1] + packets[5:])
    feed.expire(1.0)
    assert feed.digits == ["9"]


def test_all_ends_lost_then_new_event() -> None:
    """Without end packets, an event is reported when the next event's first packet arrives."""
    feed = Feed()
    feed.send(event_packets("1", 8000)[:-3])
    assert feed.digits == []
    second = event_packets("2", 9600)
    feed.send(second[:1])
    assert feed.digits == ["1"]
    feed.send(second[1:])
    feed.expire(1.0)
    assert feed.digits == ["1", "2"]


def test_all_ends_lost_then_timeout() -> None:
    """Without end packets, expire() reports the event once no update came for 0.25 s."""
    feed = Feed()
    feed.send(event_packets("3", 8000)[:-3])
    last = feed.now
    assert feed.receiver.get_timer() == pytest.approx(last + 0.25)
    assert feed.receiver.expire(last + 0.24) == []
    assert feed.receiver.expire(last + 0.25) == ["3"]
    assert feed.receiver.expire(last + 5) == []
    assert feed.receiver.get_timer() is None


def test_late_end_after_timeout_is_a_duplicate() -> None:
    """End packets that arrive after the timeout reported the event are ignored."""
    feed = Feed()
    packets = event_packets("4", 8000)
    feed.send(packets[:-3])
    feed.expire(0.5)
    feed.send(packets[-3:])
    assert feed.digits == ["4"]
    assert feed.receiver.statistics().duplicates_ignored == 3


def test_new_event_arrives_as_end_while_previous_open() -> None:
    """Two events completed by one packet are both reported, the second one just after."""
    feed = Feed()
    feed.send(event_packets("1", 8000)[:-3])
    second = event_packets("2", 9600)
    feed.send(second[-3:-2])
    assert feed.digits == ["1"]
    assert feed.receiver.get_timer() == feed.now  # due at once
    feed.send(second[-2:])
    feed.expire(1.0)
    assert feed.digits == ["1", "2"]


def test_same_digit_twice_is_two_events() -> None:
    """The same digit pressed twice has two timestamps and is reported twice."""
    feed = Feed()
    feed.send(event_packets("8", 8000) + event_packets("8", 9600))
    feed.expire(1.0)
    assert feed.digits == ["8", "8"]


def test_interleaved_sources_are_separate() -> None:
    """Events from two ssrcs do not end each other."""
    receiver = TelephoneEventReceiver()
    first, second = Feed(receiver, ssrc=1), Feed(receiver, ssrc=2)
    a, b = event_packets("A", 8000), event_packets("B", 8000)
    for pa, pb in zip(a, b, strict=True):
        first.send([pa])
        second.send([pb])
    assert first.digits == ["A"]
    assert second.digits == ["B"]


def test_long_event_segments_are_one_press() -> None:
    """A long event split into 0xFFFF-sample segments (RFC 4733 §2.5.1.3) is one digit."""
    feed = Feed()
    first = [(8000, payload("0", 0xFF00)), (8000, payload("0", 0xFFFF))] * 2
    second = [(8000 + 0xFFFF, payload("0", 800)), (8000 + 0xFFFF, payload("0", 1600, end=True))]
    feed.send(first + second + second[-1:] * 2)
    feed.expire(1.0)
    assert feed.digits == ["0"]


def held_key(digit: str, timestamp: int, seconds: float) -> list[tuple[int, bytes]]:
    """Updates every 20 ms of a key held ``seconds`` and never released: no end packet."""
    return [(timestamp, payload(digit, 160 * (i + 1))) for i in range(round(seconds / PTIME))]


def test_held_key_is_reported_once_after_max_event() -> None:
    """A key whose updates never stop is reported once at 2 s, then its rest is absorbed."""
    feed = Feed()
    packets = held_key("5", 8000, 6.0)
    feed.send(packets[:99])  # 1.98 s of event
    assert feed.digits == []
    feed.send(packets[99:100])
    assert feed.digits == ["5"]
    feed.send(packets[100:] + [(8000, payload("5", 160 * 301, end=True))] * 3)
    feed.expire(1.0)
    assert feed.digits == ["5"]
    assert feed.receiver.statistics().digits == 1


def test_held_key_then_the_next_key() -> None:
    """After a held key was reported, the next key press is reported as usual, once."""
    feed = Feed()
    feed.send(held_key("1", 8000, 3.0))
    feed.send(event_packets("2", 8000 + 160 * 200))
    feed.expire(1.0)
    assert feed.digits == ["1", "2"]


def test_event_with_stuck_duration_is_reported_by_arrival_time() -> None:
    """A sender whose duration field never grows is reported once its packets span 2 s."""
    feed = Feed(TelephoneEventReceiver(max_event=1.0))
    feed.send([(8000, payload("9", 160))] * 49)
    assert feed.digits == []
    feed.send([(8000, payload("9", 160))] * 30)
    assert feed.digits == ["9"]


def test_held_key_over_segments_is_one_digit() -> None:
    """A key held for 20 s crosses two 0xFFFF segments (RFC 4733 §2.5.1.3) and is one digit."""
    feed = Feed()
    for n in range(3):
        start = 8000 + n * 0xFFFF
        feed.send([(start, payload("#", d)) for d in range(160, 0xFFFF, 160 * 40)])
        feed.send([(start, payload("#", 0xFFFF))] * (3 if n < 2 else 0))
    feed.expire(1.0)
    assert feed.digits == ["#"]


def test_expire_and_timer_report_a_long_event() -> None:
    """The timer falls due when an event reaches max_event; expire reports it then, once."""
    receiver = TelephoneEventReceiver(timeout=5.0, max_event=2.0)
    receiver.receive(SSRC, 8000, payload("4", 160 * 50), 10.0)  # an event 1 s old arrives
    assert receiver.get_timer() == pytest.approx(11.0)
    assert receiver.expire(10.9) == []
    assert receiver.expire(11.0) == ["4"]
    assert receiver.expire(11.5) == []
    assert receiver.get_timer() == pytest.approx(15.0)  # its silence ends it, unreported
    assert receiver.expire(15.0) == []
    assert receiver.get_timer() is None


def test_receiver_rejects_a_non_positive_max_event() -> None:
    """max_event must be positive, like the other limits."""
    with pytest.raises(ValueError, match="max_event"):
        TelephoneEventReceiver(max_event=0)


def test_unknown_event_ignored_and_counted() -> None:
    """Event codes above 15 (not DTMF) give no digit but update last_event_at."""
    feed = Feed()
    feed.send([(8000, b"\x10\x8a\x03\x20")])
    assert feed.digits == []
    assert feed.receiver.last_event_at == feed.now
    assert feed.receiver.statistics().unknown_events == 1


def test_short_payload_raises_and_counts() -> None:
    """A short payload raises ValueError and counts as malformed."""
    receiver = TelephoneEventReceiver()
    with pytest.raises(ValueError, match="shorter than the 4-byte"):
        receiver.receive(SSRC, 0, b"\x05", 1.0)
    assert receiver.statistics().malformed == 1
    assert receiver.last_event_at is None


def test_timestamp_wraps() -> None:
    """Events whose timestamps straddle 2**32 are still separate digits."""
    feed = Feed()
    feed.send(event_packets("1", 0xFFFFFF00) + event_packets("2", 0x00000100))
    assert feed.digits == ["1", "2"]


def test_memory_is_bounded() -> None:
    """The memory of reported events stays small over many events."""
    feed = Feed(TelephoneEventReceiver(memory=4))
    for n in range(50):
        feed.send(event_packets(DIGITS[n % 16], 8000 + 1600 * n))
    assert len(feed.digits) == 50
    assert len(feed.receiver._done) == 4


def test_too_many_sources_drop_oldest_open_event() -> None:
    """Beyond max_sources, the oldest open event is dropped rather than growing state."""
    receiver = TelephoneEventReceiver(max_sources=2)
    for ssrc in (1, 2, 3):
        receiver.receive(ssrc, 8000, payload("1", 160), 1.0)
    assert sorted(receiver._open) == [2, 3]


@settings(max_examples=200, deadline=None)
@given(
    digits=st.lists(st.sampled_from(DIGITS), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    loss=st.floats(0.0, 0.6),
)
def test_loss_duplication_reordering_give_each_digit_once(
    digits: list[str], seed: int, loss: float
) -> None:
    """Under loss, duplication and local reordering each event with a surviving packet is
    reported exactly once."""
    rng = random.Random(seed)
    sent: list[tuple[int, bytes]] = []
    survivors = []
    for n, digit in enumerate(digits):
        kept = [p for p in event_packets(digit, 8000 + 4000 * n) if rng.random() >= loss]
        kept += [p for p in kept if rng.random() < 0.3]  # duplicates
        survivors += [digit] if kept else []
        sent += kept
    # Reorder locally: each packet moves at most three places.
    keyed = sorted(enumerate(sent), key=lambda item: item[0] + rng.uniform(0, 3))
    feed = Feed()
    feed.send([packet for _i, packet in keyed])
    feed.expire(1.0)
    assert sorted(feed.digits) == sorted(survivors)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12), st.integers(0, 2**32 - 1))
def test_arbitrary_payloads_never_crash(data: bytes, timestamp: int) -> None:
    """Any bytes give a digit, None or ValueError, never another exception."""
    receiver = TelephoneEventReceiver()
    try:
        digit = receiver.receive(SSRC, timestamp, data, 1.0)
    except ValueError:
        assert len(data) < 4
    else:
        assert digit is None or digit in DIGITS


# -- sender -------------------------------------------------------------------------------------


def drain(sender: TelephoneEventSender) -> list[tuple[bool, bytes]]:
    """Every packet the sender produces, in order."""
    out = []
    while (step := sender.next_payload()) is not None:
        out.append(step)
    return out


def test_sender_packets() -> None:
    """Marker on the first only, duration grows by ptime, the E packet three times, then None."""
    sender = TelephoneEventSender("#", duration_ms=100, volume=7)
    packets = drain(sender)
    assert sender.next_payload() is None
    assert [marker for marker, _ in packets] == [True] + [False] * 6
    events = [parse_telephone_event(data) for _, data in packets]
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {(e.event, e.volume) for e in events} == {(11, 7)}
    assert all(data[1] & 0x40 == 0 for _, data in packets)  # R bit zero


def test_sender_duration_not_multiple_of_ptime() -> None:
    """The last packet carries the exact duration."""
    events = [parse_telephone_event(d) for _, d in drain(TelephoneEventSender("1", duration_ms=50))]
    assert [e.duration for e in events] == [160, 320, 400, 400, 400]


def test_sender_short_event_starts_with_end() -> None:
    """An event shorter than one ptime is a marked end packet, repeated."""
    packets = drain(TelephoneEventSender("2", duration_ms=10, end_repeats=2))
    assert [m for m, _ in packets] == [True, False]
    assert all(parse_telephone_event(d).end for _, d in packets)


BAD_SENDERS = [("E", {}), ("12", {}), ("", {}), ("1", {"duration_ms": 0})]
BAD_SENDERS += [("1", {"duration_ms": 9000}), ("1", {"volume": 64}), ("1", {"ptime_ms": 0})]


@pytest.mark.parametrize(("digit", "options"), [*BAD_SENDERS, ("1", {"end_repeats": 0})])
def test_sender_rejects_bad_arguments(digit: str, options: dict[str, int]) -> None:
    """Digits outside DIGITS and out-of-range values raise ValueError."""
    with pytest.raises(ValueError):
        TelephoneEventSender(digit, **options)


@pytest.mark.parametrize("digit", list(DIGITS))
def test_sender_to_receiver(digit: str) -> None:
    """The sender's packets, all with one RTP timestamp, give the digit once."""
    packets = [(4242, data) for _, data in drain(TelephoneEventSender(digit))]
    feed = Feed()
    feed.send(packets)
    feed.expire(1.0)
    assert feed.digits == [digit]
