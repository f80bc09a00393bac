"""A listening end for end-to-end media tests: a UDP socket on 127.0.0.1 a SIPp caller's SDP
names, keeping every RTP packet the server sends it with its arrival time, so the test reads
the audio (in sequence order) and the packets' timing."""

from __future__ import annotations

import socket
import struct
import threading
import time

from tests.e2e.conftest import HOST

RTP_HEADER = struct.Struct("!BBHII")  # RFC 3550 §5.1: V/P/X/CC, M/PT, sequence, timestamp, SSRC


class RtpSink:
    """A UDP socket on 127.0.0.1 that keeps every RTP packet sent to it, with arrival times."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.packets: list[tuple[float, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            self.packets.append((time.monotonic(), data))

    def close(self) -> None:
        """Stops the receiving thread and closes the socket."""
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def audio(self, payload_type: int) -> bytes:
        """The payloads of ``payload_type`` packets in sequence order (RFC 3550 §5.1)."""
        rows = []
        for _, data in self.packets:
            _b0, b1, seq, _ts, _ssrc = RTP_HEADER.unpack_from(data)
            if b1 & 0x7F == payload_type:
                rows.append((seq, data[12:]))
        first = rows[0][0]
        rows.sort(key=lambda row: (row[0] - first) & 0xFFFF)
        return b"".join(payload for _, payload in rows)
