"""The UAC core: INVITE, ACK for 2xx, CANCEL, digest retries (RFC 3261 §13.2).

Theory of operation
-------------------
``invite`` starts a client INVITE transaction and returns its key, which stays the call's
handle even when a 401/407 makes us retry with credentials (the retry's key is an alias).
Provisional responses with a To tag create early dialogs (§12.1.2); the 2xx confirms the
dialog and the core sends the ACK itself (§13.2.2.4), keeping its bytes to answer any
retransmitted 2xx, which reaches us with no transaction (key None). A CANCEL asked for
before any provisional response waits for one (§9.1: "a CANCEL ... SHOULD NOT be sent" until
a provisional response arrives); an INVITE still without a final response 64*T1 after its
CANCEL ends then (a peer may answer the CANCEL and never the INVITE). A 2xx that races our
CANCEL is ACKed and then ended with BYE.

``request`` sends any other out-of-dialog request (OPTIONS, RFC 3261 §11) through a non-INVITE
client transaction (§17.1.2) and returns its key: its responses reach the application as
``ResponseReceived`` and Timer F as ``TransactionTimedOut``, both carrying that key.
"""

from __future__ import annotations

from dataclasses import dataclass
from secrets import token_hex

from callserver.sip.dialog import Dialog, DialogId, DialogState
from callserver.sip.dialog_timers import DialogTimers
from callserver.sip.events import (
    DialogConfirmed,
    Peer,
    ResponseReceived,
    TransactionTimedOut,
    Transmit,
)
from callserver.sip.headers import Address
from callserver.sip.ids import new_branch, new_call_id, new_tag
from callserver.sip.message import Request, Response
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.transaction_user import TransactionUser, peer_for_dialog
from callserver.sip.uac import (
    Credentials,
    build_ack_for_2xx,
    build_cancel,
    build_request,
    with_authorization,
)
from callserver.sip.uas import session_timer_of_answer
from callserver.sip.uri import Uri

__all__ = ["UacCore"]


@dataclass(slots=True)
class _ClientInvite:
    handle: TransactionKey
    request: Request
    peer: Peer
    credentials: Credentials | None
    provisional_seen: bool = False
    cancel_wanted: bool = False
    auth_tried: bool = False
    flow: bool = False  # the dialog keeps to ``peer`` (a registered phone's flow)
    cancel_headers: tuple[tuple[str, str], ...] = ()


