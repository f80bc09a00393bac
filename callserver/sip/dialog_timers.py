"""RFC 4028 session timers of confirmed dialogs: refresh when we are the refresher, BYE on expiry.

Theory of operation
-------------------
When a dialog is confirmed with a session timer, one of two deadlines is armed on the
endpoint's outbox: ``refresh`` at half the interval when we refresh (RFC 4028 §10: "the
refresh SHOULD be sent ... at half the session expiration"), or ``expire`` at the interval
less min(32, interval/3) when the peer does (§10: "the BYE SHOULD be sent ... 32 seconds or
one third of the session interval, whichever is less, before expiration"). A refresh we send
is an UPDATE when the peer allows it, else a re-INVITE with our last SDP; it names us, its
UAC, the refresher, its 2xx re-arms the timer, a failure ends the dialog. A refresh the peer
sends re-arms the timer too: ``negotiate_refresh`` works out the timer a re-INVITE or an UPDATE
sets up, or the error it gets (the UAS core answers: 200 at once for a bodiless UPDATE, else
the application), and ``refreshed`` applies it when the 2xx goes out. Each dialog's timer is
its own: a B2BUA's two legs refresh independently.
"""

from __future__ import annotations

from dataclasses import dataclass

from callserver.sip.dialog import Dialog, DialogId, DialogState
from callserver.sip.errors import SipParseError
from callserver.sip.message import Request, Response
from callserver.sip.transaction_key import TransactionKey
from callserver.sip.transaction_user import TransactionUser
from callserver.sip.uas import SessionTimerAnswer, negotiate_session_timer

__all__ = ["DialogTimers", "RefreshRefused"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RefreshRefused:
    """The error response a refresh from the peer gets instead of a new session timer."""

    status: int
    headers: tuple[tuple[str, str], ...] = ()


class DialogTimers:
    """Session-timer deadlines of the endpoint's dialogs (RFC 4028 §10)."""

    def __init__(self, tu: TransactionUser) -> None:
        self._tu = tu
        self._dialogs = tu.dialogs
        self._deadlines = tu.outbox.timers
        self._refreshing: dict[TransactionKey, DialogId] = {}
        self._offering: set[DialogId] = set()  # our refresh re-INVITE (an offer) is pending

    def start(self, dialog: Dialog, now: float) -> None:
        """(Re)arm the dialog's session timer from ``now``."""
        self.stop(dialog)
        timer = dialog.session_timer
        if timer is None or dialog.state is not DialogState.CONFIRMED:
            return
        if timer.we_refresh:
            self._deadlines.schedule(("refresh", dialog.id), now + timer.interval / 2)
        else:
            margin = min(32.0, timer.interval / 3)
            self._deadlines.schedule(("expire", dialog.id), now + timer.interval - margin)

    def stop(self, dialog: Dialog) -> None:
        """Disarm the dialog's session-timer deadlines."""
        self.dialog_ended(dialog.id)

    def dialog_ended(self, dialog_id: DialogId) -> None:
        """Disarm the session-timer deadlines of a dialog that is gone."""
        self._deadlines.schedule(("refresh", dialog_id), None)
        self._deadlines.schedule(("expire", dialog_id), None)

    def fire(self, kind: str, ident: DialogId, now: float) -> None:
        """A ``refresh`` or ``expire`` deadline came due."""
        dialog = self._dialogs.get(ident)
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return
        if kind == "expire":
            self._tu.send_in_dialog(dialog, "BYE", now)
            self._tu.terminate(dialog, "session_expired", now)
        elif kind == "refresh":
            self._send_refresh(dialog, now)

    def _send_refresh(self, dialog: Dialog, now: float) -> None:
        timer = dialog.session_timer
        if timer is None:
            return
        # RFC 4028 §7.4: refresher=uac, we the UAC of this refresh keep refreshing (a dialog's
        # UAS naming "uas" here would hand the refreshes to the peer).
        headers = (("Session-Expires", f"{timer.interval};refresher=uac"), ("Supported", "timer"))
        if "UPDATE" in dialog.remote_allow or not dialog.local_sdp:
            key = self._tu.send_in_dialog(dialog, "UPDATE", now, headers=headers)
        else:
            key = self._tu.send_in_dialog(
                dialog, "INVITE", now, body=dialog.local_sdp, headers=headers
            )
            self._offering.add(dialog.id)
        self._refreshing[key] = dialog.id

    def is_refresh(self, key: TransactionKey) -> bool:
        """True when client transaction ``key`` carries one of our refreshes."""
        return key in self._refreshing

    def refresh_answered(self, key: TransactionKey, response: Response, now: float) -> None:
        """Our refresh got a final response: 2xx re-arms, anything else ends the dialog."""
        dialog_id = self._refreshing.pop(key, None)
        if dialog_id is None:
            return
        self._offering.discard(dialog_id)
        dialog = self._dialogs.get(dialog_id)
        if dialog is None:
            return
        if 200 <= response.status < 300:
            self.start(dialog, now)
            return
        if response.status not in (481, 408):
            self._tu.send_in_dialog(dialog, "BYE", now)
        self._tu.terminate(dialog, "refresh_failed", now)

    def refresh_timed_out(self, key: TransactionKey, now: float) -> None:
        """Our refresh got no answer at all (RFC 4028 §10: treat as a failed refresh)."""
        self.refresh_answered(key, Response(status=408), now)

    def negotiate_refresh(
        self, dialog: Dialog, request: Request, *, offer: bool
    ) -> SessionTimerAnswer | RefreshRefused:
        """The session timer a refresh from the peer sets up (RFC 4028 §9), or the error
        response it gets instead: 491 for an ``offer`` while our refresh re-INVITE (an offer
        too) is pending, 400 for a malformed Session-Expires, 422 for one below our Min-SE.

        Every re-INVITE and UPDATE is a refresh: a dialog with a timer keeps one (negotiated
        again, its interval the default), and a request with Session-Expires starts one.
        """
        if offer and dialog.id in self._offering:
            # "A UAS that receives an INVITE on a dialog while an INVITE it had sent on that
            # dialog is in progress MUST return a 491 (Request Pending)" (RFC 3261 §14.2).
            return RefreshRefused(status=491)
        current = dialog.session_timer
        if current is None and "Session-Expires" not in request.headers:
            return SessionTimerAnswer(None, None, ())
        try:
            answer = negotiate_session_timer(
                request,
                default=current.interval if current else self._tu.config.session_expires,
                min_se=self._tu.config.min_se,
            )
        except SipParseError as exc:
            return RefreshRefused(status=exc.status_hint)
        if answer.reject_min_se is not None:
            return RefreshRefused(status=422, headers=answer.headers)
        return answer

    def refreshed(self, dialog_id: DialogId, timer: SessionTimerAnswer, now: float) -> None:
        """Our 2xx to a refresh went out: the timer it set up runs from now (re-INVITE: the
        ACK starts it, ``start``)."""
        dialog = self._dialogs.get(dialog_id)
        if dialog is not None:
            dialog.session_timer = timer.timer
            self.start(dialog, now)
