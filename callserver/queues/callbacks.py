"""Callback requests: a waiting caller's place kept with no live call, offered like a caller.

Theory of operation
-------------------
A waiting caller who presses the queue's callback key asks to be called back
(:meth:`Callbacks.request_callback`): its rings are cancelled, its live wait ends
(``CallbackRequested``) and its entry stays where it was in the queue, now with a
``CallbackTarget`` (the number to call) and no maximum wait. The entry is offered to the agents
in turn like any caller (``Offer.callback`` tells the adapter it is a request); an abandon,
leave or timeout does not apply to it.

When an agent answers the request's ring (``Ringing.answered``) the entry leaves the queue
(``CallbackDialled``, attempt n) and the agent is in a call: the adapter calls the number. Then:

- the number answered (:meth:`Callbacks.callback_answered`): ``CallbackAnswered``; the request
  is done, the agent's call ends as any queue call (``call_ended``);
- it did not (:meth:`Callbacks.callback_failed`: busy, no answer, barred ...):
  ``CallbackFailed``; the entry goes back to its place and is offered again no sooner than the
  queue's ``callback_retry`` seconds later, or, after ``callback_attempts`` calls (or at once
  when trying again is pointless: ``again=False``), it is dropped (``CallbackDropped``).

What a restart must not lose is :meth:`Callbacks.stored_callback` (the adapter writes it when
a request is made or fails, and deletes it when it is answered or dropped);
:meth:`Callbacks.restore_callback` puts it back in its queue, its wait going on from the
stored time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callserver.queues.events import (
    CallbackAnswered,
    CallbackDropped,
    CallbackFailed,
    CallbackRequested,
)
from callserver.queues.queue import CallbackTarget, Caller, Queue, QueueConfig
from callserver.queues.ringing import Ringing

__all__ = ["Callbacks", "StoredCallback"]


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCallback:
    """A callback request as it survives a restart: the caller's id, its queue's settings,
    whom to call, its priority and skills, when the caller joined (UTC) and the calls made."""

    caller: str
    config: QueueConfig
    target: CallbackTarget
    priority: int
    skills: frozenset[str]
    joined_at: datetime
    attempts: int


class Callbacks(Ringing):
    """Callback requests (module docstring); the base of ``CallCentre``."""

    def request_callback(
        self, caller: str, target: CallbackTarget, now: float, at: datetime
    ) -> bool:
        """The waiting ``caller`` asks to be called back at ``target``; False when it is not
        waiting (or is a request already)."""
        q = self._callers.get(caller)
        if q is None or q.callers[caller].callback is not None:
            return False
        entry = q.callers[caller]
        self._cancel_rings(entry, q, "callback", now, at)
        entry.callback, entry.deadline = target, None  # a request has no maximum wait
        self._events.append(
            CallbackRequested(
                queue=q.config.name,
                customer=q.config.customer,
                caller=caller,
                now=now,
                at=at,
                number=target.number,
                wait=now - entry.joined,
                position=q.position(entry),
            )
        )
        return True

    def callback_answered(self, agent: str, now: float, at: datetime) -> bool:
        """The number ``agent``'s request called answered; False when ``agent`` calls none."""
        dialled = self._dialling.pop(agent, None)
        if dialled is None:
            return False
        q, entry = dialled
        assert entry.callback is not None
        self._events.append(
            CallbackAnswered(
                queue=q.config.name,
                customer=q.config.customer,
                caller=entry.id,
                now=now,
                at=at,
                agent=agent,
                number=entry.callback.number,
                wait=now - entry.joined,
            )
        )
        return True

    def callback_failed(
        self, agent: str, reason: str, now: float, at: datetime, *, again: bool = True
    ) -> bool:
        """The number ``agent``'s request called did not answer (``reason``): the request
        waits again in its place, or is dropped (module docstring). False when ``agent``
        calls none. The agent's call still ends by ``call_ended``."""
        dialled = self._dialling.pop(agent, None)
        if dialled is None:
            return False
        q, entry = dialled
        target = entry.callback
        assert target is not None
        named = {"queue": q.config.name, "customer": q.config.customer, "caller": entry.id}
        self._events.append(
            CallbackFailed(
                **named,
                now=now,
                at=at,
                agent=agent,
                number=target.number,
                attempt=entry.attempts,
                reason=reason,
            )
        )
        if again and entry.attempts < q.config.callback_attempts:
            entry.tried.clear()
            entry.not_before = now + q.config.callback_retry
            q.add(entry)
            self._callers[entry.id] = q
            self._arm(entry.not_before, "retry", entry.id)
            return True
        self._events.append(
            CallbackDropped(
                **named,
                now=now,
                at=at,
                number=target.number,
                attempts=entry.attempts,
                wait=now - entry.joined,
                reason=reason if not again else "attempts",
            )
        )
        return True

    def stored_callback(self, caller: str) -> StoredCallback | None:
        """What a restart needs of ``caller``'s request (waiting or being called), None when
        it is no request."""
        q = self._callers.get(caller)
        entry = None if q is None else q.callers[caller]
        if entry is None:
            found = [pair for pair in self._dialling.values() if pair[1].id == caller]
            q, entry = found[0] if found else (None, None)
        if q is None or entry is None or entry.callback is None:
            return None
        return StoredCallback(
            caller=entry.id,
            config=q.config,
            target=entry.callback,
            priority=entry.priority,
            skills=entry.skills,
            joined_at=entry.joined_at,
            attempts=entry.attempts,
        )

    def restore_callback(self, stored: StoredCallback, now: float, at: datetime) -> None:
        """Put a stored request back in its queue (defined: ``config_of``), behind the
        entries already there of its priority; its wait goes on from ``joined_at``.

        Raises:
            LookupError: its queue is not defined.
            ValueError: the caller is waiting already.
        """
        q = self._queues.get(stored.config.key)
        if q is None:
            raise LookupError(f"no queue {stored.config.name!r} of {stored.config.customer!r}")
        if stored.caller in self._callers:
            raise ValueError(f"caller {stored.caller} is already waiting in a queue")
        joined = now - (at - stored.joined_at).total_seconds()
        key = (-stored.priority, next(self._sequence))
        entry = Caller(stored.caller, stored.priority, stored.skills, key, joined, stored.joined_at)
        entry.callback, entry.attempts, entry.not_before = stored.target, stored.attempts, now
        q.add(entry)
        self._callers[entry.id] = q

    def config_of(self, key: tuple[str, str]) -> QueueConfig | None:
        """The settings of queue ``(customer, name)``, None when it is not defined."""
        q: Queue | None = self._queues.get(key)
        return None if q is None else q.config
