"""RFC 4028 session timers of confirmed dialogs: refresh when we are the refresher, BYE on expiry.

Theory of operation
-------------------
When a dialog is confirmed with a session timer, one of two deadlines is armed on the
endpoint's timer heap: ``refresh`` at half the interval when we refresh (RFC 4028 §10: "the
refresh SHOULD be sent ... at half the session expiration"), or ``expire`` at the interval
less min(32, interval/3) when the peer does (§10: "the BYE SHOULD be sent ... 32 seconds or
one third of the session interval, whichever is less, before expiration"). A refresh we send
is an UPDATE when the peer allows it, else a re-INVITE with our last SDP; its 2xx re-arms
the timer, a failure ends the dialog. A refresh the peer sends re-arms the timer too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callserver.sip.dialog import Dialog, DialogId, DialogState
from callserver.sip.errors import SipParseError
from callserver.sip.events import RequestReceived
from callserver.sip.message import Response
from callserver.sip.uas import negotiate_session_timer

if TYPE_CHECKING:
    from callserver.sip.endpoint import SipEndpoint

__all__ = ["DialogTimers"]


class DialogTimers:
    """Session-timer deadlines of the endpoint's dialogs (RFC 4028 §10)."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self._endpoint = endpoint
        self._refreshing: dict[object, DialogId] = {}

    def start(self, dialog: Dialog, now: float) -> None:
        """(Re)arm the dialog's session timer from ``now``."""
        self.stop(dialog)
        timer = dialog.session_timer
        if timer is None or dialog.state is not DialogState.CONFIRMED:
            return
        if timer.we_refresh:
            self._endpoint.arm_timer(("refresh", dialog.id), now + timer.interval / 2)
        else:
            margin = min(32.0, timer.interval / 3)
            self._endpoint.arm_timer(("expire", dialog.id), now + timer.interval - margin)

    def stop(self, dialog: Dialog) -> None:
        """Disarm the dialog's session-timer deadlines."""
        self._endpoint.arm_timer(("refresh", dialog.id), None)
        self._endpoint.arm_timer(("expire", dialog.id), None)

    def fire(self, kind: str, ident: object, now: float) -> None:
        """A ``refresh`` or ``expire`` deadline came due."""
        dialog = self._endpoint.dialogs.get(ident)  # type: ignore[call-overload]
        if dialog is None or dialog.state is not DialogState.CONFIRMED:
            return
        if kind == "expire":
            self._endpoint.send_in_dialog(dialog, "BYE", now)
            self._endpoint.terminate_dialog(dialog, "session_expired", now)
        elif kind == "refresh":
            self._send_refresh(dialog, now)

    def _send_refresh(self, dialog: Dialog, now: float) -> None:
        timer = dialog.session_timer
        if timer is None:
            return
        role = dialog.role
        headers = (
            ("Session-Expires", f"{timer.interval};refresher={role}"),
            ("Supported", "timer"),
        )
        if "UPDATE" in dialog.remote_allow or not dialog.local_sdp:
            key = self._endpoint.send_in_dialog(dialog, "UPDATE", now, headers=headers)
        else:
            key = self._endpoint.send_in_dialog(
                dialog, "INVITE", now, body=dialog.local_sdp, headers=headers
            )
        self._refreshing[key] = dialog.id

    def is_refresh(self, key: object) -> bool:
        """True when client transaction ``key`` carries one of our refreshes."""
        return key in self._refreshing

    def refresh_answered(self, key: object, response: Response, now: float) -> None:
        """Our refresh got a final response: 2xx re-arms, anything else ends the dialog."""
        dialog_id = self._refreshing.pop(key, None)
        dialog = self._endpoint.dialogs.get(dialog_id) if dialog_id is not None else None
        if dialog is None:
            return
        if 200 <= response.status < 300:
            self.start(dialog, now)
            return
        if response.status not in (481, 408):
            self._endpoint.send_in_dialog(dialog, "BYE", now)
        self._endpoint.terminate_dialog(dialog, "refresh_failed", now)

    def refresh_timed_out(self, key: object, now: float) -> None:
        """Our refresh got no answer at all (RFC 4028 §10: treat as a failed refresh)."""
        self.refresh_answered(key, Response(status=408), now)

    def refreshed_by_peer(self, dialog: Dialog, event: RequestReceived, now: float) -> None:
        """The peer refreshed with an UPDATE without a body: answer 200 and re-arm."""
        try:
            answer = negotiate_session_timer(
                event.request,
                default=dialog.session_timer.interval if dialog.session_timer else 1800,
                min_se=self._endpoint.config.min_se,
            )
        except SipParseError as exc:
            self._endpoint.respond(event.key, exc.status_hint, now)
            return
        if answer.reject_min_se is not None:
            self._endpoint.respond(event.key, 422, now, headers=answer.headers)
            return
        if answer.timer is not None and dialog.session_timer is not None:
            dialog.session_timer = answer.timer
        self._endpoint.respond(event.key, 200, now, headers=answer.headers)
        self.start(dialog, now)
