"""The UAS core: what happens to each request (RFC 3261 §8.2, §9.2, §12-§15).

Theory of operation
-------------------
``on_request`` takes every request the transaction layer delivers and either answers it
itself or hands it to the application as an event. In order: an ACK confirms its dialog
(and stops the 2xx retransmission); the RFC 3261 §8.2 checks of ``validate`` may reject it;
a request with a To tag goes to its dialog (481 without one, but for a SUBSCRIBE, whose
dialogs the application keeps (RFC 6665 §4.1.2.2); 500 for a CSeq out of order,
200 for BYE and OPTIONS, a refresh for a bodiless UPDATE, the RFC 4028 negotiation of the
refresh a re-INVITE or an UPDATE with an offer is); a CANCEL finds its INVITE (200,
then 487 if the INVITE has no final response yet); a merged request gets 482; an INVITE
passes the RFC 4028 checks (422) before the application sees it; OPTIONS is answered here.

``respond`` builds every response the application or this core sends (§8.2.6) and, for a
2xx to an INVITE, creates the dialog and retransmits the 2xx until the ACK arrives
(§13.3.1.4), sending BYE after 64*T1 without one (``pending_2xx``). A BYE asked for before the
ACK waits for it (§15). The UAC half is ``uac_core``, the session timers ``dialog_timers``.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.dialog import Dialog, DialogId, DialogState, SessionTimer
from callserver.sip.dialog_timers import DialogTimers, RefreshRefused
from callserver.sip.errors import LocalProtocolError, SipParseError
from callserver.sip.events import (
    DialogConfirmed,
    InviteCancelled,
    Peer,
    RequestReceived,
    Transmit,
)
from callserver.sip.ids import new_tag
from callserver.sip.message import Request, Response
from callserver.sip.pending_2xx import Pending2xx
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.transaction_user import TransactionUser
from callserver.sip.uas import (
    SessionTimerAnswer,
    build_response,
    negotiate_session_timer,
    response_peer,
)
from callserver.sip.validate import check_request

__all__ = ["UasCore"]


_TU_DIALOGS = frozenset({"SUBSCRIBE"})
"""Methods whose dialogs the TU keeps itself (RFC 6665 subscriptions): an in-dialog request
of one of them that names no INVITE dialog goes to the TU, not back with 481."""


class UasCore:
    """Server-side request handling over a ``TransactionUser`` (RFC 3261 §8.2, §13.3, §15)."""

    def __init__(self, tu: TransactionUser, timers: DialogTimers) -> None:
        self._tu = tu
        self._timers = timers
        self._dialogs = tu.dialogs
        self._events = tu.outbox.events
        self._server: dict[TransactionKey, _ServerInvite] = {}
        self._merge: dict[tuple[str, str, int], TransactionKey] = {}
        self._merge_of: dict[TransactionKey, tuple[str, str, int]] = {}
        # The 2xx table's own methods, without a hop through this core.
        self._pending_2xx = pending = Pending2xx(tu)
        self.retransmit_2xx = pending.retransmit_2xx
        self.defer_bye = pending.defer_bye
        self.dialog_ended = pending.dialog_ended
        # UPDATEs with an offer, and the session timer their 2xx sets up
        self._updates: dict[TransactionKey, tuple[DialogId, SessionTimerAnswer]] = {}
        self.invites_in_setup = 0  # INVITE server transactions without a final response yet

    def respond(
        self,
        key: TransactionKey | None,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        body: bytes = b"",
        content_type: str = "application/sdp",
        to_tag: str | None = None,
    ) -> DialogId | None:
        """Answer the request of server transaction ``key``; returns the dialog a 1xx/2xx made.

        A 2xx to an INVITE creates the dialog and is retransmitted until the ACK arrives
        (RFC 3261 §13.3.1.4); after 64*T1 without ACK the dialog gets a BYE. A request
        without a To tag gets one in every response but a 100: the INVITE's own, ``to_tag``,
        or a new one ("the UAS MUST add a tag to the To header field in the response",
        RFC 3261 §8.2.6.2).

        Raises:
            LocalProtocolError: ``key`` names no live transaction (None: the request was an
                ACK, which has none), or its state forbids this.
        """
        if key is None:
            raise LocalProtocolError("an ACK has no server transaction to respond in")
        request = self._tu.transactions.request_for(key)
        server = self._server.get(key)
        tag = server.tag if server else to_tag or new_tag()
        response = build_response(request, status, reason, to_tag=tag)
        update = self._updates.pop(key, None) if status >= 200 else None
        if 200 <= status < 300 and (server or update) is not None:
            headers = (server.session_headers if server else _headers_of(update)) + headers
        self._decorate(response, request, status, headers)
        if body:
            response.headers.add("Content-Type", content_type)
            response.body = body
        if server is not None and status > 100 and not server.final_sent:
            server.final_sent = status >= 200
            self.invites_in_setup -= int(server.final_sent)
        actions = self._tu.send_response(key, response, now)
        if update is not None and 200 <= status < 300:
            self._timers.refreshed(*update, now)
        if server is not None and status >= 300:
            self._end_early(server.dialog_id)
        if server is None or status == 100 or status >= 300:
            return None
        sent = next((a.data for a in actions if isinstance(a, Transmit)), None)
        return self._uas_dialog(server, request, response, sent, now)

    def _end_early(self, dialog_id: DialogId | None) -> None:
        """RFC 3261 §12.3: "if a request outside of a dialog generates a non-2xx final
        response, any early dialogs created through provisional responses to that request are
        terminated" (a re-INVITE's error leaves its confirmed dialog as it is)."""
        dialog = self._dialogs.get(dialog_id) if dialog_id else None
        if dialog is not None and dialog.state is DialogState.EARLY:
            del self._dialogs[dialog.id]

    def _decorate(
        self, response: Response, request: Request, status: int, extra: tuple[tuple[str, str], ...]
    ) -> None:
        response.headers.add("Server", self._tu.config.user_agent)
        if request.method in ("INVITE", "UPDATE", "OPTIONS") and 100 < status < 300:
            transport = self._transport_of(request)
            contacts = self._tu.fields.contacts
            contact = contacts.get(transport) or self._tu.config.contact(transport)
            response.headers.add("Contact", contact)
        if (request.method in ("INVITE", "OPTIONS") and 200 <= status < 300) or status == 405:
            if not any(name.lower() == "allow" for name, _ in extra):  # a 405 brings its own
                response.headers.add("Allow", self._tu.fields.allow)
            response.headers.add("Supported", self._tu.fields.supported)
        for name, value in extra:
            response.headers.add(name, value)

    def _transport_of(self, request: Request) -> str:
        return request.top_via().transport.lower()

    def _uas_dialog(
        self,
        server: _ServerInvite,
        request: Request,
        response: Response,
        sent: bytes | None,
        now: float,
    ) -> DialogId:
        dialog = self._dialogs.get(server.dialog_id) if server.dialog_id else None
        if dialog is None:
            dialog = Dialog.as_uas(request, response, server.peer)
            self._dialogs[dialog.id] = dialog
            server.dialog_id = dialog.id
        if response.status >= 200:
            dialog.state = DialogState.CONFIRMED
            dialog.local_sdp = response.body or dialog.local_sdp
            dialog.session_timer = server.session_timer
            data = sent or response.serialize()
            self._pending_2xx.start(dialog.id, response, data, server.peer, now)
        return dialog.id

    def on_request(self, event: RequestReceived, now: float) -> None:
        """Answer ``event``'s request here, or pass it on to the application (module doc)."""
        request = event.request
        if request.method == "ACK":
            self._on_ack(event, now)
            return
        rejection = check_request(request, self._tu.config.policy)
        if rejection is not None:
            self._reply(
                event, rejection.status, now, reason=rejection.reason, headers=rejection.headers
            )
            return
        if request.to().tag is not None:
            self._in_dialog(event, now)
        elif request.method == "CANCEL":
            self._on_cancel(event, now)
        elif self._is_merged(event):
            self._reply(event, 482, now)
        elif request.method == "INVITE":
            self._on_invite(event, now)
        elif request.method == "OPTIONS":
            self._reply(
                event,
                200,
                now,
                headers=(("Accept", self._tu.fields.accept),),
            )
        elif request.method in ("BYE", "INFO", "UPDATE", "PRACK"):
            self._reply(event, 481, now)
        else:
            self._events.append(event)

    def _reply(
        self,
        event: RequestReceived,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: tuple[tuple[str, str], ...] = (),
        to_tag: str | None = None,
    ) -> None:
        if event.key is not None:
            self.respond(event.key, status, now, reason=reason, headers=headers, to_tag=to_tag)

    def _is_merged(self, event: RequestReceived) -> bool:
        """RFC 3261 §8.2.2.2: same From tag, Call-ID and CSeq as a pending request, other branch."""
        request = event.request
        triple = (request.from_().tag or "", request.call_id(), request.cseq().seq)
        owner = self._merge.get(triple)
        if owner is not None and owner != event.key:
            return True
        if request.method == "INVITE" and event.key is not None:
            self._merge[triple] = event.key
            self._merge_of[event.key] = triple
        return False

    def _on_invite(self, event: RequestReceived, now: float) -> None:
        try:
            timer = negotiate_session_timer(
                event.request,
                default=self._tu.config.session_expires,
                min_se=self._tu.config.min_se,
            )
        except SipParseError as exc:
            self._reply(event, exc.status_hint, now)
            return
        assert event.key is not None  # only an ACK comes without a transaction
        self._server[event.key] = _ServerInvite(
            tag=new_tag(),
            peer=response_peer(event.request, event.peer),
            session_timer=timer.timer,
            session_headers=timer.headers,
        )
        self.invites_in_setup += 1
        if timer.reject_min_se is not None:
            self.respond(event.key, 422, now, headers=timer.headers)
            return
        self._events.append(event)

    def _on_cancel(self, event: RequestReceived, now: float) -> None:
        """RFC 3261 §9.2: 200 to the CANCEL, then 487 to the INVITE if it has no final yet."""
        invite_key = self._tu.transactions.find_invite_for_cancel(event.request)
        if invite_key is None:
            self._reply(event, 481, now)
            return
        server = self._server.get(invite_key)
        # "The To tag of the response to the CANCEL and the response to the original request
        # SHOULD be the same."
        self._reply(event, 200, now, to_tag=server.tag if server else None)
        if server is not None and not server.final_sent:
            self.respond(invite_key, 487, now)
            self._events.append(InviteCancelled(key=invite_key, rtime=event.rtime))

    def _in_dialog(self, event: RequestReceived, now: float) -> None:
        request = event.request
        dialog = self._dialogs.get(_dialog_id_of(request))
        if dialog is None and request.method in _TU_DIALOGS:
            self._events.append(event)  # a subscription's dialog: its notifier keeps it
            return
        if dialog is None or dialog.state is DialogState.TERMINATED:
            self._reply(event, 481, now)
            return
        if not dialog.accept_remote_cseq(request):
            self._reply(event, 500, now, reason="Out of Order CSeq")
            return
        if request.method == "BYE":
            self._reply(event, 200, now)
            self._tu.terminate(dialog, "bye_received", event.rtime)
        elif request.method == "OPTIONS":
            self._reply(event, 200, now)
        elif request.method == "UPDATE" and not request.body:
            self._refreshed_by_peer(dialog, event, now)
        elif request.method in ("INVITE", "UPDATE"):
            self._offer_in_dialog(dialog, event, now)
        else:
            self._events.append(event)

    def _refreshed_by_peer(self, dialog: Dialog, event: RequestReceived, now: float) -> None:
        """The peer refreshed with an UPDATE without a body: answer 200 and re-arm."""
        answer = self._timers.negotiate_refresh(dialog, event.request, offer=False)
        if isinstance(answer, RefreshRefused):
            self._reply(event, answer.status, now, headers=answer.headers)
            return
        self._reply(event, 200, now, headers=answer.headers)
        self._timers.refreshed(dialog.id, answer, now)

    def _offer_in_dialog(self, dialog: Dialog, event: RequestReceived, now: float) -> None:
        timer = self._timers.negotiate_refresh(dialog, event.request, offer=True)
        if isinstance(timer, RefreshRefused):
            self._reply(event, timer.status, now, headers=timer.headers)  # 491, 400 or 422
            return
        assert event.key is not None  # only an ACK comes without a transaction
        if event.request.method == "UPDATE":
            self._updates[event.key] = (dialog.id, timer)
        else:
            self._server[event.key] = _ServerInvite(
                tag=dialog.id.local_tag,
                peer=response_peer(event.request, event.peer),
                dialog_id=dialog.id,
                session_timer=timer.timer,
                session_headers=timer.headers,
            )
        self._events.append(event)

    def _on_ack(self, event: RequestReceived, now: float) -> None:
        dialog_id = _dialog_id_of(event.request)
        pending = self._pending_2xx.acked(dialog_id, event.request.cseq().seq)
        if pending is None:
            return  # retransmitted ACK, or ACK of a dialog we no longer know
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            return
        if event.request.body:
            dialog.remote_sdp = event.request.body
        confirmed = DialogConfirmed(dialog_id=dialog_id, rtime=event.rtime, body=event.request.body)
        self._events.append(confirmed)
        if pending.bye_wanted:
            if dialog.state is not DialogState.TERMINATED:
                self._tu.bye(dialog, now)  # asked for before the ACK came (§15)
        else:
            self._timers.start(dialog, now)

    def forget(self, key: TransactionKey) -> None:
        """Transaction ``key`` ended: drop its INVITE or UPDATE state and merge-detection entry."""
        server = self._server.pop(key, None)
        if server is not None and not server.final_sent:
            self.invites_in_setup -= 1
        self._updates.pop(key, None)
        triple = self._merge_of.pop(key, None)
        if triple is not None:
            self._merge.pop(triple, None)

    def is_pending_invite(self, key: TransactionKey | None) -> bool:
        """True while INVITE server transaction ``key`` has had no final response."""
        server = self._server.get(key) if key is not None else None
        return server is not None and not server.final_sent


@dataclass(slots=True)
class _ServerInvite:
    tag: str
    peer: Peer
    session_timer: SessionTimer | None = None
    session_headers: tuple[tuple[str, str], ...] = ()
    dialog_id: DialogId | None = None
    final_sent: bool = False


def _headers_of(update: tuple[DialogId, SessionTimerAnswer] | None) -> tuple[tuple[str, str], ...]:
    return () if update is None else update[1].headers


def _dialog_id_of(request: Request) -> DialogId:
    return DialogId(request.call_id(), request.to().tag or "", request.from_().tag or "")
