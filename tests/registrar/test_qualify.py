"""OPTIONS qualify of UDP bindings with a pinned clock: the schedule and the registrar's side
(RFC 3261 §11, §17.1.2.2)."""

from __future__ import annotations

from callserver.registrar.binding import BindingChange, BindingState
from callserver.registrar.qualify import QualifySchedule
from callserver.registrar.registrar import Registrar

from .support import AOR, TCP, UDP, register, registered, registrar

PHONE = "<sip:201@192.0.2.10:5062>"
DESK = "<sip:201@192.0.2.12:5060>"
KEY = (AOR, "sip:201@192.0.2.10:5062")


def test_a_key_is_due_one_interval_after_it_is_added_then_every_interval() -> None:
    """The first OPTIONS is due an interval after add(), and each pop books the next one."""
    schedule = QualifySchedule()
    schedule.configure(30.0, [], 100.0)
    schedule.add(KEY, 100.0)
    assert schedule.deadline() == 130.0
    assert schedule.pop_due(129.9) == []
    assert schedule.pop_due(130.0) == [KEY]
    schedule.settled(KEY)
    assert schedule.deadline() == 160.0
    assert schedule.pop_due(160.0) == [KEY]


def test_a_key_in_flight_is_skipped_until_its_outcome_arrives() -> None:
    """A key still waiting for its outcome when due again is not probed twice."""
    schedule = QualifySchedule()
    schedule.configure(10.0, [KEY], 0.0)
    assert schedule.pop_due(10.0) == [KEY]
    assert schedule.pop_due(20.0) == []
    schedule.settled(KEY)
    assert schedule.pop_due(30.0) == [KEY]


def test_adding_a_booked_key_keeps_its_time_and_discard_forgets_it() -> None:
    """add() of a booked key changes nothing; a discarded key is never due."""
    schedule = QualifySchedule()
    schedule.configure(10.0, [KEY], 0.0)
    schedule.add(KEY, 5.0)
    assert schedule.pop_due(10.0) == [KEY]
    schedule.discard(KEY)
    assert schedule.pop_due(100.0) == [] and schedule.deadline() is None


def test_keys_held_when_qualify_starts_are_spread_over_the_first_interval() -> None:
    """Three bindings already there when qualify is turned on are due 10, 20 and 30 s later."""
    keys = [(AOR, f"sip:201@192.0.2.{n}") for n in (1, 2, 3)]
    schedule = QualifySchedule()
    schedule.configure(30.0, keys, 100.0)
    assert [schedule.pop_due(at) for at in (110.0, 120.0, 130.0)] == [[k] for k in keys]


def test_interval_zero_is_off_and_forgets_every_booking() -> None:
    """With interval 0 nothing is booked; turning it off drops what was booked."""
    schedule = QualifySchedule()
    schedule.add(KEY, 0.0)
    assert schedule.deadline() is None
    schedule.configure(10.0, [KEY], 0.0)
    schedule.configure(0.0, [KEY], 1.0)
    assert schedule.deadline() is None and schedule.pop_due(100.0) == []


def qualifying(now: float = 100.0) -> Registrar:
    """A registrar qualifying every 30 s, with the phone registered over UDP at ``now``."""
    reg = registrar()
    reg.set_qualify(30.0, now)
    assert registered(reg, now, [PHONE], extra=[("Expires", "600")]).status == 200
    return reg


def test_qualify_is_off_by_default() -> None:
    """Without set_qualify only the expiry is on the timer and nothing is ever due."""
    reg = registrar()
    registered(reg, 100.0, [PHONE], extra=[("Expires", "600")])
    assert reg.qualify_interval == 0.0 and reg.get_timer() == 700.0
    assert reg.qualify_due(650.0) == []


