"""The registrar's REGISTER handling with a pinned clock (RFC 3261 §10.3, RFC 3327, RFC 5626)."""

from __future__ import annotations

from callserver.policy.lockout import Lockout, LockoutPolicy
from callserver.registrar.binding import BindingChange, BindingState
from callserver.sip.peer import Peer

from .support import AOR, TCP, UDP, authorization, register, registered, registrar

PHONE = "<sip:201@192.0.2.10:5062>"
DESK = "<sip:201@192.0.2.12:5060>"


def test_register_without_credentials_is_challenged_sha256_first() -> None:
    """A REGISTER without credentials gets 401 with SHA-256 then MD5 challenges."""
    answer = registrar().register(register(), UDP, 100.0)
    assert answer.status == 401 and answer.changes == ()
    algorithms = [value.split("algorithm=")[1].split(",")[0] for _, value in answer.headers]
    assert algorithms == ["SHA-256", "MD5"]
    assert {name for name, _ in answer.headers} == {"WWW-Authenticate"}


def test_a_new_binding_is_listed_with_its_expiry_and_flow() -> None:
    """The 200 lists the contact with its expiry; the binding keeps the flow it came on."""
    reg = registrar()
    answer = registered(reg, 100.0, [PHONE], flow=TCP, extra=[("Expires", "600")])
    assert (answer.status, answer.headers) == (
        200,
        (("Contact", "<sip:201@192.0.2.10:5062>;expires=600"),),
    )
    (changed,) = answer.changes
    assert changed.change is BindingChange.REGISTERED
    assert changed.binding.flow == TCP and changed.binding.expires == 700.0
    assert [b.contact for b in reg.lookup(AOR, 101.0)] == ["sip:201@192.0.2.10:5062"]


def test_md5_credentials_work_too() -> None:
    """An answer to the MD5 challenge registers as well as one to SHA-256."""
    reg = registrar()
    first = reg.register(register(), UDP, 1.0)
    creds = authorization(first.headers, alg="MD5")
    assert reg.register(register(cseq=2, extra=[creds]), UDP, 1.0).status == 200


def test_credentials_naming_the_request_uri_with_a_transport_are_accepted() -> None:
    """A uri that adds ;transport=UDP to the Request-URI names it (pyVoIP writes it so); one
    for another host is 400 and registers nothing."""
    reg = registrar()
    first = reg.register(register(), UDP, 1.0)
    creds = authorization(first.headers, alg="MD5", uri="sip:centrex.example.net;transport=UDP")
    assert reg.register(register(cseq=2, extra=[creds]), UDP, 1.0).status == 200
    other = authorization(first.headers, alg="MD5", uri="sip:other.example.net", nc=2)
    refused = reg.register(register(cseq=3, extra=[other]), UDP, 1.0)
    assert (refused.status, refused.reason) == (400, "Digest uri is not the Request-URI")
    assert refused.changes == ()


def test_wrong_password_unknown_user_and_foreign_aor_get_the_same_403() -> None:
    """No enumeration: a wrong password, an unknown user and another's AOR look alike."""
    answers = [
        registered(registrar(), 1.0, password="wrong"),
        registered(registrar(), 1.0, username="999", password="pw999"),
        registered(registrar(), 1.0, to="<sip:+38733100202@centrex.example.net>"),
    ]
    assert {(a.status, a.reason, a.headers, a.changes) for a in answers} == {
        (403, "Forbidden", (), ())
    }


def test_failures_count_toward_the_lockout() -> None:
    """Past refuse_after failures the source is refused without its credentials being read."""
    lockout = Lockout(LockoutPolicy(slow_after=1, refuse_after=2, penalty=60.0, delay=2.0))
    reg = registrar(lockout=lockout)
    assert registered(reg, 1.0, password="x").delay == 0.0
    second = registered(reg, 2.0, password="y")
    assert (second.status, second.delay) == (403, 2.0)
    blocked = reg.register(register(), UDP, 3.0)
    assert blocked.status == 403 and lockout.statistics().refused == {"source": 1}


def test_several_contacts_refresh_and_q_order() -> None:
    """Two contacts with q are looked up highest q first; a refresh renews the expiry."""
    reg = registrar()
    registered(reg, 10.0, [f"{PHONE};q=0.2", f"{DESK};q=0.9"])
    assert [b.q for b in reg.lookup(AOR, 11.0)] == [0.9, 0.2]
    again = registered(reg, 50.0, [f"{PHONE};q=0.2"], cseq=3)
    assert [c.change for c in again.changes] == [BindingChange.REFRESHED]
    assert sorted(h[1] for h in again.headers) == [
        "<sip:201@192.0.2.10:5062>;expires=3600;q=0.2",
        "<sip:201@192.0.2.12:5060>;expires=3560;q=0.9",
    ]


