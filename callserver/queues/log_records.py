"""The call centre's events as lines of the queue event log (``records.QueueLogRecord``).

Theory of operation
-------------------
:func:`log_records` turns one event drained from ``CallCentre`` into the log lines it means
(none, one or two), so what the statistics replay is what the centre decided:

================================  =============================================================
centre event                      log lines
================================  =============================================================
``CallerJoined``                  ``join`` (position, the caller's number)
``CallerRefused``                 ``full`` or ``no_agents``
``AgentRung``                     ``ring``
``RingNoAnswer``                  ``ring_noanswer`` (the reason: ``timeout`` or the phone's)
``RingCancelled``                 ``ring_cancelled`` (the reason: ``answered_elsewhere``,
                                  ``abandon``, ``leave``, ``timeout``)
``CallerAnswered``                ``answer`` (wait, position)
``CallerAbandoned``               ``abandon``; ``CallerLeft`` ``leave``; ``CallerTimedOut``
                                  ``timeout`` (each with wait and position)
``QueueCallEnded``                ``call_end``
``CallbackRequested``             ``callback_requested`` (wait, position; ``caller`` the number)
``CallbackDialled`` ...           ``callback_dialled``, ``callback_answered``,
                                  ``callback_failed`` and ``callback_dropped`` (with reasons)
agent ``login`` / ``logout``      ``login`` / ``logout`` (a logout in wrap-up: ``wrapup_end``
                                  first; one a reload made names why: ``licence``,
                                  ``removed``)
agent ``pause`` / ``unpause``     ``pause`` (reason) / ``unpause``; a new reason while paused is
                                  ``unpause`` and ``pause``; a pause in wrap-up ``wrapup_end``
                                  first
agent ``answer``                  ``call_start``
agent ``hang_up``                 ``wrapup_start``
agent ``wrap_up_done``            ``wrapup_end``
================================  =============================================================

An agent is named by its number (E.164: unique, where an extension is unique only in its
group); the caller's id in the queue is the line's ``call_id``. Each line gets an id from
``uuid``. An agent ringing, talking or wrapping up when the server stopped comes back available
(``RESTARTED``), which writes nothing: its open call or wrap-up is closed by its next logout.
"""

from __future__ import annotations

from collections.abc import Callable

from callserver.queues.agents import AgentEvent, AgentState, AgentStateChanged
from callserver.queues.events import (
    AgentRung,
    CallbackAnswered,
    CallbackDialled,
    CallbackDropped,
    CallbackFailed,
    CallbackRequested,
    CallerAbandoned,
    CallerAnswered,
    CallerJoined,
    CallerLeft,
    CallerRefused,
    CallerTimedOut,
    CentreEvent,
    QueueCallEnded,
    QueueEvent,
    RingCancelled,
    RingNoAnswer,
)
from callserver.queues.records import QueueEventKind, QueueLogRecord

__all__ = ["log_records"]

K = QueueEventKind
_WAIT_ENDS: dict[type[QueueEvent], QueueEventKind] = {
    CallerAnswered: K.ANSWER,
    CallerAbandoned: K.ABANDON,
    CallerLeft: K.LEAVE,
    CallerTimedOut: K.TIMEOUT,
    CallbackRequested: K.CALLBACK_REQUESTED,
}
_CALLBACK_KINDS: dict[type[QueueEvent], QueueEventKind] = {
    CallbackDialled: K.CALLBACK_DIALLED,
    CallbackAnswered: K.CALLBACK_ANSWERED,
    CallbackFailed: K.CALLBACK_FAILED,
    CallbackDropped: K.CALLBACK_DROPPED,
}
_AGENT_KINDS = {
    AgentEvent.LOGIN: K.LOGIN,
    AgentEvent.LOGOUT: K.LOGOUT,
    AgentEvent.PAUSE: K.PAUSE,
    AgentEvent.UNPAUSE: K.UNPAUSE,
    AgentEvent.ANSWER: K.CALL_START,
    AgentEvent.HANG_UP: K.WRAPUP_START,
    AgentEvent.WRAP_UP_DONE: K.WRAPUP_END,
}


def log_records(event: CentreEvent, uuid: Callable[[], str]) -> list[QueueLogRecord]:
    """The queue log lines of ``event`` (module docstring); ``uuid`` gives each its id.

    Raises:
        ValueError: an event without a UTC-aware ``at`` (``QueueLogRecord`` refuses it).
    """
    if isinstance(event, AgentStateChanged):
        return _agent_lines(event, uuid)
    kind = _caller_kind(event)
    if kind is None:
        return []
    return [
        QueueLogRecord(
            at=event.at,
            kind=kind,
            customer=event.customer,
            uuid=uuid(),
            queue=event.queue,
            call_id=event.caller,
            caller=getattr(event, "number", None),
            agent=getattr(event, "agent", None),
            position=getattr(event, "position", None),
            wait=getattr(event, "wait", None) if kind in _WAIT_ENDS.values() else None,
            reason=_caller_reason(event),
        )
    ]


def _caller_kind(event: QueueEvent) -> QueueEventKind | None:
    if isinstance(event, CallerJoined):
        return K.JOIN
    if isinstance(event, CallerRefused):
        return K.FULL if event.reason == "full" else K.NO_AGENTS
    if isinstance(event, AgentRung):
        return K.RING
    if isinstance(event, RingNoAnswer):
        return K.RING_NOANSWER
    if isinstance(event, RingCancelled):
        return K.RING_CANCELLED
    if isinstance(event, QueueCallEnded):
        return K.CALL_END
    return _WAIT_ENDS.get(type(event)) or _CALLBACK_KINDS.get(type(event))


def _caller_reason(event: QueueEvent) -> str | None:
    if isinstance(event, RingNoAnswer | RingCancelled | CallerLeft | CallbackFailed):
        return event.reason
    return event.reason if isinstance(event, CallbackDropped) else None


def _agent_lines(event: AgentStateChanged, uuid: Callable[[], str]) -> list[QueueLogRecord]:
    kinds: list[QueueEventKind] = []
    if event.previous is AgentState.WRAP_UP and event.event in (
        AgentEvent.PAUSE,
        AgentEvent.LOGOUT,
    ):
        kinds.append(K.WRAPUP_END)
    if event.previous is AgentState.PAUSED and event.event is AgentEvent.PAUSE:
        kinds.append(K.UNPAUSE)  # a new reason: the old pause ends
    kind = _AGENT_KINDS.get(event.event)
    if kind is not None:
        kinds.append(kind)
    return [
        QueueLogRecord(
            at=event.at,
            kind=kind,
            customer=event.customer,
            uuid=uuid(),
            queue=event.queue if kind in _CALL_LINES else None,
            call_id=event.caller if kind in _CALL_LINES else None,
            agent=event.agent,
            reason=event.reason if kind in _REASONED else None,
        )
        for kind in kinds
    ]


_LEAVE_WRAP_UP = (AgentEvent.PAUSE, AgentEvent.LOGOUT)
_CALL_LINES = frozenset({K.CALL_START, K.WRAPUP_START, K.WRAPUP_END})
_REASONED = frozenset({K.PAUSE, K.LOGOUT})  # a logout the server made says why
