"""pyVoIP as a SIP phone for tests: its threaded VoIPPhone behind blocking waits with timeouts.

pyVoIP 1.6 registers (UDP) before anything else and sends every response of a call it
receives, and its BYE, to the registrar's address: a peer that calls the phone must use the
registrar's address and port. Its audio is 8-bit unsigned linear at 8 kHz; this wrapper takes
and returns int16 samples.
"""

from __future__ import annotations

import queue
import time
from types import TracebackType

import numpy as np
import numpy.typing as npt
from pyVoIP.VoIP import CallState, PhoneStatus, VoIPCall, VoIPPhone

from tests.e2e.conftest import HOST, free_port

_FRAME = 160
_SILENCE = b"\x80" * _FRAME


def to_unsigned8(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 samples as pyVoIP's 8-bit unsigned linear audio."""
    return ((samples.astype(np.int32) >> 8) + 128).astype(np.uint8).tobytes()


def from_unsigned8(data: bytes) -> npt.NDArray[np.int16]:
    """pyVoIP's 8-bit unsigned linear audio as int16 samples."""
    return ((np.frombuffer(data, dtype=np.uint8).astype(np.int32) - 128) << 8).astype(np.int16)


class PyVoipPhone:
    """A pyVoIP phone registered to ``registrar`` (host, port) as ``username``/``password``,
    bound to 127.0.0.1 on a free SIP port and one free RTP port. Use it as a context manager."""

    def __init__(
        self,
        registrar: tuple[str, int],
        username: str,
        password: str,
        *,
        timeout: int = 5,
    ) -> None:
        self.sip_port = free_port(both=False)
        rtp_port = free_port(both=False)
        self._calls: queue.Queue[VoIPCall] = queue.Queue()
        self._call: VoIPCall | None = None
        self.phone = VoIPPhone(
            registrar[0],
            registrar[1],
            username,
            password,
            myIP=HOST,
            callCallback=self._calls.put,
            sipPort=self.sip_port,
            rtpPortLow=rtp_port,
            rtpPortHigh=rtp_port,
        )
        # Bounds the REGISTER (and de-REGISTER) waits, 30 s by default.
        self.phone.sip.register_timeout = timeout
        self.username = username

    @property
    def uri(self) -> str:
        """The SIP URI that reaches the phone directly."""
        return f"sip:{self.username}@{HOST}:{self.sip_port}"

    def start(self) -> PyVoipPhone:
        """Start the phone and wait until its REGISTER got 200 (pyVoIP retries a REGISTER
        that timed out, so start() alone may return unregistered)."""
        self.phone.start()
        deadline = time.monotonic() + 2 * self.phone.sip.register_timeout
        while not self.registered:
            if time.monotonic() > deadline:
                self.stop(deregister=False)
                raise AssertionError(f"pyVoIP: not registered, {self.phone.get_status()}")
            time.sleep(0.02)
        return self

    @property
    def registered(self) -> bool:
        """Whether the last REGISTER succeeded."""
        return bool(self.phone.get_status() == PhoneStatus.REGISTERED)

    def wait_incoming(self, timeout: float = 5.0) -> VoIPCall:
        """Wait for a call to ring (pyVoIP has sent 180 Ringing); return it."""
        try:
            self._call = self._calls.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"pyVoIP: no incoming call in {timeout} s") from None
        return self._call

    def answer(self) -> None:
        """Answer the ringing call with 200 OK."""
        self._current().answer()

    def wait_state(self, state: CallState, timeout: float = 5.0) -> None:
        """Wait until the current call is in ``state`` (ANSWERED, ENDED ...)."""
        call = self._current()
        deadline = time.monotonic() + timeout
        while call.state != state:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"pyVoIP: call is {call.state}, not {state}, after {timeout} s"
                )
            time.sleep(0.02)

    def play(self, samples: npt.NDArray[np.int16]) -> None:
        """Queue ``samples`` (int16, 8 kHz) to be sent as the call's audio."""
        self._current().write_audio(to_unsigned8(samples))

    def read_audio(self, seconds: float, timeout: float = 5.0) -> npt.NDArray[np.int16]:
        """The first ``seconds`` of received audio, as int16 at 8 kHz; frames of pure
        silence (nothing received yet) are not counted. Fails after ``timeout``."""
        call = self._current()
        wanted = int(seconds * 8000)
        frames: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(frames) * _FRAME < wanted:
            if time.monotonic() > deadline:
                raise AssertionError(f"pyVoIP: {len(frames) * _FRAME} samples in {timeout} s")
            frame = call.read_audio(_FRAME, blocking=False)
            if frame == _SILENCE:
                time.sleep(0.02)
                continue
            frames.append(frame)
        return from_unsigned8(b"".join(frames))[:wanted]

    def _current(self) -> VoIPCall:
        assert self._call is not None, "pyVoIP: no call yet"
        return self._call

    def stop(self, *, deregister: bool = True) -> None:
        """Hang up any call and stop the phone's threads and sockets; with ``deregister``
        send REGISTER with Expires: 0 first (waiting at most ``timeout`` for its answer)."""
        sip = self.phone.sip
        if not deregister and sip.registerThread is not None:
            sip.registerThread.cancel()
            sip.registerThread = None
        self.phone.stop()

    def __enter__(self) -> PyVoipPhone:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop(deregister=False)
