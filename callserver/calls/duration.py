"""Duration caps: the credit timer of every answered call (STYLE §8, DESIGN.md step 4).

Armed at the answer's arrival (the ACK's ``rtime``, the time billing uses), the cap is the
least of the called number's class cap (180 s for per-call premium numbers: the regulator's
rule), the operator's default cap and the dialplan's ``max_duration`` (which may only
shorten it: ``policy.caps``). At the cap the server sends BYE; the call's end then stops its
plan, whose cleanup hangs up a forwarded leg too, and the CDR says ``max_duration``.

With ``cap_warning`` in config/tariffs.yaml, the caller hears ``cap_warning_prompt`` that
many seconds before the cap. In a forwarded call both parties hear it: the bridge pauses for
the prompt's length and resumes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callserver.media.prompts import Play
from callserver.media.stream import MediaStream

if TYPE_CHECKING:
    from callserver.calls.call import Call
    from callserver.calls.manager import CallManager

__all__ = ["DurationCaps"]

_OCTETS_A_SECOND = 8000  # G.711: one octet a sample


class DurationCaps:
    """Arms and fires the cap and warning timers of a ``CallManager``'s calls."""

    def __init__(self, manager: CallManager) -> None:
        self.manager = manager

    def arm(self, call: Call) -> None:
        """Arm ``call``'s cap (and warning) from its answer time."""
        assert call.answered_at is not None
        cap = self._cap(call)
        loop = self.manager.loop
        call.cap = loop.call_at(call.answered_at + cap, self._reached, call, cap)
        warning = self.manager.tariffs.cap_warning
        if warning is not None and cap > warning:
            call.warn = loop.call_at(call.answered_at + cap - warning, self._warn, call, cap)

    def _cap(self, call: Call) -> float:
        tariffs = self.manager.tariffs
        asked = None if call.session is None else call.session.max_duration
        try:
            number_class = tariffs.classify(call.facts.called if call.facts else "")
        except ValueError:
            default = tariffs.default_max_duration
            return default if asked is None else min(asked, default)
        call.number_class = number_class.name
        try:
            return tariffs.duration_cap(number_class, asked)
        except ValueError:  # the plan asks for more than the class allows: the class wins
            return tariffs.duration_cap(number_class)

    def _reached(self, call: Call, cap: float) -> None:
        manager = self.manager
        if manager.calls.get(call.key) is not call or call.dialog_id is None:
            return
        call.cause = "max_duration"
        call.log.info("call.max_duration", cap=cap, number_class=call.number_class)
        manager.endpoint.bye(call.dialog_id, manager.loop.time())
        manager.wake()

    def _warn(self, call: Call, cap: float) -> None:
        manager = self.manager
        stream = call.stream
        if manager.calls.get(call.key) is not call or stream is None:
            return
        peer = stream.peer if isinstance(stream.peer, MediaStream) else None
        call.log.info("call.cap_warning", cap=cap, bridged=peer is not None)
        language = (
            call.session.language if call.session else manager.settings.media.default_language
        )
        name = manager.tariffs.cap_warning_prompt
        payload = manager.prompts.render([Play(name)], language, stream.codec)
        if peer is not None:  # both parties hear it, then the bridge resumes
            manager.media.unbridge(stream)
            manager.media.play(peer, manager.prompts.render([Play(name)], language, peer.codec))
            seconds = len(payload) / _OCTETS_A_SECOND
            manager.loop.call_later(seconds, self._rebridge, stream, peer)
        manager.media.play(stream, payload)
        manager.wake()

    def _rebridge(self, stream: MediaStream, peer: MediaStream) -> None:
        media = self.manager.media
        if media.is_open(stream) and media.is_open(peer) and stream.peer is None:
            media.bridge(stream, peer)
