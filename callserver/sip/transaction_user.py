"""What the UAS core, the UAC core and the dialog timers share (RFC 3261 §6, "TU").

Theory of operation
-------------------
RFC 3261 calls the layer above the transactions the transaction user: here it is three parts
(``uas_core``, ``uac_core``, ``dialog_timers``) over one ``TransactionUser``, which holds what
they share: the endpoint's config (and the header fields formatted from it), its dialogs
(RFC 3261 §12), its transaction layer (§17) and the ``Outbox`` the endpoint drains. It also
does what more than one of them does: start a client transaction (``send_request``), send
through a server transaction (``send_response``), send a request inside a dialog (§12.2.1.1),
end a dialog with BYE (§15.1.1) or without (``terminate``), and count input it drops.

None of the parts calls the endpoint. What a part must hear when a dialog ends or a transaction
it started ends comes through the listeners the endpoint registers at construction
(``dialog_listeners``, ``transaction_listeners``), called in order, synchronously.
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.sip.dialog import Dialog, DialogId, DialogState
from callserver.sip.endpoint_config import EndpointConfig, HeaderFields
from callserver.sip.events import (
    DialogTerminated,
    MessageDropped,
    Peer,
    TransactionOutput,
    TransactionTerminated,
    Transmit,
)
from callserver.sip.ids import new_branch
from callserver.sip.message import Request, Response
from callserver.sip.outbox import Outbox
from callserver.sip.transaction import TransactionLayer
from callserver.sip.transaction_key import ClientKey, TransactionKey
from callserver.sip.uri import SipUri

__all__ = ["TransactionUser", "peer_for_dialog"]


class TransactionUser:
    """The config, dialogs, transaction layer and outbox of one endpoint, and what its UAS
    and UAC cores and dialog timers do with them alike (module docstring)."""

    def __init__(
        self, config: EndpointConfig, transactions: TransactionLayer, outbox: Outbox
    ) -> None:
        self.configure(config)
        self.transactions = transactions
        self.outbox = outbox
        self.dialogs: dict[DialogId, Dialog] = {}
        self.dropped = 0
        self.dialog_listeners: tuple[Callable[[DialogId], None], ...] = ()
        self.transaction_listeners: tuple[Callable[[TransactionKey], None], ...] = ()

    def configure(self, config: EndpointConfig) -> None:
        """Take ``config`` (e.g. once a port is bound) and format the header fields from it."""
        self.config = config
        self.fields = HeaderFields.of(config)

    def send_request(self, request: Request, peer: Peer, now: float) -> ClientKey:
        """Start a client transaction for ``request`` (RFC 3261 §17.1); returns its key."""
        key, actions = self.transactions.send_request(request, peer, now)
        self.apply(actions)
        return key

    def send_response(
        self, key: TransactionKey, response: Response, now: float
    ) -> list[TransactionOutput]:
        """Send ``response`` through server transaction ``key`` (§17.2); returns the actions
        carried out (the first ``Transmit`` holds the response's bytes)."""
        actions = self.transactions.send_response(key, response, now)
        self.apply(actions)
        return actions

    def apply(self, actions: list[TransactionOutput]) -> None:
        """Carry out what a send returned: bytes go out, an ended transaction is forgotten
        (a send returns nothing else; anything that is the application's is queued for it)."""
        for action in actions:
            if isinstance(action, Transmit):
                self.outbox.transmits.append(action)
            elif isinstance(action, TransactionTerminated):
                for forget in self.transaction_listeners:
                    forget(action.key)
            else:
                self.outbox.events.append(action)

    def send_in_dialog(
        self,
        dialog: Dialog,
        method: str,
        now: float,
        *,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> ClientKey:
        """Send a request inside ``dialog`` (§12.2.1); returns its client transaction key."""
        peer = peer_for_dialog(dialog)
        request = dialog.create_request(method, self.config.via(peer.transport, new_branch()))
        for name, value in headers:
            request.headers.add(name, value)
        if method in ("INVITE", "UPDATE"):
            request.headers.add("Contact", self.config.contact(peer.transport))
        if body:
            request.headers.add("Content-Type", content_type)
            request.body = body
        return self.send_request(request, peer, now)

    def bye(self, dialog: Dialog, now: float) -> ClientKey:
        """End ``dialog`` with BYE now (RFC 3261 §15.1.1); returns the BYE's transaction key."""
        key = self.send_in_dialog(dialog, "BYE", now)
        self.terminate(dialog, "bye_sent", now)
        return key

    def terminate(self, dialog: Dialog, reason: str, rtime: float) -> None:
        """Mark ``dialog`` ended, tell the listeners, then the application."""
        dialog.state = DialogState.TERMINATED
        self.dialogs.pop(dialog.id, None)
        for ended in self.dialog_listeners:
            ended(dialog.id)
        self.outbox.events.append(DialogTerminated(dialog_id=dialog.id, reason=reason, rtime=rtime))

    def drop(self, reason: str, peer: Peer) -> None:
        """Count and report input that cannot be answered."""
        self.dropped += 1
        self.outbox.events.append(MessageDropped(reason=reason, peer=peer))


def peer_for_dialog(dialog: Dialog) -> Peer:
    """Where in-dialog requests go: the dialog's peer when it is a flow (a registered phone,
    RFC 5626 §5.3), else the next hop's numeric host, else the dialog's peer."""
    peer = dialog.peer
    if dialog.flow:
        return peer
    uri = dialog.next_hop()
    if not isinstance(uri, SipUri) or not _numeric(uri.host):
        return peer
    host = uri.host.strip("[]")
    port = uri.port or (5061 if uri.scheme == "sips" else 5060)
    transport = uri.transport or peer.transport
    if (host, port, transport) == (peer.host, peer.port, peer.transport):
        return peer
    return Peer(transport, host, port)


def _numeric(host: str) -> bool:
    stripped = host.strip("[]")
    return ":" in stripped or stripped.replace(".", "").isdigit()
