"""A fake call for dialplan tests: scripted key presses, a settable clock, everything recorded.

``FakeCall`` is what ``dialplan.verbs.base.CallControl`` describes, without a network or a
media engine. The caller is a script: each entry is a key the caller presses, or None for a
silence long enough to end a wait. ``collect`` consumes the script; ``play`` with barge-in
returns the next scripted key without consuming it (the key stays queued for the next
``collect``, as ``CallSession`` keeps a type-ahead digit). Everything the call is asked to do is
kept in a list, in order, for the test to compare, and ``actions`` logs the order of them all.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from callserver.calls.b2bua import ForwardOutcome
from callserver.calls.session import Collected, QueueOutcome, QueueRequest, Recorded
from callserver.media.prompts import PlaylistItem
from callserver.policy.caller import CallerId

__all__ = ["FakeCall", "Hangup", "Played", "Recording"]


@dataclass(frozen=True, slots=True)
class Played:
    """One ``play``: the playlist, whether a key could stop it, the call's language then,
    whether it repeats."""

    items: list[PlaylistItem]
    barge_in: bool
    language: str
    loop: bool = False


@dataclass(frozen=True, slots=True)
class Hangup:
    """The one effective ``hangup``."""

    code: int | None
    cause: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class Recording:
    """One ``record`` request."""

    mailbox: str
    max_length: float
    silence_end: float
    min_length: float
    stop_keys: str = ""


class FakeCall:
    """A call driven by a script of key presses (see the module docstring)."""

    def __init__(
        self,
        keys: Iterable[str | None] = (),
        *,
        caller: CallerId | None = None,
        called: str = "38733100200",
        language: str = "en",
        now: datetime | None = None,
        recording_path: str | None = "/var/voicemail/office/message.wav",
        forward_outcome: ForwardOutcome | None = None,
        room_full: bool = False,
        queue_outcome: QueueOutcome | None = None,
    ) -> None:
        self.caller = caller or CallerId(raw="061123456", e164="+38761123456", country="BA")
        self.called = called
        self.language = language
        self.variables: dict[str, str] = {
            "caller": self.caller.e164 or self.caller.raw,
            "called": called,
        }
        self.clock = now or datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        self.recording_path = recording_path
        self.forward_outcome = forward_outcome or ForwardOutcome(result="answered", sip_code=200)
        self.keys: deque[str | None] = deque(keys)
        self.answers: list[str] = []  # "now" or "early", each one sent
        self.played: list[Played] = []
        self.collected: list[Collected] = []
        self.recordings: list[Recording] = []
        self.forwards: list[tuple[str, str | None, float, str | None]] = []
        self.hangups: list[Hangup] = []
        self.room_full = room_full  # what ``conference`` finds
        self.conferences: list[tuple[str, int, bool, float | None]] = []
        self.call_recording: str | None = None  # the mode a ``record_call`` started
        self.queue_outcome = queue_outcome or QueueOutcome(result="answered", wait=12.0)
        self.queues: list[QueueRequest] = []  # each ``queue`` asked for
        self.notes: list[tuple[str, object]] = []
        self.actions: list[str] = []  # "answer now", "answer early", "play", "collect", ...
        self.pauses: list[float] = []  # each ``pause``, in seconds; they take no time
        self.answered_for: float | None = None  # what ``since_answer`` says once answered
        self._answered = False
        self._early = False

    @property
    def answered(self) -> bool:
        """True after the 200 OK."""
        return self._answered

    @property
    def early_media(self) -> bool:
        """True after a 183 with SDP until the answer."""
        return self._early and not self._answered

    def now(self) -> datetime:
        """The test's clock (set ``clock``)."""
        return self.clock

    def since_answer(self) -> float | None:
        """``answered_for`` (0 unless the test sets it) once answered, else None."""
        return (self.answered_for or 0.0) if self._answered else None

    async def ring(self) -> None:
        """Note the 180 Ringing."""
        self.actions.append("ring")

    async def pause(self, seconds: float) -> None:
        """Note the pause; it takes no time."""
        self.pauses.append(seconds)
        self.actions.append(f"pause {seconds:g}")

    async def answer(self, *, early: bool = False) -> None:
        """Note the answer; like ``CallSession``, a repeated one does nothing."""
        if self._answered or (early and self._early):
            return
        self.answers.append("early" if early else "now")
        self.actions.append(f"answer {self.answers[-1]}")
        self._early = self._early or early
        self._answered = not early

    async def play(
        self, items: Sequence[PlaylistItem], *, barge_in: bool, loop: bool = False
    ) -> str | None:
        """Note the playlist; with barge-in the next scripted key (if any) stops it."""
        self.played.append(Played(list(items), barge_in, self.language, loop))
        self.actions.append("play")
        return self.keys[0] if barge_in and self.keys and self.keys[0] is not None else None

    async def collect(
        self,
        *,
        max_digits: int,
        first_timeout: float,
        digit_timeout: float,
        terminator: str | None,
        complete: Callable[[str], bool] | None = None,
    ) -> Collected:
        """Consume the script until a silence, the terminator, ``max_digits`` or completion."""
        entry = ""
        result: Collected | None = None
        while result is None and len(entry) < max_digits:
            key = self.keys.popleft() if self.keys else None
            if key is None:
                result = Collected(digits=entry, reason="timeout" if entry else "no_input")
            elif key == terminator:
                result = Collected(digits=entry, reason="terminator")
            else:
                entry += key
                if complete is not None and complete(entry):
                    break
        result = result or Collected(digits=entry, reason="max_digits")
        self.collected.append(result)
        self.actions.append("collect")
        return result

    async def record(
        self,
        *,
        mailbox: str,
        max_length: float,
        silence_end: float,
        min_length: float,
        stop_keys: str = "",
    ) -> Recorded:
        """Note the request; the message is ``recording_path`` (None: too short)."""
        self.recordings.append(Recording(mailbox, max_length, silence_end, min_length, stop_keys))
        self.actions.append("record")
        return Recorded(path=self.recording_path, duration=12.5)

    async def forward(
        self, *, target: str, route: str | None, ring_timeout: float, caller_id: str | None
    ) -> ForwardOutcome:
        """Note the second leg; its outcome is ``forward_outcome``."""
        self.forwards.append((target, route, ring_timeout, caller_id))
        self.actions.append("forward")
        return self.forward_outcome

    async def conference(
        self, *, room: str, limit: int, tones: bool, time_limit: float | None = None
    ) -> bool:
        """Note the room joined; it is left at once (False when ``room_full``)."""
        self.conferences.append((room, limit, tones, time_limit))
        self.actions.append("conference")
        return not self.room_full

    async def record_call(self, *, mode: str, announcement: Sequence[PlaylistItem] = ()) -> bool:
        """Play the announcement and note the mode; a call recorded already stays so."""
        if announcement:
            await self.play(announcement, barge_in=False)
        if self.call_recording is None:
            self.call_recording = mode
            self.actions.append(f"record_call {mode}")
        return True

    def stop_call_recording(self) -> None:
        """Note that the call's recording was stopped."""
        self.actions.append("stop_call_recording")

    async def queue(self, request: QueueRequest) -> QueueOutcome:
        """Note the wait asked for; it ends at once with ``queue_outcome``."""
        self.queues.append(request)
        self.actions.append("queue")
        return self.queue_outcome

    async def hangup(self, *, code: int | None, cause: int | None, reason: str) -> None:
        """Note the first hangup; later ones do nothing, as the protocol says."""
        if not self.hangups:
            self.hangups.append(Hangup(code, cause, reason))
            self.actions.append("hangup")

    def note(self, key: str, value: object) -> None:
        """Keep a CDR fact."""
        self.notes.append((key, value))

    def noted(self, key: str) -> list[object]:
        """The values noted under ``key``, in order."""
        return [value for name, value in self.notes if name == key]
