"""The waits of a dialplan session that the calls layer's events resolve.

``SessionSignals`` is ``session.CallSession``'s base: it holds the futures and the type-ahead
digits a session's awaits wait on, and the events that need nothing but them:

- ``media_pending`` / ``media_ready``: after a late offer the answer's media waits for the
  ACK's SDP answer (RFC 3261 §13.2.1);
- ``playback_finished`` / ``recording_finished``: the media engine's end of a prompt or of a
  recording;
- ``_next_digit``: a typed-ahead digit at once, else the next one within ``wait`` seconds.

The events that reach the host or the CDR notes (``digit_received``, ``ended``) stay with
``CallSession``, which sets every slot here in its ``__init__``.
"""

from __future__ import annotations

import asyncio

from callserver.calls.session_host import Recorded

__all__ = ["SessionSignals"]


class SessionSignals:
    """A session's waits and the events that resolve them; see the module docstring."""

    __slots__ = (
        "_digit_waiter",
        "_digits",
        "_ended",
        "_media_waiter",
        "_playback",
        "_recording",
        "_stop_keys",
    )

    _digit_waiter: asyncio.Future[None] | None
    _digits: str
    _ended: bool
    _media_waiter: asyncio.Future[None] | None
    _playback: asyncio.Future[bool] | None
    _recording: asyncio.Future[Recorded] | None
    _stop_keys: str

    def media_pending(self) -> None:
        """The answer was sent with our offer: media waits for the ACK's answer."""
        if self._media_waiter is None or self._media_waiter.done():
            self._media_waiter = asyncio.get_running_loop().create_future()

    def media_ready(self) -> None:
        """The ACK brought the answer to our offer: the stream is configured."""
        self._release_media()

    def _release_media(self) -> None:
        waiter, self._media_waiter = self._media_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def playback_finished(self, interrupted: bool) -> None:
        """The engine reported the end of the current playback."""
        if self._playback is not None and not self._playback.done():
            self._playback.set_result(interrupted)

    def recording_finished(self, path: str | None, duration: float) -> None:
        """The engine reported the end of the current recording."""
        if self._recording is not None and not self._recording.done():
            self._recording.set_result(Recorded(path=path, duration=duration))

    async def _next_digit(self, wait: float) -> str | None:
        if not self._digits:
            waiter = self._digit_waiter = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(wait):
                    await waiter
            except TimeoutError:
                return None
            finally:
                self._digit_waiter = None
        digit, self._digits = self._digits[0], self._digits[1:]
        return digit
