"""The registrar: REGISTER in, an answer and the binding changes out (RFC 3261 §10.3).

Theory of operation
-------------------
:class:`Registrar` is sans-IO: :meth:`Registrar.register` takes the request, the flow it came
on (a :class:`Peer`) and ``now`` and returns a :class:`RegisterAnswer` (status, headers, how
long to hold it, and the :class:`Changed` bindings for the adapter to store). It follows RFC
3261 §10.3 in order:

* Throttle (before any digest work): each AOR has a token bucket per source address; a
  REGISTER past it is answered 503 with Retry-After, so a phone re-registering in a tight loop
  is not served at line rate and costs no hashing, and REGISTERs sent for someone else's AOR
  from elsewhere do not use up that phone's rate.
* Steps 3-4, authentication and authorization: :class:`RegisterDigest`.
* Steps 5-6: To, Contact and Expires read and checked (:func:`read_register`): 400, 423.
* Step 7: the changes are worked out for every contact first and applied only when all are
  acceptable (the RFC asks for atomic processing). A contact whose binding has the same
  Call-ID and a CSeq not higher aborts the request (400, nothing applied). A contact with the
  ``+sip.instance`` and ``reg-id`` of another binding replaces it (RFC 5626 §6).
  More contacts than the account's ``max_contacts`` is refused with 503 "Too Many Registered
  Contacts", as Kamailio's registrar answers: nothing is replaced behind the phone's back.
* Step 8: 200 with every current binding of the AOR and its remaining ``expires``, and the
  Path of the request echoed when the phone supports ``path`` (RFC 3327 §5.3).

Every change goes through the table of :mod:`callserver.registrar.binding`. Expiry is on
time: :meth:`get_timer` gives the earliest deadline and :meth:`handle_timer` removes what is
due. :meth:`flow_closed` marks the bindings of a closed TCP connection unusable (RFC 5626
§4.2); :meth:`lookup` returns only usable, unexpired bindings, highest q first.

Qualify (optional, :meth:`set_qualify` with an interval; 0 is off): every UDP binding is due
an OPTIONS (RFC 3261 §11) each interval, booked by a :class:`QualifySchedule` whose deadlines
:meth:`get_timer` includes. :meth:`qualify_due` names the bindings to probe; the adapter sends
the OPTIONS on each binding's flow (Route from its Path) and brings the outcome back to
:meth:`qualified`. Any response, even 4xx/5xx, shows the phone is there: an ``UNREACHABLE``
binding becomes ``ACTIVE`` again (``QUALIFY_ANSWERED``). Timer F makes an ``ACTIVE`` one
``UNREACHABLE`` (``QUALIFY_TIMED_OUT``), which :meth:`lookup` leaves out; it is still listed
in a 200 (it is a current binding until it expires) and still probed, and a REGISTER that
refreshes it makes it ``ACTIVE`` again. An outcome for a binding a REGISTER wrote again (new
Call-ID or CSeq) since its OPTIONS went out is stale and ignored.

Several nodes (docs/scaling.md "Registrations and settings"): a REGISTER another node took
reaches this one as :meth:`changed_elsewhere`, the binding as it stands there (its ``node``
set) or None when it is gone. It takes the place of this node's copy in the same table the
REGISTERs write, without a transition: the other node already went through its table. Such a
binding expires here on its own deadline, is looked up and unregistered like any other, and
is never qualified here: only the node that received its REGISTER sends it OPTIONS, and its
outcome comes back as another change. A REGISTER here for the same contact makes it this
node's again.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

from callserver.policy.cps import TokenBucket
from callserver.registrar.binding import Binding, BindingChange, BindingState, Changed, next_state
from callserver.registrar.contacts import (
    ContactRequest,
    ExpiryPolicy,
    RegisterRejected,
    RequestedBinding,
    read_register,
)
from callserver.registrar.digest import RegisterDigest
from callserver.registrar.qualify import BindingKey, QualifySchedule
from callserver.sip.message import Request
from callserver.sip.peer import Peer

__all__ = ["RegisterAnswer", "Registrar", "ThrottlePolicy"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlePolicy:
    """REGISTERs per AOR and source: ``rate`` a second, ``burst`` at once; ``max_aors``
    buckets kept (the least recently made goes first)."""

    rate: float = 1.0
    burst: float = 5.0
    max_aors: int = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterAnswer:
    """Answer the REGISTER with ``status`` and ``headers``, held ``delay`` seconds; the
    bindings in ``changes`` changed (for the store)."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    changes: tuple[Changed, ...] = ()