def test_removal_by_expires_zero_and_by_star() -> None:
    """Expires: 0 removes one contact; '*' with Expires: 0 removes the rest."""
    reg = registrar()
    registered(reg, 10.0, [PHONE, DESK])
    one = registered(reg, 20.0, [f"{PHONE};expires=0"], cseq=3)
    assert [c.change for c in one.changes] == [BindingChange.REMOVED]
    assert one.changes[0].binding.state is BindingState.ABSENT
    rest = registered(reg, 30.0, ["*"], cseq=5, extra=[("Expires", "0")])
    assert (rest.status, rest.headers, len(rest.changes)) == (200, (), 1)
    assert reg.lookup(AOR, 31.0) == []


def test_same_call_id_with_a_lower_cseq_is_not_applied() -> None:
    """RFC 3261 §10.3 step 7: an old CSeq of the same Call-ID aborts the whole request."""
    reg = registrar()
    registered(reg, 10.0, [PHONE], cseq=10)
    late = registered(reg, 20.0, [PHONE, DESK], cseq=5, extra=[("Expires", "0")])
    assert late.status == 400 and late.changes == ()
    assert len(reg.lookup(AOR, 21.0)) == 1
    other = registered(reg, 20.0, [f"{PHONE};expires=0"], cseq=1, call_id="reboot@192.0.2.10")
    assert other.status == 200 and reg.lookup(AOR, 21.0) == []


def test_max_contacts_is_refused_with_503_and_nothing_changes() -> None:
    """A fourth contact of an account allowing three is 503 Too Many Registered Contacts."""
    reg = registrar()
    contacts = [f"<sip:201@192.0.2.{n}>" for n in range(20, 24)]
    answer = registered(reg, 1.0, contacts)
    assert (answer.status, answer.reason) == (503, "Too Many Registered Contacts")
    assert reg.lookup(AOR, 2.0) == []


def test_expired_bindings_are_removed_on_time() -> None:
    """get_timer gives the expiry and handle_timer removes the binding when it is due."""
    reg = registrar()
    registered(reg, 100.0, [PHONE], extra=[("Expires", "60")])
    assert reg.get_timer() == 160.0
    assert reg.handle_timer(159.9) == []
    (expired,) = reg.handle_timer(160.0)
    assert expired.change is BindingChange.EXPIRED and reg.lookup(AOR, 160.0) == []


def test_a_refresh_moves_the_expiry_and_the_old_deadline_does_nothing() -> None:
    """After a refresh, the first deadline fires without removing the renewed binding."""
    reg = registrar()
    registered(reg, 100.0, [PHONE], extra=[("Expires", "60")])
    registered(reg, 150.0, [PHONE], cseq=3, extra=[("Expires", "60")])
    assert reg.handle_timer(160.0) == []
    assert [c.change for c in reg.handle_timer(210.0)] == [BindingChange.EXPIRED]


def test_a_closed_tcp_flow_makes_its_binding_unusable_until_it_registers_again() -> None:
    """RFC 5626 §4.2: a binding whose connection closed is not looked up; a refresh revives it."""
    reg = registrar()
    registered(reg, 1.0, [PHONE], flow=TCP)
    (closed,) = reg.flow_closed(TCP.conn_id or 0)
    assert closed.binding.state is BindingState.FLOW_CLOSED and reg.lookup(AOR, 2.0) == []
    new_flow = Peer("tcp", "192.0.2.11", 40313, conn_id=8)
    registered(reg, 3.0, [PHONE], flow=new_flow, cseq=3)
    assert [b.flow for b in reg.lookup(AOR, 4.0)] == [new_flow]


def test_same_instance_and_reg_id_replaces_the_old_contact() -> None:
    """RFC 5626 §6: a new contact of the same instance and reg-id replaces the old one."""
    reg = registrar()
    instance = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1'
    registered(reg, 1.0, [PHONE + instance])
    moved = registered(reg, 2.0, [DESK + instance], cseq=3)
    assert [c.change for c in moved.changes] == [BindingChange.REMOVED, BindingChange.REGISTERED]
    assert [b.contact for b in reg.lookup(AOR, 3.0)] == ["sip:201@192.0.2.12:5060"]


