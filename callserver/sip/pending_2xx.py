"""The UAS's 2xx responses to INVITE that wait for their ACK (RFC 3261 §13.3.1.4, §15).

Theory of operation
-------------------
The INVITE server transaction ends with its 2xx, so "it is necessary to periodically pass the
response directly to the transport until the ACK arrives" (§13.3.1.4): ``start`` arms a
``2xx`` deadline on the outbox at T1 (over a reliable transport, only the give-up deadline),
``retransmit_2xx`` resends the same bytes, doubling the interval up to T2, and gives up after
64*T1 with a BYE. ``acked`` takes the entry off when the ACK of the 2xx's CSeq arrives. A BYE
asked for before then is held (``defer_bye``) and sent by the UAS core once the ACK comes.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.dialog import DialogId
from callserver.sip.events import Peer, Transmit
from callserver.sip.message import Response
from callserver.sip.transaction_user import TransactionUser

__all__ = ["Pending2xx", "Unacked2xx"]


@dataclass(slots=True)
class Unacked2xx:
    """A 2xx sent and not yet ACKed: its bytes, where they go, and when to resend or give up."""

    data: bytes
    peer: Peer
    cseq: int
    interval: float
    give_up: float
    bye_wanted: bool = False


class Pending2xx:
    """The 2xx responses of the UAS core awaiting their ACK, by dialog (module docstring)."""

    def __init__(self, tu: TransactionUser) -> None:
        self._tu = tu
        self._dialogs = tu.dialogs
        self._out = tu.outbox
        self._deadlines = tu.outbox.timers
        self._pending: dict[DialogId, Unacked2xx] = {}

    def start(
        self, dialog_id: DialogId, response: Response, data: bytes, peer: Peer, now: float
    ) -> None:
        """Retransmit the 2xx ``data`` to ``peer`` until its ACK arrives (§13.3.1.4)."""
        timers = self._tu.config.timers
        pending = Unacked2xx(
            data=data,
            peer=peer,
            cseq=response.cseq().seq,
            interval=timers.t1,
            give_up=now + 64 * timers.t1,
        )
        self._pending[dialog_id] = pending
        first = now + (timers.t1 if not peer.reliable else 64 * timers.t1)
        self._deadlines.schedule(("2xx", dialog_id), first)

    def acked(self, dialog_id: DialogId, cseq: int) -> Unacked2xx | None:
        """The 2xx an ACK of ``cseq`` acknowledges, no longer retransmitted; None when the ACK
        is a retransmission or of a dialog no longer known."""
        pending = self._pending.get(dialog_id)
        if pending is None or pending.cseq != cseq:
            return None
        del self._pending[dialog_id]
        self._deadlines.schedule(("2xx", dialog_id), None)
        return pending

    def retransmit_2xx(self, dialog_id: DialogId, now: float) -> None:
        """Timer of the 2xx for ``dialog_id``: resend it, or give up and BYE (§13.3.1.4)."""
        pending = self._pending.get(dialog_id)
        if pending is None:
            return
        if now >= pending.give_up:
            # "If the server retransmits the 2xx response for 64*T1 seconds without receiving
            # an ACK, the dialog is confirmed, but the session SHOULD be terminated."
            del self._pending[dialog_id]
            dialog = self._dialogs.get(dialog_id)
            if dialog is not None:
                self._tu.send_in_dialog(dialog, "BYE", now)
                self._tu.terminate(dialog, "ack_timeout", now)
            return
        self._out.transmits.append(Transmit(data=pending.data, peer=pending.peer))
        pending.interval = min(2 * pending.interval, self._tu.config.timers.t2)
        self._deadlines.schedule(("2xx", dialog_id), min(now + pending.interval, pending.give_up))

    def defer_bye(self, dialog_id: DialogId) -> bool:
        """Hold a BYE for a dialog whose 2xx is not ACKed yet; True when it was held (§15).

        "the callee's UA MUST NOT send a BYE on a confirmed dialog until it has received an
        ACK for its 2xx response or until the server transaction times out."
        """
        pending = self._pending.get(dialog_id)
        if pending is None:
            return False
        pending.bye_wanted = True
        return True

    def dialog_ended(self, dialog_id: DialogId) -> None:
        """Stop retransmitting the 2xx of a dialog that is gone."""
        if self._pending.pop(dialog_id, None) is not None:
            self._deadlines.schedule(("2xx", dialog_id), None)