def test_a_udp_binding_is_due_every_interval_and_a_tcp_one_never() -> None:
    """get_timer includes the qualify time; only the UDP binding is named when due."""
    reg = qualifying()
    registered(reg, 100.0, [DESK], flow=TCP, cseq=3, extra=[("Expires", "600")])
    assert reg.get_timer() == 130.0
    (due,) = reg.qualify_due(130.0)
    assert (due.contact, due.flow) == ("sip:201@192.0.2.10:5062", UDP)
    assert reg.qualified(due, answered=True) == []
    assert [b.contact for b in reg.qualify_due(160.0)] == [due.contact]


def test_a_timeout_makes_the_binding_unreachable_and_an_answer_brings_it_back() -> None:
    """Timer F: UNREACHABLE, out of lookups but still listed; the next answer: ACTIVE again."""
    reg = qualifying()
    (probed,) = reg.qualify_due(130.0)
    (lost,) = reg.qualified(probed, answered=False)
    assert lost.change is BindingChange.QUALIFY_TIMED_OUT
    assert lost.binding.state is BindingState.UNREACHABLE and reg.lookup(AOR, 131.0) == []
    query = registered(reg, 131.0, [], cseq=3)
    assert [v for n, v in query.headers if n == "Contact"] == [f"{PHONE};expires=569"]
    (probed,) = reg.qualify_due(160.0)
    (back,) = reg.qualified(probed, answered=True)
    assert back.change is BindingChange.QUALIFY_ANSWERED
    assert [b.state for b in reg.lookup(AOR, 161.0)] == [BindingState.ACTIVE]


def test_a_refresh_makes_an_unreachable_binding_active_and_a_stale_outcome_is_ignored() -> None:
    """Registering again revives the binding; Timer F of an earlier OPTIONS changes nothing."""
    reg = qualifying()
    (first,) = reg.qualify_due(130.0)
    reg.qualified(first, answered=False)
    (second,) = reg.qualify_due(160.0)
    again = registered(reg, 170.0, [PHONE], cseq=3, extra=[("Expires", "600")])
    assert [c.change for c in again.changes] == [BindingChange.REFRESHED]
    assert again.changes[0].binding.state is BindingState.ACTIVE
    assert reg.qualified(second, answered=False) == []
    assert len(reg.lookup(AOR, 171.0)) == 1


def test_a_removed_binding_is_not_probed_and_its_outcome_is_ignored() -> None:
    """After Expires: 0 no OPTIONS is due, and the outcome of one in flight changes nothing."""
    reg = qualifying()
    (probed,) = reg.qualify_due(130.0)
    removed = registered(reg, 140.0, [f"{PHONE};expires=0"], cseq=3)
    assert [c.change for c in removed.changes] == [BindingChange.REMOVED]
    assert reg.qualified(probed, answered=False) == []
    assert reg.qualify_due(1000.0) == [] and reg.handle_timer(1000.0) == []


def test_an_expired_binding_is_not_probed_any_more() -> None:
    """Once its expiry removed it, a UDP binding is never due again."""
    reg = qualifying()
    assert [c.change for c in reg.handle_timer(700.0)] == [BindingChange.EXPIRED]
    assert reg.qualify_due(730.0) == []


def test_bindings_held_when_qualify_is_turned_on_are_probed_too() -> None:
    """set_qualify books the UDP bindings already there (restored ones, or before a reload)."""
    reg = registrar()
    registered(reg, 100.0, [PHONE], extra=[("Expires", "600")])
    reg.set_qualify(20.0, 200.0)
    assert reg.get_timer() == 220.0
    assert [b.contact for b in reg.qualify_due(220.0)] == ["sip:201@192.0.2.10:5062"]
    reg.set_qualify(0.0, 230.0)
    assert reg.get_timer() == 700.0


def test_an_unanswered_request_does_not_book_anything() -> None:
    """A REGISTER refused with 401 makes no binding, so nothing is due."""
    reg = registrar()
    reg.set_qualify(30.0, 0.0)
    assert reg.register(register(), UDP, 0.0).status == 401
    assert reg.get_timer() is None
