"""What a call's CDR says about its dialplan part, from the facts its session noted.

``dialplan_fields`` names ``cdr.record.CdrRecord``'s fields: the plan and its version, the
language, the steps, the digits, the survey's answers, the voicemail message, why the plan
ended the call, the conference room, the whole call's recording and the queue the caller waited
in. A field of a service the call did not use is left out, so the record keeps its default.
"""

from __future__ import annotations

from callserver.calls.call_recorder import RecordedCall
from callserver.calls.session_host import QueueOutcome

__all__ = ["dialplan_fields"]


def dialplan_fields(
    notes: dict[str, list[object]],
    *,
    dialplan: str | None,
    dialplan_version: str | None,
    language: str,
    recorded: RecordedCall | None,
) -> dict[str, object]:
    """The CDR fields of a session's ``notes``, its plan, language and call recording."""
    survey: dict[str, object] = {}
    for answer in notes.get("survey", []):
        survey.update(answer if isinstance(answer, dict) else {})
    voicemail = notes.get("voicemail", [])
    fields: dict[str, object] = {
        "dialplan": dialplan,
        "dialplan_version": dialplan_version,
        "language": language,
        "steps": tuple(map(str, notes.get("step", ()))),
        "digits": ",".join(map(str, notes.get("digits", ()))),
        "survey": survey,
        "voicemail_path": str(voicemail[-1]) if voicemail else None,
        "end_detail": _last(notes.get("blacklist") or notes.get("end_detail")),
    }
    if "conference" in notes:
        fields["conference"] = _last(notes["conference"])
    if recorded is not None:
        fields.update(recorded.cdr_fields())
    if "queue" in notes:
        fields.update(_queue_fields(notes["queue"][-1]))
    return fields


def _queue_fields(noted: object) -> dict[str, object]:
    """The CDR's ``queue``, ``queue_wait`` (ms) and ``answered_by`` of a noted queue wait."""
    name, outcome = noted if isinstance(noted, tuple) else (None, None)
    if not isinstance(outcome, QueueOutcome):
        return {}
    fields: dict[str, object] = {"queue": name, "queue_wait": round(outcome.wait * 1000)}
    if outcome.agent is not None:
        fields["answered_by"] = outcome.agent
    return fields


def _last(values: list[object] | None) -> str | None:
    return str(values[-1]) if values else None
