"""Maximum call duration: the credit timer armed at answer (premium caps, the global default).

Theory of operation
-------------------
Every answered call gets one cap, the smallest of three (``duration_cap``):

- the cap of its number class (config/tariffs.yaml ``classes.<name>.max_duration``; the
  per-call premium numbers carry the regulator's 180 s), if the class has one;
- the cap its customer's dialplan asks for, if any: a dialplan may shorten the class's cap,
  never lengthen or remove it (``callserver check`` refuses the file: ``ValueError`` here);
- the operator's global default (4 h), so that no forgotten call runs forever (the RTP
  inactivity timeout stops most of them sooner).

The cap runs from answer, timed by ``rtime``, the arrival of the datagram that answered the call
(the 200 OK on an outgoing leg, the ACK on an incoming one) and not by when it was processed,
as sippy's credit time is. ``CreditTimer`` holds the absolute deadline and the optional warning
time; the call that owns it arms one timer at the earlier of the two, plays the warning prompt,
and at the deadline sends BYE to every leg and ends the CDR with cause ``max_duration``. Time
comes in as ``now``: nothing here reads a clock. How long before the cap the warning plays is
the operator's (config/tariffs.yaml: a class's ``warn_before``, else the global
``cap_warning`` for a call with a cap of its own): ``CreditTimer.arm`` is told.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from callserver.policy.numbering import NumberClass

__all__ = [
    "DEFAULT_MAX_DURATION",
    "MAX_DURATION_CAUSE",
    "CreditTimer",
    "cap_deadline",
    "duration_cap",
    "warning_time",
]

DEFAULT_MAX_DURATION = 14400.0  # 4 h: the global cap of every call
MAX_DURATION_CAUSE = "max_duration"  # the CDR hangup cause when a cap ends a call


def duration_cap(
    number_class: NumberClass,
    dialplan_cap: float | None = None,
    default_cap: float = DEFAULT_MAX_DURATION,
) -> float:
    """The cap of a call in seconds: the least of the class's, the dialplan's and the default.

    Args:
        number_class: the class of the called number; its ``max_duration`` may be None.
        dialplan_cap: what the customer's dialplan asks for; None when it asks for nothing.
        default_cap: the operator's global cap.

    Raises:
        ValueError: ``dialplan_cap`` is not a positive finite number (a request to remove the
            cap: infinite, zero, negative or NaN), or exceeds the class's or the default cap.
            The message names the class and the caps; ``callserver check`` prints it.
    """
    if not (math.isfinite(default_cap) and default_cap > 0):
        raise ValueError(f"the default cap must be a positive number of seconds, not {default_cap}")
    class_cap = number_class.max_duration
    limit = default_cap if class_cap is None else min(class_cap, default_cap)
    if dialplan_cap is None:
        return limit
    if not (math.isfinite(dialplan_cap) and dialplan_cap > 0):
        raise ValueError(
            f"max_duration {dialplan_cap} would remove the {_seconds(limit)} cap of class "
            f"{number_class.name!r}; a dialplan may only shorten it"
        )
    if dialplan_cap > limit:
        which = "the default" if class_cap is None or class_cap > default_cap else "the class"
        raise ValueError(
            f"max_duration {_seconds(dialplan_cap)} exceeds {which} cap of {_seconds(limit)} "
            f"for class {number_class.name!r}; a dialplan may only shorten it"
        )
    return dialplan_cap


def _seconds(value: float) -> str:
    return f"{value:g} s"


def cap_deadline(answer_rtime: float, cap: float) -> float:
    """The absolute time at which a call answered at ``answer_rtime`` reaches ``cap``.

    Raises:
        ValueError: ``cap`` is not a positive finite number.
    """
    if not (math.isfinite(cap) and cap > 0):
        raise ValueError(f"a cap must be a positive number of seconds, not {cap}")
    return answer_rtime + cap


def warning_time(deadline: float, warn_before: float | None) -> float | None:
    """When to play the warning prompt: ``warn_before`` seconds before ``deadline``.

    Returns:
        None when no warning is wanted (``warn_before`` None or not positive).
    """
    if warn_before is None or not warn_before > 0:
        return None
    return deadline - warn_before


@dataclass(frozen=True, slots=True, kw_only=True)
class CreditTimer:
    """The cap of one answered call: ``deadline`` and, if wanted, ``warning_at``.

    ``warning_at`` is None when no warning was asked for or it would fall before the answer.

    Raises:
        ValueError: ``cap`` is not a positive finite number.
    """

    answer_rtime: float
    cap: float
    warn_before: float | None = None

    def __post_init__(self) -> None:
        cap_deadline(self.answer_rtime, self.cap)  # validates the cap

    @classmethod
    def arm(
        cls,
        number_class: NumberClass,
        answer_rtime: float,
        *,
        dialplan_cap: float | None = None,
        default_cap: float = DEFAULT_MAX_DURATION,
        warn_before: float | None = None,
    ) -> CreditTimer:
        """The timer of a call to ``number_class`` answered at ``answer_rtime``.

        Args:
            number_class: the class of the called number (its cap).
            answer_rtime: the arrival of the datagram that answered the call.
            dialplan_cap: the cap the customer's dialplan asks for, if any.
            default_cap: the operator's global cap.
            warn_before: seconds before the cap to play the warning prompt; None for none.
                The operator's files decide it (the class's own, else the global one).

        Raises:
            ValueError: as ``duration_cap``.
        """
        cap = duration_cap(number_class, dialplan_cap, default_cap)
        return cls(answer_rtime=answer_rtime, cap=cap, warn_before=warn_before)

    @property
    def deadline(self) -> float:
        """When the call must end: answer ``rtime`` plus the cap."""
        return self.answer_rtime + self.cap

    @property
    def warning_at(self) -> float | None:
        """When to play the warning prompt, or None."""
        at = warning_time(self.deadline, self.warn_before)
        return None if at is None or at < self.answer_rtime else at

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline (0 once it has passed)."""
        return max(0.0, self.deadline - now)

    def expired(self, now: float) -> bool:
        """Whether the call has reached its cap at ``now``."""
        return now >= self.deadline

    def next_deadline(self, *, warned: bool) -> float:
        """The next time the owner must act: the warning (until played), then the cap."""
        at = self.warning_at
        return at if at is not None and not warned else self.deadline