class Registrar:
    """Bindings of addresses-of-record; see the module docstring.

    Args:
        digest: authenticates each REGISTER.
        expiry: the expiry limits.
        throttle: the per-AOR rate of REGISTERs.
    """

    def __init__(
        self,
        digest: RegisterDigest,
        *,
        expiry: ExpiryPolicy | None = None,
        throttle: ThrottlePolicy | None = None,
    ) -> None:
        self.digest = digest
        self.expiry = expiry or ExpiryPolicy()
        self.throttle = throttle or ThrottlePolicy()
        self._aors: dict[str, dict[str, Binding]] = {}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._deadlines: list[tuple[float, str, str]] = []  # (expires, aor, contact), lazy
        self._qualify = QualifySchedule()

    def restore(self, bindings: Iterable[Binding]) -> None:
        """Take back stored bindings (after a restart), before any REGISTER."""
        for binding in bindings:
            self._put(binding)

    def changed_elsewhere(
        self, aor: str, contact: str, binding: Binding | None, now: float
    ) -> None:
        """Another node of the cluster changed ``contact`` of ``aor``: ``binding`` is how it
        stands there now (its deadline on this node's clock), None when it is gone. It
        replaces this node's copy; a binding of another ``node`` is not qualified here, one of
        this node (written by an earlier run of it) is."""
        if binding is None or binding.state is BindingState.ABSENT:
            current = self._aors.get(aor, {}).get(contact)
            if current is not None:
                self._drop(current)
            return
        self._put(binding)
        if binding.node is None and not binding.flow.reliable:
            self._qualify.add((aor, contact), now)
        else:
            self._qualify.discard((aor, contact))

    def register(
        self, request: Request, flow: Peer, now: float, *, source: str | None = None
    ) -> RegisterAnswer:
        """Answer a REGISTER that came on ``flow`` at ``now`` (RFC 3261 §10.3).

        ``source`` is the address the REGISTER's rate and the lockout count it against: the
        phone's own behind a SIP edge (whose address is the flow's); default the flow's.
        """
        try:
            return self._register(request, flow, now, flow.host if source is None else source)
        except RegisterRejected as refused:
            return RegisterAnswer(
                status=refused.status,
                reason=refused.reason,
                headers=refused.headers,
                delay=refused.delay,
            )

    def lookup(self, aor: str, now: float) -> list[Binding]:
        """The usable bindings of ``aor`` at ``now``, highest q first (RFC 3261 §16.6)."""
        usable = [b for b in self._aors.get(aor, {}).values() if b.usable and b.expires > now]
        return sorted(usable, key=lambda b: -(1.0 if b.q is None else b.q))

    def binding_counts(self) -> dict[str, int]:
        """How many bindings each address-of-record holds now (RFC 3261 §10.3)."""
        return {aor: len(bindings) for aor, bindings in self._aors.items()}

    def bindings(self) -> list[Binding]:
        """Every binding held now, unusable and not yet expired ones included, by AOR and
        contact (a snapshot)."""
        return sorted(
            (b for bindings in self._aors.values() for b in bindings.values()),
            key=lambda b: (b.aor, b.contact),
        )

    def unregister(self, aor: str) -> list[Changed]:
        """Remove every binding of ``aor`` now, as ``Expires: 0`` for each would (RFC 3261
        §10.2.2): the phone is no longer reached until it registers again. The operator's
        remedy for a stale or unwanted registration; [] when ``aor`` has none."""
        current = list(self._aors.get(aor, {}).values())
        return [self._apply(binding, BindingChange.REMOVED) for binding in current]

    def flow_closed(self, conn_id: int) -> list[Changed]:
        """The connection ``conn_id`` closed: its bindings become unusable (RFC 5626 §4.2)."""
        changes = []
        for bindings in self._aors.values():
            for binding in list(bindings.values()):
                if binding.flow.conn_id == conn_id and binding.state is BindingState.ACTIVE:
                    changes.append(self._apply(binding, BindingChange.FLOW_CLOSED))
        return changes

    def get_timer(self) -> float | None:
        """The earliest expiry or qualify time, or None (stale entries may make it early,
        never late)."""
        expiry = self._deadlines[0][0] if self._deadlines else None
        return min((d for d in (expiry, self._qualify.deadline()) if d is not None), default=None)

    @property
    def qualify_interval(self) -> float:
        """Seconds between OPTIONS to each UDP binding; 0 when qualify is off."""
        return self._qualify.interval

    def set_qualify(self, interval: float, now: float) -> None:
        """Qualify UDP bindings every ``interval`` seconds from ``now`` on (0: off), those
        held now included (RFC 3261 §11)."""
        self._qualify.configure(interval, self._qualified_keys(), now)

    def qualify_due(self, now: float) -> list[Binding]:
        """The bindings whose OPTIONS is due at ``now`` (RFC 3261 §11), each probed once per
        interval; the outcome goes to :meth:`qualified`."""
        due = []
        for aor, contact in self._qualify.pop_due(now):
            binding = self._aors.get(aor, {}).get(contact)
            if binding is None or _not_ours_to_qualify(binding, now):
                self._qualify.discard((aor, contact))
            else:
                due.append(binding)
        return due

    def qualified(self, probed: Binding, *, answered: bool) -> list[Changed]:
        """The outcome of the OPTIONS sent to ``probed``: ``answered`` (any response) or not
        (Timer F, RFC 3261 §17.1.2.2); the change it makes, if any."""
        key = (probed.aor, probed.contact)
        self._qualify.settled(key)
        current = self._aors.get(probed.aor, {}).get(probed.contact)
        if current is None or (current.call_id, current.cseq) != (probed.call_id, probed.cseq):
            return []  # gone, or written by a REGISTER since the OPTIONS went out
        if answered and current.state is BindingState.UNREACHABLE:
            return [self._apply(current, BindingChange.QUALIFY_ANSWERED)]
        if not answered and current.state is BindingState.ACTIVE:
            return [self._apply(current, BindingChange.QUALIFY_TIMED_OUT)]
        return []

    def handle_timer(self, now: float) -> list[Changed]:
        """Remove every binding whose expiry is due at ``now``."""
        changes = []
        while self._deadlines and self._deadlines[0][0] <= now:
            expires, aor, contact = heapq.heappop(self._deadlines)
            binding = self._aors.get(aor, {}).get(contact)
            if binding is not None and binding.expires == expires:
                changes.append(self._apply(binding, BindingChange.EXPIRED))
        return changes

    def _register(self, request: Request, flow: Peer, now: float, source: str) -> RegisterAnswer:
        asked = read_register(request, self.expiry)
        self._take_token(asked.aor, source, now)
        authorized = self.digest.authorize(request, asked.aor, source, now)
        aor = authorized.account.aor
        planned = self._plan(aor, asked, flow, now)
        current = self._aors.get(aor, {})
        kept = len(current) + sum(
            1 if c is BindingChange.REGISTERED else -1 if c is BindingChange.REMOVED else 0
            for c, _ in planned
        )
        if kept > authorized.account.max_contacts:
            raise RegisterRejected(503, "Too Many Registered Contacts", delay=authorized.delay)
        changes = tuple(self._apply(binding, change) for change, binding in planned)
        for binding in (c.binding for c in changes if c.binding.state is not BindingState.ABSENT):
            if not binding.flow.reliable:  # UDP: its first OPTIONS an interval from now
                self._qualify.add((aor, binding.contact), now)
        return RegisterAnswer(
            status=200,
            reason="OK",
            headers=self._listing(aor, request, now),
            delay=authorized.delay,
            changes=changes,
        )

    def _take_token(self, aor: str, host: str, now: float) -> None:
        """One token of the bucket of ``aor`` asked from ``host``: keyed by both, so that
        REGISTERs sent for someone else's AOR cannot use up the phone's own rate."""
        key = (aor, host)
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.throttle.max_aors:
                self._buckets.pop(next(iter(self._buckets)))
            bucket = self._buckets[key] = TokenBucket(self.throttle.rate, self.throttle.burst)
        if not bucket.take(now):
            retry = max(1, math.ceil(bucket.retry_after(now)))
            raise RegisterRejected(503, "Service Unavailable", (("Retry-After", str(retry)),))

    def _plan(
        self, aor: str, asked: ContactRequest, flow: Peer, now: float
    ) -> list[tuple[BindingChange, Binding]]:
        """Step 7 for every contact, nothing applied yet; raises to abort the request.

        One entry per contact: a contact that is both replaced (RFC 5626 §6) and named in the
        request ends with what the request asks for it.
        """
        current = self._aors.get(aor, {})
        if asked.star:
            for binding in current.values():
                _check_order(binding, asked)
            return [(BindingChange.REMOVED, b) for b in current.values()]
        planned: dict[str, tuple[BindingChange, Binding]] = {}
        for wanted in asked.bindings:
            existing = current.get(wanted.contact)
            if existing is not None:
                _check_order(existing, asked)
            if wanted.expires == 0:
                if existing is not None:
                    planned[wanted.contact] = (BindingChange.REMOVED, existing)
                continue
            for replaced in _same_flow(current, wanted):
                planned.setdefault(replaced.contact, (BindingChange.REMOVED, replaced))
            change = BindingChange.REGISTERED if existing is None else BindingChange.REFRESHED
            planned[wanted.contact] = (change, _binding(aor, wanted, asked, flow, now))
        return list(planned.values())

    def _apply(self, binding: Binding, change: BindingChange) -> Changed:
        current = self._aors.get(binding.aor, {}).get(binding.contact)
        state = next_state(BindingState.ABSENT if current is None else current.state, change)
        after = binding if binding.state is state else replace(binding, state=state)
        if after.state is BindingState.ABSENT:
            self._drop(after)
        else:
            self._put(after)
        return Changed(change=change, binding=after)

    def _put(self, binding: Binding) -> None:
        self._aors.setdefault(binding.aor, {})[binding.contact] = binding
        heapq.heappush(self._deadlines, (binding.expires, binding.aor, binding.contact))

    def _drop(self, binding: Binding) -> None:
        self._qualify.discard((binding.aor, binding.contact))
        bindings = self._aors.get(binding.aor, {})
        bindings.pop(binding.contact, None)
        if not bindings:
            self._aors.pop(binding.aor, None)

    def _qualified_keys(self) -> list[BindingKey]:
        return [
            (b.aor, b.contact)
            for bindings in self._aors.values()
            for b in bindings.values()
            if not b.flow.reliable and b.node is None
        ]

    def _listing(self, aor: str, request: Request, now: float) -> tuple[tuple[str, str], ...]:
        """Step 8: every current binding with its expiry; Path echoed (RFC 3327 §5.3)."""
        headers = []
        for binding in self._aors.get(aor, {}).values():
            q = "" if binding.q is None else f";q={binding.q:g}"
            left = max(0, math.ceil(binding.expires - now))
            headers.append(("Contact", f"<{binding.contact}>;expires={left}{q}"))
        supported = {tag.lower() for tag in request.headers.values("Supported")}
        if "path" in supported:
            headers += [("Path", path) for path in request.headers.values("Path")]
        return tuple(headers)


