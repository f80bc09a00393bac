"""Where the events of bridged calls go: each request or digit to its side of its bridge.

``Bridges`` opens and closes the ``bridge.Bridge`` of a forwarded call in the ``Calls``
registry (which finds each side by dialog and by stream) and hands each endpoint or media
event of a bridged side to its bridge: requests inside either dialog, the ACK that answers our
offer, digits to pass across.
"""

from __future__ import annotations

from callserver.calls.bridge import Bridge
from callserver.calls.call import dialog_of
from callserver.calls.registry import Calls
from callserver.media.events import DtmfReceived, MediaEvent
from callserver.sip.events import DialogConfirmed, RequestReceived, SipEvent

__all__ = ["Bridges"]


class Bridges:
    """The open bridges of the forwarded calls in ``calls``."""

    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    def open(self, bridge: Bridge) -> Bridge:
        """Route both sides' requests and digits to ``bridge``; apply a hold already in SDP."""
        self.calls.bridge_opened(bridge)
        bridge.update_hold()
        return bridge

    def close(self, bridge: Bridge) -> None:
        """Stop routing to ``bridge`` and end any hold."""
        self.calls.bridge_closed(bridge)
        bridge.close()

    def handle_event(self, event: SipEvent, now: float) -> bool:
        """Take a request inside a bridged dialog, or the ACK that answers our offer."""
        if isinstance(event, RequestReceived):
            found = self.calls.side_by_dialog(dialog_of(event))
            if found is None:
                return False
            found[0].handle_request(found[1], event, now)
            return True
        if isinstance(event, DialogConfirmed):
            found = self.calls.side_by_dialog(event.dialog_id)
            return found is not None and found[0].acknowledged(found[1], event)
        return False

    def media_event(self, event: MediaEvent) -> None:
        """A digit from a bridged stream (see ``Bridge.digit``)."""
        found = self.calls.side_by_stream(event.stream_id)
        if found is not None and isinstance(event, DtmfReceived):
            found[0].digit(found[1], event)
