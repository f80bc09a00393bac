"""What the user agent cores produce for the endpoint to carry out: bytes, events, deadlines.

Theory of operation
-------------------
The UAS core, the UAC core and the dialog timers never call the endpoint back: they write to
one ``Outbox`` and the endpoint drains it. ``transmits`` are the ``Transmit`` (and
``CloseConnection``) actions ``SipEndpoint.datagrams_to_send`` hands over (it swaps in a new
list, so a core never keeps a reference to ``transmits`` itself), ``events`` the events for
``SipEndpoint.next_event``, ``timers`` the deadlines of the cores' own timers (the 2xx
retransmission of RFC 3261 §13.3.1.4, the session timers of RFC 4028 §10), keyed by kind and
dialog, which ``SipEndpoint.get_timer`` and ``handle_timer`` read. The endpoint writes its own
output (stateless 503s, keepalive answers, the transaction layer's retransmissions) to the same
place, so there is one queue of each, as there was before the cores had their own.
"""

from __future__ import annotations

from collections import deque

from callserver.sip.dialog import DialogId
from callserver.sip.events import CloseConnection, SipEvent, Transmit
from callserver.sip.timers import TimerHeap

__all__ = ["Outbox", "TimerKey"]

TimerKey = tuple[str, DialogId]
"""A core timer: its kind (``"2xx"``, ``"refresh"``, ``"expire"``) and the dialog it serves."""


class Outbox:
    """The queues the cores write to and the endpoint drains (module docstring)."""

    __slots__ = ("events", "timers", "transmits")

    def __init__(self) -> None:
        self.transmits: list[Transmit | CloseConnection] = []
        self.events: deque[SipEvent] = deque()
        self.timers: TimerHeap[TimerKey] = TimerHeap()
