"""bench/reloads: SIGHUP to a running server at an interval during a window, and what followed.

SIGHUP makes `callserver run` reload its settings, trunks, tariffs, blacklist and the whole
dialplans directory (compiled in a worker thread, swapped on the loop, then logged as
``dialplan.loaded``). This is bench/rtp_window's ``During``: the first SIGHUP one second into
the window, then one every ``every`` seconds until it ends.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time

from harness import Server


class Reloads:
    """SIGHUPs to ``server`` during the window; ``line`` says how long each reload took."""

    def __init__(self, server: Server, every: float) -> None:
        self.server, self.every = server, every
        self.sent: list[float] = []  # monotonic s of each SIGHUP
        self.window = (0.0, 0.0)
        self._ended = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        """The window has started: SIGHUP in a second, then every ``every`` s."""
        self.window = (time.monotonic(), math.inf)
        self._thread.start()

    def stop(self) -> None:
        """The window has ended: no more SIGHUPs."""
        self.window = (self.window[0], time.monotonic())
        self._ended.set()
        self._thread.join()

    def _run(self) -> None:
        delay = 1.0
        while not self._ended.wait(delay):
            os.kill(self.server.proc.pid, signal.SIGHUP)
            self.sent.append(time.monotonic())
            delay = self.every

    def took(self) -> list[float]:
        """Seconds from each SIGHUP to the first ``dialplan.loaded`` line after it (nan: none)."""
        return [
            min((t - sent for t in self.server.loaded if t >= sent), default=math.nan)
            for sent in self.sent
        ]

    def line(self, files: int) -> str:
        """The reloads and the late ticks of the window, in a line."""
        start, end = self.window
        late = [ms for t, ms in self.server.tick_late if start <= t <= end]
        took = ", ".join(f"{seconds:.2f}" for seconds in self.took())
        latest = f", the latest {max(late):.1f} ms" if late else ""
        return (
            f"reloads: {len(self.sent)} SIGHUPs, {files} dialplans each, loaded after "
            f"{took or '-'} s; late ticks (media.tick_late) in the window: {len(late)}{latest}"
        )
