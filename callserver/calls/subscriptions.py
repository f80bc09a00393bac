"""What the call manager hands SUBSCRIBEs and NOTIFY outcomes to (RFC 6665).

The server's event packages live above the calls layer (``voicemail.mwi`` serves
``message-summary``); the manager knows them only by this protocol.
"""

from __future__ import annotations

from typing import Protocol

from callserver.sip.events import RequestReceived, SipEvent

__all__ = ["Subscriptions"]


class Subscriptions(Protocol):
    """A notifier: answers SUBSCRIBEs and takes the outcomes of its NOTIFYs."""

    def handle(self, event: RequestReceived, now: float) -> None:
        """Answer one SUBSCRIBE (in or out of a dialog)."""

    def handle_event(self, event: SipEvent, now: float) -> bool:
        """Take the response or timeout of a NOTIFY of ours; False for any other event."""
