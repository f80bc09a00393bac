"""Every call in progress and every leg it forwards, by each key an event can carry.

Theory of operation
-------------------
``Calls`` is the only place a call or a forwarded leg is indexed: by the INVITE's server
transaction key (a CANCEL, a transaction timeout), by dialog id once our 2xx created the
dialog (ACK, BYE, re-INVITE, INFO: RFC 3261 §12.2.2), by media stream id (digits, RTP
timeout, playback and recording ends), by dialplan session (the session's requests); a leg by
its client transaction (responses, RFC 3261 §17.1.3) and by its dialog once answered; each
side of a bridged call (the caller's and the leg's) by dialog and by stream; a leg ringing
at a Centrex phone by the phone's number (``ringing``: call pickup finds it there). A call
enters with ``add`` (its ``ADMITTED`` phase), gains its dialog with ``answered`` (its
``ANSWERED`` phase) and leaves every index at once with ``remove`` (its ``ENDED`` phase), so
no path can leave it behind in one of them. ``idle`` is set whenever no call is in progress
(the drain at shutdown waits for it).

It is also where a Centrex subscriber is *in a call* (``in_call``, for call waiting): from the
answer of a call from one of its phones (``CallFacts.subscriber``) or of a leg that rang its
phones, to the end of that dialog; counted as the dialog index changes, so once each way.
A supervisor finds the bridged call of a phone here (``phone_side``: the phone's call on
side ``a``, a leg that rang it or the call that picked one up on side ``b``) and waits for
that bridge to close (``watch``). ``phone_freed`` is told when a subscriber's last answered
call ends (the call centre offers its agent queue calls again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator

from callserver.calls.bridge import Bridge, Side
from callserver.calls.call import Call
from callserver.calls.leg import Leg
from callserver.calls.phase import CallPhase
from callserver.calls.reporting import CallFacts
from callserver.calls.session import CallSession
from callserver.sip.dialog import DialogId
from callserver.sip.transaction_key import TransactionKey

__all__ = ["Calls"]


class Calls:
    """The calls in progress and their forwarded legs; see the module docstring."""

    def __init__(self) -> None:
        self._by_key: dict[TransactionKey | None, Call] = {}
        self._by_dialog: dict[DialogId, Call] = {}
        self._by_stream: dict[int, Call] = {}
        self._by_session: dict[int, Call] = {}
        self._legs_by_handle: dict[TransactionKey | None, Leg] = {}
        self._legs_by_dialog: dict[DialogId, Leg] = {}
        self._sides_by_dialog: dict[DialogId, tuple[Bridge, Side]] = {}
        self._sides_by_stream: dict[int, tuple[Bridge, Side]] = {}
        self._in_call: dict[str, int] = {}  # subscriber's number: its answered dialogs
        self._ringing: dict[str, dict[int, Leg]] = {}  # phone number: legs ringing there
        self._picked: dict[DialogId, Leg] = {}  # picking call's dialog: the leg it picked
        self._watched: dict[int, asyncio.Event] = {}  # id(bridge): set when it closes
        self.phone_freed: Callable[[str], None] | None = None  # a subscriber's last call ended
        self.total = 0  # calls tracked since start
        self.idle = asyncio.Event()
        self.idle.set()

    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Iterator[Call]:
        """The calls in progress, as they are now (ending one while iterating is safe)."""
        return iter(list(self._by_key.values()))

    # Calls --------------------------------------------------------------------------------

    def add(self, call: Call) -> None:
        """Track an admitted call, which has its stream, until ``remove``."""
        assert call.stream is not None
        call.enter(CallPhase.ADMITTED)
        self._by_key[call.key] = call
        self._by_stream[call.stream.stream_id] = call
        self.total += 1
        self.idle.clear()

    def answered(self, call: Call, dialog_id: DialogId) -> None:
        """Our 2xx created ``call``'s dialog (RFC 3261 §12.1.1): find it by ``dialog_id``."""
        call.enter(CallPhase.ANSWERED)
        call.dialog_id = dialog_id
        self._by_dialog[dialog_id] = call
        if call.facts is not None and (phone := call.facts.subscriber) is not None:
            self._count(phone, 1)  # a phone's call: its subscriber is in a call

    def hosted(self, call: Call, session: CallSession) -> None:
        """A dialplan session runs ``call``."""
        call.session = session
        self._by_session[id(session)] = call

    def remove(self, call: Call) -> None:
        """``call`` ended: out of every index at once."""
        call.enter(CallPhase.ENDED)
        self._by_key.pop(call.key, None)
        if call.dialog_id is not None:
            answered = self._by_dialog.pop(call.dialog_id, None) is call
            if answered and call.facts is not None and (phone := call.facts.subscriber) is not None:
                self._count(phone, -1)
        if call.stream is not None:
            self._by_stream.pop(call.stream.stream_id, None)
        if call.session is not None:
            self._by_session.pop(id(call.session), None)
        if not self._by_key:
            self.idle.set()

    def by_key(self, key: TransactionKey | None) -> Call | None:
        """The call whose INVITE has the server transaction ``key``."""
        return self._by_key.get(key)

    def by_dialog(self, dialog_id: DialogId) -> Call | None:
        """The call whose dialog (UAS side) is ``dialog_id``."""
        return self._by_dialog.get(dialog_id)

    def by_stream(self, stream_id: int) -> Call | None:
        """The call whose media stream is ``stream_id``."""
        return self._by_stream.get(stream_id)

    def by_session(self, session: CallSession) -> Call | None:
        """The call a dialplan ``session`` runs."""
        return self._by_session.get(id(session))

    # Forwarded legs -----------------------------------------------------------------------

    def leg_sent(self, leg: Leg, handle: TransactionKey | None) -> None:
        """``leg``'s INVITE went out on the client transaction ``handle``."""
        leg.handle = handle
        self._legs_by_handle[handle] = leg

    def leg_abandoned(self, handle: TransactionKey | None) -> None:
        """The client transaction ``handle`` no longer speaks for its leg (failover)."""
        self._legs_by_handle.pop(handle, None)

    def leg_answered(self, leg: Leg, dialog_id: DialogId) -> None:
        """A 2xx created ``leg``'s dialog (UAC side, RFC 3261 §12.1.2)."""
        leg.dialog_id = dialog_id
        self._legs_by_dialog[dialog_id] = leg
        self._count(_rung(leg), 1)

    def leg_dialog_ended(self, leg: Leg) -> None:
        """``leg``'s dialog is over (BYE either way, or its failure)."""
        self._leg_over(leg)
        leg.dialog_id = None

    def fork_sent(self, leg: Leg, handle: TransactionKey | None) -> None:
        """One of ``leg``'s parallel INVITEs (to a phone's contact) went out on ``handle``."""
        assert leg.forks is not None
        leg.forks[handle] = None
        self._legs_by_handle[handle] = leg
        self._ringing.setdefault(leg.facts.called, {})[id(leg)] = leg

    def remove_leg(self, leg: Leg) -> None:
        """``leg`` is torn down: out of every index."""
        ringing = self._ringing.get(leg.facts.called)
        if ringing is not None and ringing.pop(id(leg), None) is not None and not ringing:
            del self._ringing[leg.facts.called]
        self._legs_by_handle.pop(leg.handle, None)
        if leg.picked is not None and leg.picked.call.dialog_id is not None:
            self._picked.pop(leg.picked.call.dialog_id, None)
        for handle in leg.forks or ():
            self._legs_by_handle.pop(handle, None)
        self._leg_over(leg)

    def _leg_over(self, leg: Leg) -> None:
        if leg.dialog_id is not None and self._legs_by_dialog.pop(leg.dialog_id, None) is leg:
            self._count(_rung(leg), -1)

    # Subscribers in a call ------------------------------------------------------------------

    def in_call(self, number: str) -> bool:
        """True while the subscriber ``number`` (E.164, ``+``) has an answered call to or
        from one of its phones."""
        return number in self._in_call

    def _count(self, number: str | None, step: int) -> None:
        if number is None:
            return
        count = self._in_call.get(number, 0) + step
        if count > 0:
            self._in_call[number] = count
        elif self._in_call.pop(number, None) is not None and self.phone_freed is not None:
            self.phone_freed(number)  # a call-centre agent may be offered again

    def ringing(self, numbers: Iterable[str]) -> list[Leg]:
        """The legs ringing now at the phones of ``numbers`` (E.164, as a leg's ``called``):
        not answered, refused, cancelled or picked up yet; the longest ringing first."""
        legs = [
            leg
            for number in dict.fromkeys(numbers)
            for leg in self._ringing.get(number, {}).values()
            if not leg.setup.done() and not leg.cancelled and leg.picked is None
        ]
        return sorted(legs, key=lambda leg: leg.facts.offered_at)

    def picked_bridged(self, leg: Leg) -> None:
        """``leg`` was picked up and its caller is bridged to the picking call: find it by
        that call's dialog (a transfer from the picking phone) until ``remove_leg``."""
        assert leg.picked is not None and leg.picked.call.dialog_id is not None
        self._picked[leg.picked.call.dialog_id] = leg

    def picked(self, bridge: Bridge) -> Leg | None:
        """The picked-up leg whose caller ``bridge`` joins to the picking call, if it is one."""
        return self._picked.get(bridge.b.dialog_id)

    def leg_by_handle(self, handle: TransactionKey | None) -> Leg | None:
        """The leg whose current (or abandoned but not dropped) INVITE is ``handle``."""
        return self._legs_by_handle.get(handle)

    def leg_by_dialog(self, dialog_id: DialogId) -> Leg | None:
        """The answered leg whose dialog is ``dialog_id``."""
        return self._legs_by_dialog.get(dialog_id)

    # Bridges ------------------------------------------------------------------------------

    def bridge_opened(self, bridge: Bridge) -> None:
        """Find both sides of ``bridge`` by dialog and by stream until ``bridge_closed``."""
        for side in (bridge.a, bridge.b):
            self._sides_by_dialog[side.dialog_id] = (bridge, side)
            self._sides_by_stream[side.stream.stream_id] = (bridge, side)

    def bridge_closed(self, bridge: Bridge) -> None:
        """``bridge`` is over: its sides out of every index."""
        for side in (bridge.a, bridge.b):
            self._sides_by_dialog.pop(side.dialog_id, None)
            self._sides_by_stream.pop(side.stream.stream_id, None)
        if self._watched and (closed := self._watched.pop(id(bridge), None)) is not None:
            closed.set()

    def side_by_dialog(self, dialog_id: DialogId) -> tuple[Bridge, Side] | None:
        """The bridge and side whose dialog is ``dialog_id``."""
        return self._sides_by_dialog.get(dialog_id)

    def side_by_stream(self, stream_id: int) -> tuple[Bridge, Side] | None:
        """The bridge and side whose stream is ``stream_id``."""
        return self._sides_by_stream.get(stream_id)

    # Supervision ------------------------------------------------------------------------

    def phone_side(self, number: str) -> tuple[Bridge, Side] | None:
        """The open bridge one of whose sides is a call of the subscriber ``number``'s phone
        (E.164, ``+``), and that side; None when its phone is in no bridged call."""
        for bridge, side in self._sides_by_stream.values():
            if self._phone_at(side) == number:
                return bridge, side
        return None

    def _phone_at(self, side: Side) -> str | None:
        """The subscriber whose phone a side's dialog reaches: a calling or picking phone's
        own call, or a leg that rang a subscriber's phones."""
        call = self._by_dialog.get(side.dialog_id)
        if call is not None:
            return None if call.facts is None else call.facts.subscriber
        leg = self._legs_by_dialog.get(side.dialog_id)
        return None if leg is None else _rung(leg)

    def facts_of(self, side: Side) -> CallFacts | None:
        """The CDR facts of a bridge's side: its call's (the caller's, or the picking
        phone's), else its forwarded leg's."""
        call = self._by_dialog.get(side.dialog_id)
        if call is not None:
            return call.facts
        leg = self._legs_by_dialog.get(side.dialog_id)
        return None if leg is None else leg.facts

    def watch(self, bridge: Bridge) -> asyncio.Event:
        """An event set when ``bridge`` closes (``unwatch`` when no longer waited for)."""
        return self._watched.setdefault(id(bridge), asyncio.Event())

    def unwatch(self, bridge: Bridge) -> None:
        """Stop watching ``bridge``."""
        self._watched.pop(id(bridge), None)


def _rung(leg: Leg) -> str | None:
    """The subscriber whose phones ``leg`` rang (a leg to a phone's contacts), else None."""
    return leg.facts.called if leg.forks is not None else None