class UacCore:
    """Client-side INVITE handling over a ``TransactionUser`` (RFC 3261 §13.2, §9.1, §22.2)."""

    def __init__(self, tu: TransactionUser, timers: DialogTimers) -> None:
        self._tu = tu
        self._timers = timers
        self._dialogs = tu.dialogs
        self._out = tu.outbox
        self._events = tu.outbox.events
        self._invites: dict[TransactionKey, _ClientInvite] = {}
        self._acks: dict[DialogId, Transmit] = {}

    def invite(
        self,
        uri: Uri,
        *,
        from_addr: Address,
        to_addr: Address,
        peer: Peer,
        now: float,
        body: bytes = b"",
        content_type: str = "application/sdp",
        headers: tuple[tuple[str, str], ...] = (),
        credentials: Credentials | None = None,
        call_id: str | None = None,
        max_forwards: int = 70,
        flow: bool = False,
    ) -> TransactionKey:
        """Send an INVITE (§13.2.1); returns the handle its responses will carry as ``key``.

        ``call_id`` (default: a new one) lets the caller journal the leg before it is sent.
        With ``flow`` the INVITE goes to a registered contact on the flow it registered from
        (``peer``), and so do the dialog's later requests (RFC 5626 §5.3).
        """
        config = self._tu.config
        request = build_request(
            "INVITE",
            uri,
            via=config.via(peer.transport, new_branch()),
            from_addr=from_addr if from_addr.tag else from_addr.with_tag(new_tag()),
            to_addr=to_addr,
            call_id=call_id or new_call_id(),
            cseq=1,
            contact=config.contact(peer.transport),
            max_forwards=max_forwards,
            extra=(
                ("Allow", ", ".join(sorted(config.policy.allowed_methods))),
                ("Supported", "timer"),
                ("User-Agent", config.user_agent),
                *headers,
            ),
        )
        if body:
            request.headers.add("Content-Type", content_type)
            request.body = body
        key = self._tu.send_request(request, peer, now)
        self._invites[key] = _ClientInvite(key, request, peer, credentials, flow=flow)
        return key

    def cancel(
        self, handle: TransactionKey | None, now: float, headers: tuple[tuple[str, str], ...] = ()
    ) -> None:
        """Cancel a pending INVITE (§9.1); sent once a provisional response has arrived.
        ``headers`` go in the CANCEL, e.g. ``Reason: SIP;cause=200`` (RFC 3326)."""
        for key, pending in self._invites.items():
            if pending.handle == handle and not pending.cancel_wanted:
                pending.cancel_wanted = True
                pending.cancel_headers = headers
                if pending.provisional_seen:
                    self._send_cancel(key, pending, now)

    def _send_cancel(self, key: TransactionKey, pending: _ClientInvite, now: float) -> None:
        cancel = build_cancel(pending.request, pending.cancel_headers)
        self._tu.send_request(cancel, pending.peer, now)
        self._tu.apply(self._tu.transactions.cancel_sent(key, now))

    def on_response(self, event: ResponseReceived, now: float) -> None:
        """Route a response from the transaction layer (ours, or a stray 2xx)."""
        if event.key is None:
            self._stray(event.response)
            return
        if self._timers.is_refresh(event.key):
            if event.response.status >= 200:
                self._ack_if_invite(event, now)
                self._timers.refresh_answered(event.key, event.response, now)
            return
        pending = self._invites.get(event.key)
        if pending is None:
            self._ack_if_invite(event, now)
            self._events.append(event)
            return
        if self._on_invite_response(event.key, pending, event, now):
            self._events.append(
                ResponseReceived(
                    response=event.response, peer=event.peer, key=pending.handle, rtime=event.rtime
                )
            )

    def _on_invite_response(
        self, key: TransactionKey, pending: _ClientInvite, event: ResponseReceived, now: float
    ) -> bool:
        response = event.response
        status = response.status
        if status < 200:
            self._provisional(key, pending, response, now)
        elif status < 300:
            retransmitted = self._acks.get(_uac_dialog_id(pending.request, response))
            if retransmitted is not None:
                # RFC 6026: a retransmitted 2xx comes up through the Accepted client
                # transaction; answer it with the same ACK, tell nobody.
                self._out.transmits.append(retransmitted)
                return False
            dialog = self._confirm(pending, response, event.peer, now)
            self._events.append(DialogConfirmed(dialog_id=dialog.id, rtime=event.rtime))
            if pending.cancel_wanted:
                self._tu.bye(dialog, now)
        elif status in (401, 407) and pending.credentials and not pending.auth_tried:
            return not self._retry_with_auth(key, pending, response, now)
        else:
            self._drop_early(pending.request)
        return True

    def _provisional(
        self, key: TransactionKey, pending: _ClientInvite, response: Response, now: float
    ) -> None:
        if response.to().tag is not None and response.status > 100:
            dialog_id = _uac_dialog_id(pending.request, response)
            if dialog_id not in self._dialogs:
                dialog = Dialog.as_uac(pending.request, response, pending.peer)
                dialog.flow = pending.flow
                self._dialogs[dialog.id] = dialog
        if not pending.provisional_seen:
            pending.provisional_seen = True
            if pending.cancel_wanted:
                self._send_cancel(key, pending, now)

    def _confirm(
        self, pending: _ClientInvite, response: Response, peer: Peer, now: float
    ) -> Dialog:
        dialog = self._dialogs.get(_uac_dialog_id(pending.request, response))
        if dialog is None:
            dialog = Dialog.as_uac(pending.request, response, pending.peer)
            dialog.flow = pending.flow
            self._dialogs[dialog.id] = dialog
        dialog.confirm(response)
        dialog.local_sdp = pending.request.body
        dialog.remote_sdp = response.body
        self._send_ack(dialog, pending.request, now)
        dialog.session_timer = session_timer_of_answer(response)
        self._timers.start(dialog, now)
        return dialog

    def _send_ack(self, dialog: Dialog, invite: Request, now: float) -> None:
        target = peer_for_dialog(dialog)
        ack = build_ack_for_2xx(dialog, invite, self._tu.config.via(target.transport, new_branch()))
        transmit = Transmit(data=ack.serialize(), peer=target)
        self._acks[dialog.id] = transmit
        self._out.transmits.append(transmit)

    def _ack_if_invite(self, event: ResponseReceived, now: float) -> None:
        response = event.response
        if response.cseq().method != "INVITE" or not 200 <= response.status < 300:
            return
        dialog = self._dialogs.get(_dialog_id_of_response(response))
        if dialog is not None and event.key is not None:
            # RFC 6026: the client transaction is still there (Accepted) when its 2xx arrives.
            self._send_ack(dialog, self._tu.transactions.request_for(event.key), now)

    def _stray(self, response: Response) -> None:
        """A retransmitted 2xx: answer with the same ACK again (§13.2.2.4)."""
        if response.cseq().method != "INVITE" or not 200 <= response.status < 300:
            return
        transmit = self._acks.get(_dialog_id_of_response(response))
        if transmit is not None:
            self._out.transmits.append(transmit)

    def _retry_with_auth(
        self, key: TransactionKey, pending: _ClientInvite, response: Response, now: float
    ) -> bool:
        assert pending.credentials is not None
        retry = with_authorization(
            pending.request,
            response,
            pending.credentials,
            via=self._tu.config.via(pending.peer.transport, new_branch()),
            cnonce=token_hex(8),
        )
        if retry is None:
            return False
        new_key = self._tu.send_request(retry, pending.peer, now)
        self._invites[new_key] = _ClientInvite(
            pending.handle,
            retry,
            pending.peer,
            pending.credentials,
            cancel_wanted=pending.cancel_wanted,
            auth_tried=True,
            flow=pending.flow,
            cancel_headers=pending.cancel_headers,
        )
        return True

    def _drop_early(self, invite: Request) -> None:
        call_id, local_tag = invite.call_id(), invite.from_().tag
        for dialog_id in [d for d in self._dialogs if d.call_id == call_id]:
            dialog = self._dialogs[dialog_id]
            if dialog_id.local_tag == local_tag and dialog.state is DialogState.EARLY:
                del self._dialogs[dialog_id]

    def on_timeout(self, event: TransactionTimedOut, now: float) -> None:
        """Timer B/F/H: a refresh fails; an INVITE of ours reports as 408 to the application."""
        if self._timers.is_refresh(event.key):
            self._timers.refresh_timed_out(event.key, now)
            return
        pending = self._invites.get(event.key)
        if pending is not None:
            self._drop_early(pending.request)
            self._events.append(TransactionTimedOut(key=pending.handle, request=event.request))
        elif event.request.method != "INVITE":
            self._events.append(event)

    def forget(self, key: TransactionKey) -> None:
        """A client transaction ended: drop our record of it."""
        self._invites.pop(key, None)

    def dialog_ended(self, dialog_id: DialogId) -> None:
        """Forget the cached ACK of a dialog that is gone."""
        self._acks.pop(dialog_id, None)

    def request(
        self,
        method: str,
        uri: Uri,
        *,
        from_addr: Address,
        to_addr: Address,
        peer: Peer,
        now: float,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        call_id: str | None = None,
        cseq: int = 1,
    ) -> TransactionKey:
        """Send a non-INVITE request such as OPTIONS (RFC 3261 §8.1.1, §11) to ``peer``
        through a client transaction (§17.1.2); returns the key its ``ResponseReceived`` and
        ``TransactionTimedOut`` events carry.

        ``headers`` go after the mandatory ones (a Route set, RFC 3327 §5.3; Accept, §11.1;
        a Content-Type for ``body``). A request inside a dialog the TU keeps itself (a NOTIFY
        of a subscription, RFC 6665 §4.2.1.2) gives its tagged ``from_addr`` and ``to_addr``,
        the dialog's ``call_id`` and its next ``cseq`` (RFC 3261 §12.2.1.1).

        Raises:
            ValueError: ``method`` is INVITE, ACK or CANCEL, which have their own methods.
        """
        if method in _NOT_ALONE:
            raise ValueError(f"{method} is not sent with request(): use invite() or cancel()")
        config = self._tu.config
        request = build_request(
            method,
            uri,
            via=config.via(peer.transport, new_branch()),
            from_addr=from_addr if from_addr.tag else from_addr.with_tag(new_tag()),
            to_addr=to_addr,
            call_id=call_id or new_call_id(),
            cseq=cseq,
            extra=(*headers, ("User-Agent", config.user_agent)),
        )
        request.body = body
        return self._tu.send_request(request, peer, now)


_NOT_ALONE = frozenset({"INVITE", "ACK", "CANCEL"})


def _uac_dialog_id(invite: Request, response: Response) -> DialogId:
    return DialogId(invite.call_id(), invite.from_().tag or "", response.to().tag or "")


def _dialog_id_of_response(response: Response) -> DialogId:
    return DialogId(response.call_id(), response.from_().tag or "", response.to().tag or "")