def test_path_is_stored_and_echoed_when_supported() -> None:
    """RFC 3327 §5.3: the Path is kept with the binding and echoed to a UA supporting path."""
    reg = registrar()
    path = ("Path", "<sip:edge.example.net;lr>")
    answer = registered(reg, 1.0, [PHONE], extra=[path, ("Supported", "path")])
    assert ("Path", "<sip:edge.example.net;lr>") in answer.headers
    assert reg.lookup(AOR, 2.0)[0].path == ("<sip:edge.example.net;lr>",)
    quiet = registered(registrar(), 1.0, [PHONE], extra=[path])
    assert all(name != "Path" for name, _ in quiet.headers)


def test_a_query_lists_the_bindings_without_changing_them() -> None:
    """A REGISTER without Contact returns the current bindings (RFC 3261 §10.2.3)."""
    reg = registrar()
    registered(reg, 1.0, [PHONE])
    query = registered(reg, 11.0, [], cseq=3)
    assert query.changes == () and query.headers[0][1].endswith("expires=3590")


def test_a_tight_loop_of_registers_is_throttled_before_any_digest_work() -> None:
    """Past the burst of its AOR and source a REGISTER gets 503 with Retry-After and no
    challenge; another source still gets its challenge."""
    reg = registrar(burst=2.0)
    assert [reg.register(register(), UDP, 5.0).status for _ in range(3)] == [401, 401, 503]
    assert reg.register(register(), UDP, 5.0).headers == (("Retry-After", "1"),)
    assert reg.register(register(), UDP, 6.5).status == 401
    elsewhere = Peer("udp", "198.51.100.7", 5060)
    assert reg.register(register(), elsewhere, 6.5).status == 401


def test_behind_an_edge_the_rate_and_lockout_count_the_phone_not_the_flow() -> None:
    """With ``source`` (the phone's address the SIP edge names) the REGISTER rate and the
    lockout count that address: phones behind one edge do not share a bucket or a penalty,
    and the binding's flow is still the edge."""
    lockout = Lockout(LockoutPolicy(slow_after=1, refuse_after=1, penalty=60.0, delay=0.0))
    reg = registrar(burst=2.0, lockout=lockout)
    edge = Peer("udp", "192.0.2.99", 5060)
    first = [reg.register(register(), edge, 5.0, source="198.51.100.1").status for _ in range(3)]
    assert first == [401, 401, 503]
    assert reg.register(register(), edge, 5.0, source="198.51.100.2").status == 401
    assert registered(reg, 9.0, password="x", flow=edge, source="198.51.100.3").status == 403
    blocked = reg.register(register(), edge, 10.0, source="198.51.100.3")
    assert blocked.status == 403 and lockout.statistics().refused == {"source": 1}
    answer = registered(registrar(), 10.0, [PHONE], flow=edge, source="198.51.100.4")
    assert answer.status == 200 and answer.changes[0].binding.flow == edge


def test_a_replaced_contact_also_removed_by_name_is_removed_once() -> None:
    """A contact replaced by instance and reg-id and also sent with expires=0 changes once."""
    reg = registrar()
    instance = ';+sip.instance="<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";reg-id=1'
    registered(reg, 1.0, [PHONE + instance])
    both = registered(reg, 2.0, [DESK + instance, f"{PHONE}{instance};expires=0"], cseq=3)
    assert both.status == 200
    assert [c.change for c in both.changes] == [BindingChange.REMOVED, BindingChange.REGISTERED]
    assert [b.contact for b in reg.lookup(AOR, 3.0)] == ["sip:201@192.0.2.12:5060"]


def test_unregister_removes_every_binding_of_the_address_at_once() -> None:
    """unregister removes each contact of the AOR (REMOVED, ABSENT) and nothing of another;
    bindings lists what is left, an unknown address changes nothing."""
    reg = registrar()
    registered(reg, 10.0, [PHONE, DESK], extra=[("User-Agent", "Yealink T46U")])
    other = registered(
        reg, 10.0, to="<sip:+38733100202@centrex.example.net>", username="202", password="pw202"
    )
    assert other.status == 200
    assert [b.user_agent for b in reg.bindings()] == ["Yealink T46U", "Yealink T46U", None]
    changes = reg.unregister(AOR)
    assert [c.change for c in changes] == [BindingChange.REMOVED] * 2
    assert {c.binding.state for c in changes} == {BindingState.ABSENT}
    assert reg.lookup(AOR, 11.0) == []
    assert [b.aor for b in reg.bindings()] == ["+38733100202"]
    assert reg.unregister(AOR) == []
