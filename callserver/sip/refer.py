"""REFER (RFC 3515), its implicit subscription (RFC 6665) and Replaces (RFC 3891).

Theory of operation
-------------------
A REFER inside a dialog asks its recipient to send a request to the ``Refer-To`` URI; a
transfer is one with an INVITE (RFC 5589). ``parse_refer`` reads the request: its target, the
``Replaces`` header embedded in the URI for an attended transfer (RFC 3891 §3, escaped as
every URI header is: RFC 3261 §19.1.1) and ``Referred-By`` (RFC 3892), kept as written.

A REFER accepted with 202 creates an implicit subscription to the ``refer`` event (RFC 3515
§2.4.4). ``ReferSubscription`` is its notifier: one table of ``{(state, input): handler}``.
It starts ``active`` and sends the first NOTIFY at once ("SIP/2.0 100 Trying"); each
provisional of the new call may be reported while active; the final response of the new call
sends the last NOTIFY, with ``Subscription-State: terminated;reason=noresource`` (RFC 6665
§4.1.3), and nothing more is sent after it. Every NOTIFY carries ``Event: refer`` (with
``id=`` the REFER's CSeq number, RFC 3515 §2.4.6) and a ``message/sipfrag`` body (RFC 3420)
holding the status line. The subscription does not send: it returns the NOTIFY's header
fields and body, and the caller sends them inside the dialog.

``Replaces`` is the value of the header of that name: the dialog to replace, seen from the
side that sent it. ``Replaces.matches`` compares it with one of our dialogs: "to-tag" is the
recipient's local tag and "from-tag" its remote one (RFC 3891 §3).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from callserver.sip.dialog import DialogId
from callserver.sip.errors import LocalProtocolError, SipParseError
from callserver.sip.grammar import parse_params
from callserver.sip.headers import parse_address
from callserver.sip.message import Request
from callserver.sip.uri import SipUri, Uri, unescape

__all__ = [
    "SIPFRAG",
    "Notify",
    "Refer",
    "ReferState",
    "ReferSubscription",
    "Replaces",
    "parse_refer",
    "parse_replaces",
    "sipfrag",
]

SIPFRAG = "message/sipfrag;version=2.0"
"""The NOTIFY body's type (RFC 3515 §2.4.5, RFC 3420)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Replaces:
    """The dialog a Replaces header names (RFC 3891 §6.1), as its sender sees it."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False

    def matches(self, dialog: DialogId) -> bool:
        """True when ``dialog`` (ours) is the one named: to-tag is our local tag (§3)."""
        return (dialog.call_id, dialog.local_tag, dialog.remote_tag) == (
            self.call_id,
            self.to_tag,
            self.from_tag,
        )

    def __str__(self) -> str:
        early = ";early-only" if self.early_only else ""
        return f"{self.call_id};to-tag={self.to_tag};from-tag={self.from_tag}{early}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Refer:
    """What a REFER asks (RFC 3515 §2.1): the target without its headers, a Replaces
    embedded in it, Referred-By as written."""

    target: Uri
    replaces: Replaces | None
    referred_by: str | None


def parse_replaces(value: str) -> Replaces:
    """Parse ``callid *(SEMI replaces-param)`` (RFC 3891 §6.1).

    Raises:
        SipParseError: (400) without a Call-ID, a to-tag or a from-tag.
    """
    call_id, _, rest = value.strip().partition(";")
    params = {name.lower(): v for name, v in parse_params(";" + rest if rest else "")}
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    if not call_id or not to_tag or not from_tag:
        raise SipParseError(f"Replaces needs a Call-ID, to-tag and from-tag: {value!r}", 400)
    return Replaces(
        call_id=call_id, to_tag=to_tag, from_tag=from_tag, early_only="early-only" in params
    )


def parse_refer(request: Request) -> Refer:
    """Read a REFER's ``Refer-To`` (exactly one, RFC 3515 §2.4.1) and ``Referred-By``.

    Raises:
        SipParseError: (400) for no or several Refer-To values, or a bad Replaces in it.
    """
    values = request.headers.values("Refer-To")
    if len(values) != 1:
        raise SipParseError(f"a REFER needs one Refer-To, not {len(values)}", 400)
    uri = parse_address(values[0]).uri
    replaces = None
    if isinstance(uri, SipUri) and uri.headers:
        for name, value in uri.headers:
            if unescape(name).lower() == "replaces":
                replaces = parse_replaces(unescape(value))
        uri = SipUri(uri.scheme, uri.host, uri.user, uri.password, uri.port, uri.params)
    return Refer(target=uri, replaces=replaces, referred_by=request.headers.get("Referred-By"))


def sipfrag(status: int, reason: str) -> bytes:
    """A ``message/sipfrag`` body holding only a status line (RFC 3515 §2.4.5)."""
    return f"SIP/2.0 {status} {reason}\r\n".encode()


class ReferState(Enum):
    """The implicit subscription's states we notify from (RFC 6665 §4.1.2)."""

    ACTIVE = "active"
    TERMINATED = "terminated"


class _Input(Enum):
    PROVISIONAL = "provisional"
    FINAL = "final"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notify:
    """One NOTIFY to send inside the REFER's dialog: its header fields and body."""

    headers: tuple[tuple[str, str], ...]
    body: bytes
    content_type: str = SIPFRAG


class ReferSubscription:
    """The notifier of one accepted REFER (module docstring).

    Args:
        refer_cseq: the REFER's CSeq number, the ``id`` of its ``refer`` event.
        expires: how long the subscription is said to last while active, in seconds.
    """

    def __init__(self, refer_cseq: int, expires: int = 60) -> None:
        self.state = ReferState.ACTIVE
        self._event = f"refer;id={refer_cseq}"
        self._expires = expires
        self._table = {
            (ReferState.ACTIVE, _Input.PROVISIONAL): self._progress,
            (ReferState.ACTIVE, _Input.FINAL): self._final,
        }

    def trying(self) -> Notify:
        """The first NOTIFY, sent right after the 202 (RFC 3515 §2.4.4)."""
        return self.progress(100, "Trying")

    def progress(self, status: int, reason: str) -> Notify:
        """A provisional response of the new call (1xx)."""
        if not 100 <= status < 200:
            raise LocalProtocolError(f"{status} is not provisional")
        return self._handle(_Input.PROVISIONAL, status, reason)

    def final(self, status: int, reason: str) -> Notify:
        """The new call's final response: the last NOTIFY; the subscription is terminated."""
        if status < 200:
            raise LocalProtocolError(f"{status} is not final")
        return self._handle(_Input.FINAL, status, reason)

    def _handle(self, kind: _Input, status: int, reason: str) -> Notify:
        handler = self._table.get((self.state, kind))
        if handler is None:
            raise LocalProtocolError(f"no NOTIFY for a {kind.value} in {self.state.value}")
        return handler(status, reason)

    def _progress(self, status: int, reason: str) -> Notify:
        return self._notify(f"active;expires={self._expires}", status, reason)

    def _final(self, status: int, reason: str) -> Notify:
        self.state = ReferState.TERMINATED
        return self._notify("terminated;reason=noresource", status, reason)

    def _notify(self, subscription_state: str, status: int, reason: str) -> Notify:
        headers = (("Event", self._event), ("Subscription-State", subscription_state))
        return Notify(headers=headers, body=sipfrag(status, reason))
