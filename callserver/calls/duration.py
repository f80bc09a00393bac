"""Duration caps: the credit timer of every answered call, driven on the event loop.

Armed at the answer's arrival (the ACK's ``rtime``, the time billing uses), the call's
``CreditTimer`` (``policy.caps``) holds the cap: the least of the called number's class cap
(180 s for per-call premium numbers: the regulator's rule), the operator's default cap and the
dialplan's ``max_duration`` (which may only shorten it), and the warning time
(``Tariffs.warn_before``: the class's ``warn_before``, else the global ``cap_warning`` for a
call with a cap of its own). This module only drives it: one loop timer at the timer's next
deadline, which plays ``cap_warning_prompt`` when the warning is due and sends BYE when the
cap is reached; the call's end then stops its plan, whose cleanup hangs up a forwarded leg
too, and the CDR says ``max_duration``. In a forwarded call both parties hear the warning:
the bridge pauses for the prompt's length and resumes.
"""

from __future__ import annotations

import contextlib

from callserver.calls.call import Call
from callserver.calls.phase import CallPhase
from callserver.calls.services import CallServices
from callserver.media.prompts import Play
from callserver.media.stream import MediaStream
from callserver.policy.caps import CreditTimer
from callserver.policy.numbering import NumberClass

__all__ = ["DurationCaps"]

_OCTETS_A_SECOND = 8000  # G.711: one octet a sample


class DurationCaps:
    """Arms and drives the credit timers of answered calls."""

    def __init__(self, services: CallServices) -> None:
        self.services = services

    def arm(self, call: Call) -> None:
        """Arm ``call``'s credit timer from its answer time."""
        assert call.answered_at is not None
        call.credit = self._timer(call, call.answered_at)
        call.warned = False
        self._schedule(call, call.credit.next_deadline(warned=False))

    def _timer(self, call: Call, answered_at: float) -> CreditTimer:
        tariffs = self.services.live.tariffs
        asked = None if call.session is None else call.session.max_duration
        number_class: NumberClass | None = None
        # A called number no class matches has only the default and the plan's caps.
        with contextlib.suppress(ValueError):
            number_class = tariffs.classify(call.facts.called if call.facts else "")
        call.number_class = None if number_class is None else number_class.name
        return tariffs.credit_timer(number_class, answered_at, asked)

    def _schedule(self, call: Call, deadline: float) -> None:
        call.cap = self.services.loop.call_at(deadline, self._fire, call, deadline)

    def _fire(self, call: Call, deadline: float) -> None:
        timer = call.credit
        if call.phase is CallPhase.ENDED or timer is None:
            return
        now = max(self.services.now(), deadline)  # a loop may fire a hair before the deadline
        if timer.expired(now):
            self._reached(call, timer)
            return
        warning_at = timer.warning_at
        if not call.warned and warning_at is not None and now >= warning_at:
            call.warned = True
            self._warn(call, timer)
        self._schedule(call, timer.next_deadline(warned=call.warned))

    def _reached(self, call: Call, timer: CreditTimer) -> None:
        services = self.services
        if not call.phase.in_dialog:
            return
        assert call.dialog_id is not None
        call.cause = "max_duration"
        call.log.info("call.max_duration", cap=timer.cap, number_class=call.number_class)
        call.enter(CallPhase.ENDING)
        services.endpoint.bye(call.dialog_id, services.now())
        services.wake()

    def _warn(self, call: Call, timer: CreditTimer) -> None:
        services = self.services
        stream = call.stream
        if stream is None:
            return
        peer = stream.peer if isinstance(stream.peer, MediaStream) else None
        call.log.info(
            "call.cap_warning",
            cap=timer.cap,
            warn_before=timer.warn_before,
            bridged=peer is not None,
        )
        live = services.live
        language = call.session.language if call.session else live.settings.media.default_language
        name = live.tariffs.cap_warning_prompt
        payload = live.prompts.render([Play(name)], language, stream.codec)
        if peer is not None:  # both parties hear it, then the bridge resumes
            services.media.unbridge(stream)
            services.media.play(peer, live.prompts.render([Play(name)], language, peer.codec))
            seconds = len(payload) / _OCTETS_A_SECOND
            services.loop.call_later(seconds, self._rebridge, stream, peer)
        services.media.play(stream, payload)
        services.wake()

    def _rebridge(self, stream: MediaStream, peer: MediaStream) -> None:
        media = self.services.media
        if media.is_open(stream) and media.is_open(peer) and stream.peer is None:
            media.bridge(stream, peer)
