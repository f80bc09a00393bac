"""Bindings another node of a cluster changed (``Registrar.changed_elsewhere``): they replace
this node's copy, are looked up and expire like any other, are not qualified here, and a
REGISTER here makes them this node's again."""

from __future__ import annotations

from callserver.registrar.binding import Binding, BindingState
from callserver.sip.peer import Peer

from .support import AOR, UDP, registered, registrar

EDGE = Peer("udp", "192.0.2.50", 5070)
CONTACT = "sip:201@192.0.2.10:5062"


def _theirs(
    *,
    cseq: int = 2,
    state: BindingState = BindingState.ACTIVE,
    node: str | None = "b",
    flow: Peer = EDGE,
) -> Binding:
    """Node ``node``'s binding of CONTACT (default: b's, reached through the edge), until
    3600."""
    return Binding(
        aor=AOR,
        contact=CONTACT,
        expires=3600.0,
        q=None,
        call_id="reg-1@192.0.2.10",
        cseq=cseq,
        flow=flow,
        path=("<sip:192.0.2.50:5070;lr>",),
        state=state,
        node=node,
    )


def test_another_nodes_binding_is_looked_up_and_expires_but_is_not_qualified() -> None:
    """Node b's binding is in force here and expires on its deadline; no OPTIONS from here;
    its removal elsewhere removes it here."""
    reg = registrar()
    reg.set_qualify(30.0, 0.0)
    reg.changed_elsewhere(AOR, CONTACT, _theirs(), 1.0)
    assert [b.flow for b in reg.lookup(AOR, 2.0)] == [EDGE]
    assert reg.qualify_due(100.0) == []
    reg.changed_elsewhere(AOR, CONTACT, _theirs(state=BindingState.UNREACHABLE), 3.0)
    assert reg.lookup(AOR, 4.0) == [] and len(reg.bindings()) == 1
    reg.changed_elsewhere(AOR, CONTACT, None, 5.0)
    assert reg.bindings() == [] and reg.get_timer() is not None  # a stale deadline, lazily
    reg.changed_elsewhere(AOR, CONTACT, _theirs(), 6.0)
    assert [c.change.value for c in reg.handle_timer(3600.0)] == ["expired"]


def test_a_register_here_makes_the_binding_this_nodes_and_qualified() -> None:
    """A REGISTER here for a contact held as b's replaces it (REFRESHED, node None) and books
    its OPTIONS; an older CSeq of the same Call-ID than b's is refused, as the RFC orders."""
    reg = registrar()
    reg.set_qualify(30.0, 0.0)
    reg.changed_elsewhere(AOR, CONTACT, _theirs(cseq=5), 1.0)
    stale = registered(reg, 2.0, [f"<{CONTACT}>"], cseq=3)
    assert stale.status == 400
    answer = registered(reg, 2.0, [f"<{CONTACT}>"], cseq=7)
    assert [c.change.value for c in answer.changes] == ["refreshed"]
    (binding,) = reg.lookup(AOR, 3.0)
    assert binding.node is None and binding.flow == UDP
    assert [b.contact for b in reg.qualify_due(32.1)] == [CONTACT]


def test_this_nodes_own_binding_read_back_is_qualified_here() -> None:
    """A binding an earlier run of this node took (node None), read back after an outage, is
    qualified here again."""
    reg = registrar()
    reg.set_qualify(30.0, 0.0)
    reg.changed_elsewhere(AOR, CONTACT, _theirs(node=None, flow=UDP), 1.0)
    assert [b.contact for b in reg.qualify_due(31.0)] == [CONTACT]