def _not_ours_to_qualify(binding: Binding, now: float) -> bool:
    """A stream flow's (the connection tells), another node's (that node qualifies it), or
    an expired binding: no OPTIONS from here (RFC 3261 §11)."""
    return binding.flow.reliable or binding.node is not None or binding.expires <= now


def _check_order(binding: Binding, asked: ContactRequest) -> None:
    """RFC 3261 §10.3 step 7: same Call-ID and a CSeq not higher aborts the request."""
    if binding.call_id == asked.call_id and asked.cseq <= binding.cseq:
        raise RegisterRejected(400, "CSeq not higher than the binding's (RFC 3261 §10.3)")


def _same_flow(current: dict[str, Binding], wanted: RequestedBinding) -> list[Binding]:
    """Bindings of the same instance and reg-id under another contact (RFC 5626 §6)."""
    if wanted.instance is None or wanted.reg_id is None:
        return []
    return [
        b
        for b in current.values()
        if (b.instance, b.reg_id) == (wanted.instance, wanted.reg_id)
        and b.contact != wanted.contact
    ]


def _binding(
    aor: str, wanted: RequestedBinding, asked: ContactRequest, flow: Peer, now: float
) -> Binding:
    return Binding(
        aor=aor,
        contact=wanted.contact,
        expires=now + wanted.expires,
        q=wanted.q,
        call_id=asked.call_id,
        cseq=asked.cseq,
        flow=flow,
        path=asked.path,
        instance=wanted.instance,
        reg_id=wanted.reg_id,
        user_agent=asked.user_agent,
    )
