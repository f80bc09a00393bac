"""The registrar's bindings shared by every node: a ``BindingStore`` on the shared mirror.

Theory of operation
-------------------
:class:`RedisBindingStore` takes the place of ``registrar.store.SqliteBindingStore`` when
``cluster.redis`` is set (``load``, ``apply``, ``close``; the registrar stays sans-IO and its
adapter, ``calls.registration``, unchanged but for where changes from elsewhere go). Each
address-of-record is the hash ``cs:bindings:<aor>``, each contact a field of it, its record
the binding with its expiry on the wall clock (``x``), as the SQLite store keeps it
(:mod:`callserver.cluster.mirror`, :mod:`callserver.cluster.records`). The binding is a JSON
array, ``[q, call_id, cseq, transport, host, port, path, instance, reg_id, user_agent,
state]`` (an array, not an object: the mirror keeps the latest of each of this node's own, and
an array holds a third of the memory):

* ``apply`` (the adapter's writer thread) turns a registered, refreshed, qualified or closed
  binding into its record and a removal into a tombstone, and hands them to the mirror on the
  loop. An expiry is not written: every node expires its copy on its own clock, and Redis drops
  the record by its ``x``.
* Other nodes' changes reach :meth:`calls.registration.Registration.changed_elsewhere`
  (attached with :meth:`RedisBindingStore.attach`), which puts them in the registrar
  (``Registrar.changed_elsewhere``).
* ``load`` gives the bindings read at :meth:`RedisBindingStore.open`, before the registrar
  starts; bindings this node wrote in an earlier run are its own again (over TCP they load
  ``FLOW_CLOSED``, their connection gone with the process, as from SQLite).

**Flows.** A binding's flow is where its REGISTER came from, which only the node that took it
can use as such. A binding of another node is held here:

* with a Path (RFC 3327, the REGISTER came through the edge): reached through the Path, its
  first hop as the address to send to (the edge, which forwards on the phone's flow), the Path
  as the Route set: usable on every node;
* over UDP without a Path: sent to the phone's address from this node (a phone on a network
  that reaches every node; behind NAT only the node it registered with gets through);
* over TCP or TLS without a Path: ``FLOW_CLOSED`` here, never used: the connection belongs to
  the node that holds it (RFC 5626 §5.3). Phones reach a cluster through the edge.

Only the node that took the REGISTER qualifies a binding (OPTIONS, RFC 3261 §11); its outcome
(``UNREACHABLE``, ``ACTIVE`` again) is a change every node gets.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import replace

from callserver.cluster.mirrored import MirroredStore
from callserver.cluster.records import Change, Entry
from callserver.registrar.binding import Binding, BindingChange, BindingState, Changed
from callserver.sip.errors import SipParseError
from callserver.sip.headers import parse_address
from callserver.sip.peer import Peer
from callserver.sip.uri import SipUri

__all__ = [
    "GATHER_INTERVAL",
    "KIND",
    "RedisBindingStore",
    "binding_of",
    "change_of",
    "recorded_flow",
]

KIND = "bindings"
GATHER_INTERVAL = 0.005  # s: REGISTER changes gathered before they are handed over
_DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}

ChangedElsewhere = Callable[[str, str, Binding | None], None]


class RedisBindingStore(MirroredStore[ChangedElsewhere]):
    """Bindings in Redis, shared by the nodes; see the module docstring (and
    :class:`callserver.cluster.mirrored.MirroredStore` for its arguments)."""

    kind = KIND

    def load(self, now: float) -> list[Binding]:
        """The bindings read by :meth:`open`, their deadlines on the clock of ``now``."""
        offset = now - self._wall()
        loaded = self._take_loaded()
        return [b for e in loaded if (b := binding_of(e, offset, self._node)) is not None]

    def apply(self, changes: Sequence[Changed], now: float) -> None:
        """Hand ``changes`` (made at ``now``) to the mirror, in order; any thread."""
        offset = self._wall() - now
        written = [c for changed in changes if (c := change_of(changed, offset)) is not None]
        expired = [
            (c.binding.aor, c.binding.contact) for c in changes if c.change is BindingChange.EXPIRED
        ]
        self._loop.call_soon_threadsafe(self._hand_over, written, expired)

    def _hand_over(self, written: list[Change], expired: list[tuple[str, str]]) -> None:
        self.mirror.forget(expired)
        if written:
            self.mirror.write(written)

    def _received(self, entry: Entry) -> None:
        if self._changed is None:
            return
        binding = binding_of(entry, self._loop.time() - self._wall(), self._node)
        self._changed(entry.key, entry.field, binding)


def change_of(changed: Changed, offset: float) -> Change | None:
    """The mirror's change for a binding's (``offset``: wall minus the registrar's clock);
    None for an expiry (each node expires its own copy)."""
    b = changed.binding
    expires = b.expires + offset
    if changed.change is BindingChange.EXPIRED:
        return None
    if changed.change is BindingChange.REMOVED:
        return Change(key=b.aor, field=b.contact, gone=True, expires=expires)
    flow = b.flow
    value = (
        *(b.q, b.call_id, b.cseq, flow.transport, flow.host, flow.port, b.path),
        *(b.instance, b.reg_id, b.user_agent, b.state.value),
    )
    return Change(key=b.aor, field=b.contact, value=value, expires=expires)


def binding_of(entry: Entry, offset: float, here: str) -> Binding | None:
    """The binding an entry holds, its deadline on the clock ``offset`` from the wall's, as
    node ``here`` uses it (see "Flows"); None for a removal or a record it cannot read."""
    if entry.gone or entry.expires is None or not isinstance(entry.value, list | tuple):
        return None
    try:
        q, call_id, cseq, transport, host, port, path, instance, reg_id, agent, state = entry.value
        flow = Peer(str(transport), str(host), int(port))
        binding = Binding(
            aor=entry.key,
            contact=entry.field,
            expires=entry.expires + offset,
            q=None if q is None else float(q),
            call_id=str(call_id),
            cseq=int(cseq),
            flow=flow,
            path=tuple(str(hop) for hop in path),
            instance=None if instance is None else str(instance),
            reg_id=None if reg_id is None else int(reg_id),
            state=BindingState(state),
            user_agent=None if agent is None else str(agent),
            node=None if entry.node == here else entry.node,
        )
    except (TypeError, ValueError):
        return None
    if binding.node is None:  # an earlier run of this node took it
        return replace(binding, state=BindingState.FLOW_CLOSED) if flow.reliable else binding
    return _reached_from_here(binding)


def recorded_flow(entry: Entry) -> Peer | None:
    """The flow an entry's REGISTER came on, as the node that took it recorded it."""
    if entry.gone or not isinstance(entry.value, list | tuple) or len(entry.value) < 6:
        return None
    try:
        return Peer(str(entry.value[3]), str(entry.value[4]), int(entry.value[5]))
    except (TypeError, ValueError):
        return None


def _reached_from_here(binding: Binding) -> Binding:
    """Another node's binding as this node reaches it: through its Path's first hop, else
    directly over UDP, else not at all (a stream the other node holds)."""
    hop = _first_hop(binding.path)
    if hop is not None:
        return replace(binding, flow=hop)
    if binding.flow.reliable and binding.state is not BindingState.FLOW_CLOSED:
        return replace(binding, state=BindingState.FLOW_CLOSED)
    return binding


def _first_hop(path: tuple[str, ...]) -> Peer | None:
    """Where the first Path entry is, when it names an IP address (RFC 3327 §5.3: the Path is
    the Route set of requests to the contact; a name would need a DNS lookup: not taken)."""
    if not path:
        return None
    try:
        uri = parse_address(path[0]).uri
    except SipParseError:
        return None
    if not isinstance(uri, SipUri):
        return None
    host = uri.host.strip("[]")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return None
    transport = uri.transport or ("tls" if uri.scheme == "sips" else "udp")
    return Peer(transport, host, uri.port or _DEFAULT_PORTS.get(transport, 5060))
