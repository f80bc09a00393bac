"""Tests for callserver.cdr; ``make_record`` builds a valid CDR with overridable fields."""

from __future__ import annotations

from callserver.cdr.record import CdrRecord


def make_record(n: int = 0, **overrides: object) -> CdrRecord:
    """An answered inbound leg, number ``n``: uuid ``u<n>``, Call-ID ``c<n>``, 62.5 s long."""
    fields: dict[str, object] = {
        "uuid": f"u{n}",
        "call_id": f"c{n}",
        "direction": "inbound",
        "trunk": "pbx-1",
        "customer": "acme",
        "caller_raw": "061234567",
        "caller_e164": "38761234567",
        "caller_country": "BA",
        "called_raw": "033123456",
        "called_e164": "38733123456",
        "start_stamp": "2026-11-22T10:00:00.000Z",
        "answer_stamp": "2026-11-22T10:00:02.000Z",
        "end_stamp": "2026-11-22T10:01:02.500Z",
        "disposition": "ANSWERED",
        "hangup_cause": "NORMAL_CLEARING",
        "q850_cause": 16,
        "sip_code": 200,
        "hangup_by": "caller",
        "end_reason": "normal",
    }
    fields.update(overrides)
    return CdrRecord.from_dict(fields)
