"""A phone's media end for end-to-end tests: real RTP over UDP on 127.0.0.1.

SIPp signals the call and cannot check what it receives, so its SDP names this socket's port
(``-key rtp_port``). The party sends one fixed PCMU payload every 20 ms (or, given ``audio``,
the next 160 octets of it, in a loop) to the server's port once it is known, an RFC 4733 key
press when asked (``press``: all at once; ``hold_key``: an update every 20 ms while the key is
down, the key's tone in the audio beside them, as phones sending both forms do), and keeps
every packet it receives, in order, for the test to read. ``tone_party`` is one sending a steady
tone, whose spectrum the other end reads.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator

from callserver.media import g711
from callserver.media.dtmf import DIGITS
from callserver.media.rtp import RtpPacket
from callserver.media.tones import dtmf_tone, sine

HOST = "127.0.0.1"
TELEPHONE_EVENT = 101  # as the caller's scenarios offer it
_PTIME = 0.02


class RtpParty:
    """Sends ``fill`` as every audio payload (PCMU, 160 octets), or ``audio`` (PCMU octets, a
    multiple of 160) 160 octets a packet in a loop, and records what arrives."""

    def __init__(self, fill: int, audio: bytes = b"") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.payload = bytes([fill]) * 160
        self.audio = audio
        self._position = 0
        self.received: list[RtpPacket] = []
        self._target: tuple[str, int] | None = None
        self._digits: list[str] = []
        self._held: list[list[tuple[int, bool, bytes]]] = []  # hold_key's packets, a tick each
        self._event_ts = 0  # the RTP timestamp of the held key's events (RFC 4733 §2.5.1.2)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._send_loop, daemon=True),
            threading.Thread(target=self._receive_loop, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def send_to(self, port: int) -> None:
        """Start sending to the server's RTP port ``port`` on 127.0.0.1."""
        self._target = (HOST, port)

    def press(self, digit: str) -> None:
        """Send one key press as RFC 4733 events (three updates, three end packets)."""
        with self._lock:
            self._digits.append(digit)

    def hold_key(self, digit: str, ticks: int) -> None:
        """Hold ``digit`` down for ``ticks`` times 20 ms: each tick an RFC 4733 update (its
        duration growing, one event timestamp) and 20 ms of the key's tone as PCMU audio;
        then the end packet three times."""
        event = DIGITS.index(digit)
        tone = g711.encode("PCMU", dtmf_tone(digit, ticks * 20))
        packets = [
            [
                (TELEPHONE_EVENT, n == 0, struct.pack("!BBH", event, 10, 160 * (n + 1))),
                (0, False, tone[n * 160 : (n + 1) * 160]),
            ]
            for n in range(ticks)
        ]
        packets.append(
            [(TELEPHONE_EVENT, False, struct.pack("!BBH", event, 0x8A, 160 * ticks))] * 3
        )
        with self._lock:
            self._held.extend(packets)

    def close(self) -> None:
        """Stop both threads and close the socket."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2)
        self.sock.close()

    def _send_loop(self) -> None:
        seq, ts, deadline = 1, 0, time.monotonic()
        while not self._stop.is_set():
            deadline += _PTIME
            time.sleep(max(0.0, deadline - time.monotonic()))
            if self._target is None:
                continue
            for pt, marker, payload, stamp in self._next(ts):
                header = struct.pack(
                    "!BBHII", 0x80, pt | (0x80 if marker else 0), seq, stamp, 0x1234
                )
                with contextlib.suppress(OSError):
                    self.sock.sendto(header + payload, self._target)
                seq = (seq + 1) & 0xFFFF
            ts = (ts + 160) & 0xFFFFFFFF

    def _next(self, ts: int) -> Iterator[tuple[int, bool, bytes, int]]:
        """This tick's packets: (payload type, marker, payload, RTP timestamp)."""
        with self._lock:
            held = self._held.pop(0) if self._held else None
            digit = self._digits.pop(0) if self._digits and held is None else None
        if held is not None:
            if held[0][1]:  # a held key's first tick: its events carry this timestamp
                self._event_ts = ts
            for pt, marker, payload in held:
                yield pt, marker, payload, self._event_ts if pt == TELEPHONE_EVENT else ts
            return
        if digit is None:
            yield 0, False, self._next_audio(), ts
            return
        event = DIGITS.index(digit)
        for n, (duration, end) in enumerate([(160, 0), (320, 0), (480, 0)] + [(640, 0x80)] * 3):
            yield TELEPHONE_EVENT, n == 0, struct.pack("!BBH", event, end | 10, duration), ts

    def _next_audio(self) -> bytes:
        if not self.audio:
            return self.payload
        start = self._position
        self._position = (start + 160) % len(self.audio)
        return self.audio[start : start + 160]

    def _receive_loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(ValueError):
                self.received.append(RtpPacket.parse(data))


def tone_party(frequency: float) -> RtpParty:
    """A party sending a steady ``frequency`` tone (PCMU, -10 dBFS), one second looped."""
    return RtpParty(0xFF, g711.encode("PCMU", sine(frequency, 1000)))
