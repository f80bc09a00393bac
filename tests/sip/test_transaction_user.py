"""The UAS core and the dialog timers over a TransactionUser and an Outbox, with no endpoint."""

from __future__ import annotations

from callserver.sip.dialog import Dialog, DialogId, DialogState
from callserver.sip.dialog_timers import DialogTimers, RefreshRefused
from callserver.sip.endpoint_config import EndpointConfig
from callserver.sip.events import (
    DialogTerminated,
    MessageDropped,
    RequestReceived,
    TransactionTerminated,
    Transmit,
)
from callserver.sip.message import Request, Response
from callserver.sip.outbox import Outbox
from callserver.sip.parser import parse_message
from callserver.sip.timers import SipTimers
from callserver.sip.transaction import TransactionLayer
from callserver.sip.transaction_key import ClientKey, TransactionKey
from callserver.sip.transaction_user import TransactionUser
from callserver.sip.uas_core import UasCore
from tests.sip.conftest import UDP_PEER, SipFactory

NOW = 1000.0


def _core() -> tuple[TransactionUser, UasCore]:
    tu = TransactionUser(
        EndpointConfig(host="127.0.0.1", port=5060), TransactionLayer(SipTimers()), Outbox()
    )
    return tu, UasCore(tu, DialogTimers(tu))


def _receive(tu: TransactionUser, uas: UasCore, request: Request) -> RequestReceived:
    """Run ``request`` through the transaction layer into the UAS core, as the endpoint does."""
    (event, *rest) = tu.transactions.receive_request(request, UDP_PEER, NOW)
    assert isinstance(event, RequestReceived)
    tu.apply(rest)
    uas.on_request(event, NOW)
    return event


def _sent(tu: TransactionUser) -> list[Response | Request]:
    out, tu.outbox.transmits = tu.outbox.transmits, []
    return [parse_message(t.data) for t in out if isinstance(t, Transmit)]


def test_the_uas_core_answers_options_into_the_outbox(sip: SipFactory) -> None:
    """An OPTIONS outside a dialog is answered 200 in the outbox; the application hears nothing."""
    tu, uas = _core()
    _receive(tu, uas, sip.request("OPTIONS"))
    (response,) = _sent(tu)
    assert isinstance(response, Response)
    assert (response.status, response.cseq().method) == (200, "OPTIONS")
    assert list(tu.outbox.events) == []


def test_a_2xx_to_an_invite_makes_a_dialog_and_arms_its_retransmission(sip: SipFactory) -> None:
    """The INVITE is queued for the application; its 2xx makes the dialog and arms Timer 2xx."""
    tu, uas = _core()
    event = _receive(tu, uas, sip.request("INVITE"))
    assert list(tu.outbox.events) == [event]
    dialog_id = uas.respond(event.key, 200, NOW)
    assert dialog_id is not None and dialog_id in tu.dialogs
    assert [r.status for r in _sent(tu) if isinstance(r, Response)] == [200]
    t1 = tu.config.timers.t1
    assert tu.outbox.timers.deadline_of(("2xx", dialog_id)) == NOW + t1


def test_terminate_tells_the_listeners_in_order_then_the_application(sip: SipFactory) -> None:
    """Ending a dialog removes it, calls each listener with its id in order, then tells the app."""
    tu, _ = _core()
    heard: list[tuple[str, DialogId]] = []
    tu.dialog_listeners = (
        lambda d: heard.append(("first", d)),
        lambda d: heard.append(("second", d)),
    )
    invite = sip.request("INVITE")
    dialog = Dialog.as_uas(invite, sip.response(invite, 200, to_tag="tt-9"), UDP_PEER)
    tu.dialogs[dialog.id] = dialog
    tu.terminate(dialog, "bye_received", NOW + 5)
    assert heard == [("first", dialog.id), ("second", dialog.id)]
    assert dialog.id not in tu.dialogs and dialog.state is DialogState.TERMINATED
    assert list(tu.outbox.events) == [
        DialogTerminated(dialog_id=dialog.id, reason="bye_received", rtime=NOW + 5)
    ]


def test_apply_sends_forgets_and_queues_by_kind() -> None:
    """A Transmit goes out, a TransactionTerminated to the listeners, the rest to the events."""
    tu, _ = _core()
    forgotten: list[TransactionKey] = []
    tu.transaction_listeners = (forgotten.append,)
    transmit = Transmit(data=b"OPTIONS", peer=UDP_PEER)
    dropped = MessageDropped(reason="status code 700", peer=UDP_PEER)
    key = ClientKey("z9hG4bK-gone", "BYE")
    tu.apply([transmit, TransactionTerminated(key=key), dropped])
    assert tu.outbox.transmits == [transmit]
    assert forgotten == [key]
    assert list(tu.outbox.events) == [dropped]


def test_a_refresh_below_our_min_se_is_refused_with_422(sip: SipFactory) -> None:
    """negotiate_refresh returns the 422 and its Min-SE instead of answering (RFC 4028 §9)."""
    tu, _ = _core()
    timers = DialogTimers(tu)
    invite = sip.request("INVITE")
    dialog = Dialog.as_uas(invite, sip.response(invite, 200), UDP_PEER)
    update = sip.request("UPDATE", to_tag="tt-1", cseq=2, extra=[("Session-Expires", "30")])
    refused = timers.negotiate_refresh(dialog, update, offer=False)
    assert isinstance(refused, RefreshRefused)
    assert refused.status == 422
    assert ("Min-SE", str(tu.config.min_se)) in refused.headers
