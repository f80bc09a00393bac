"""Tests for CDR exports: Asterisk Master.csv columns, JSON lines, times and the stats report."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from callserver.cdr.export import (
    ASTERISK_COLUMNS,
    cdr_export_command,
    cdr_stats_command,
    csv_row,
    export,
    format_stats,
    parse_time,
)
from callserver.cdr.record import CdrRecord, Disposition
from callserver.cdr.spool import CdrSpool
from callserver.cdr.store import CdrStats, GroupStats
from tests.cdr import make_record

HEADER = (
    '"accountcode","src","dst","dcontext","clid","channel","dstchannel","lastapp","lastdata",'
    '"start","answer","end","duration","billsec","disposition","amaflags","uniqueid","userfield",'
    '"uuid","call_id","leg","linked_id","status","direction","trunk","customer","caller_raw",'
    '"caller_e164","caller_country","called_raw","called_e164","dialplan","dialplan_version",'
    '"start_stamp","answer_stamp","end_stamp","billmsec","disposition_detail","hangup_cause",'
    '"q850_cause","sip_code","hangup_by","end_reason","language","steps","digits","survey",'
    '"voicemail_path","recording_path","number_class","tariff","billed_units","billed_seconds",'
    '"payer","cost","vat","currency","end_detail","charges","subscriber",'
    '"diversion_reason","diverted_from","conference",'
    '"answered_by","malicious","transferred_from","monitored_call","monitor_mode","monitored_by",'
    '"recording_seconds","campaign","queue","queue_wait","recording_error"\n'
)
ROW = (
    '"acme","061234567","033123456","38733123456.yaml","061234567","SIP/pbx-1","","menu","",'
    '"2026-11-22 10:00:00","2026-11-22 10:00:02","2026-11-22 10:01:02",62,60,"ANSWERED",'
    '"DOCUMENTATION","u1","","u1","c1","a","u1","final","inbound","pbx-1","acme","061234567",'
    '"38761234567","BA","033123456","38733123456","38733123456.yaml","7","2026-11-22T10:00:00.000Z",'
    '"2026-11-22T10:00:02.000Z","2026-11-22T10:01:02.500Z",60500,"ANSWERED","NORMAL_CLEARING",'
    '16,200,"caller","normal","bs","[""welcome"",""menu""]","12#","{""rating"":5}","",'
    '"var/recordings/u1.wav","geographic","local",61,61,"caller","0.0508","0.0086","BAM","",'
    '"[{""payer"":""caller"",""tariff"":""local"",""billed_units"":61,""billed_seconds"":61,'
    '""cost"":""0.0508"",""vat"":""0.0086""},{""payer"":""called"",""tariff"":""local"",'
    '""billed_units"":61,""billed_seconds"":61,""cost"":""0.0203"",""vat"":""0.0035""}]",'
    '"+38733100201","user-busy","+38733100202","100",'
    '"+38733100203","","c0","","","",42,"","","",""\n'
)
CHARGES = [
    {
        "payer": "caller",
        "tariff": "local",
        "billed_units": 61,
        "billed_seconds": 61,
        "cost": "0.0508",
        "vat": "0.0086",
    },
    {
        "payer": "called",
        "tariff": "local",
        "billed_units": 61,
        "billed_seconds": 61,
        "cost": "0.0203",
        "vat": "0.0035",
    },
]


def _full_record() -> CdrRecord:
    return make_record(
        1,
        dialplan="38733123456.yaml",
        dialplan_version="7",
        language="bs",
        steps=["welcome", "menu"],
        digits="12#",
        survey={"rating": 5},
        recording_path="var/recordings/u1.wav",
        number_class="geographic",
        tariff="local",
        billed_units=61,
        billed_seconds=61,
        payer="caller",
        cost="0.0508",
        vat="0.0086",
        currency="BAM",
        charges=CHARGES,
        subscriber="+38733100201",
        diversion_reason="user-busy",
        diverted_from="+38733100202",
        conference="100",
        answered_by="+38733100203",
        transferred_from="c0",
        recording_seconds=42,
    )


def test_csv_header_and_row_are_exact() -> None:
    """The header lists Asterisk's 18 columns then ours; a full record gives exactly this row."""
    out = io.StringIO()
    assert export([_full_record()], "csv", out) == 1
    header, row = out.getvalue().splitlines(keepends=True)
    assert header == HEADER
    assert row == ROW


def test_csv_starts_with_the_master_csv_columns_in_order() -> None:
    """The first 18 values of a row follow Asterisk cdr_csv's Master.csv order."""
    values = next(csv.reader(io.StringIO(HEADER)))
    assert tuple(values[:18]) == ASTERISK_COLUMNS
    assert len(values) == len(set(values))  # no column name twice


@pytest.mark.parametrize(
    ("ours", "asterisk"),
    [
        ("ANSWERED", "ANSWERED"),
        ("NO_ANSWER", "NO ANSWER"),
        ("BUSY", "BUSY"),
        ("FAILED", "FAILED"),
        ("REJECTED", "FAILED"),
        ("CANCELLED", "NO ANSWER"),
    ],
)
def test_disposition_column_uses_asterisk_words(ours: str, asterisk: str) -> None:
    """Asterisk's disposition column gets its vocabulary; ours stays in disposition_detail."""
    answer = "2026-11-22T10:00:02.000Z" if ours == "ANSWERED" else None
    row = csv_row(make_record(disposition=ours, answer_stamp=answer))
    assert row[ASTERISK_COLUMNS.index("disposition")] == asterisk
    assert Disposition(ours) == row[len(ASTERISK_COLUMNS) + 19]


def test_unanswered_empty_fields_are_quoted_empty_strings() -> None:
    """An unanswered leg has answer "" and billsec 0, as Asterisk writes it."""
    out = io.StringIO()
    leg = make_record(2, answer_stamp=None, disposition="BUSY", trunk=None)
    export([leg], "csv", out, header=False)
    assert out.getvalue().startswith(
        '"acme","061234567","033123456","","061234567","","","","","2026-11-22 10:00:00","",'
        '"2026-11-22 10:01:02",62,0,"BUSY",'
    )


def test_jsonl_export_is_the_spooled_lines() -> None:
    """JSON lines export writes to_json() per record, which parses back to the same records."""
    records = [make_record(n) for n in range(3)]
    out = io.StringIO()
    assert export(records, "jsonl", out) == 3
    assert [CdrRecord.from_json(line) for line in out.getvalue().splitlines()] == records


def test_unknown_format_is_refused() -> None:
    """Only jsonl and csv exist."""
    with pytest.raises(ValueError, match="jsonl or csv"):
        export([], "xml", io.StringIO())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22", datetime(2026, 11, 22, tzinfo=UTC)),
        ("2026-11-22T08:30", datetime(2026, 11, 22, 8, 30, tzinfo=UTC)),
        ("2026-11-22T08:30:00Z", datetime(2026, 11, 22, 8, 30, tzinfo=UTC)),
        (
            "2026-11-22 09:30+01:00",
            datetime(2026, 11, 22, 9, 30, tzinfo=timezone(timedelta(hours=1))),
        ),
    ],
)
def test_parse_time_reads_dates_and_times_as_utc_unless_zoned(
    text: str, expected: datetime
) -> None:
    """A date is midnight UTC, a naive time is UTC, an offset is kept."""
    assert parse_time(text) == expected


def test_parse_time_refuses_other_text() -> None:
    """Anything but ISO 8601 gives a message with an example."""
    with pytest.raises(ValueError, match="ISO 8601"):
        parse_time("yesterday")


def test_stats_report_is_a_readable_table() -> None:
    """The report shows totals, then per trunk and per number rows, '-' for an empty key."""
    group = GroupStats(key="pbx-1", calls=4, answered=3, billsec=90)
    stats = CdrStats(
        total=GroupStats(key="all", calls=4, answered=3, billsec=90),
        per_trunk=(group,),
        per_called=(GroupStats(key="", calls=4, answered=3, billsec=90),),
    )
    assert format_stats(stats).splitlines() == [
        "calls 4  answered 3  ASR 75.0 %  ACD 30.0 s",
        "",
        "trunk                       calls answered  ASR %    ACD s",
        "pbx-1                           4        3   75.0     30.0",
        "",
        "called number               calls answered  ASR %    ACD s",
        "-                               4        3   75.0     30.0",
    ]


def test_commands_ingest_the_spool_and_filter_by_time(tmp_path: Path) -> None:
    """cdr export and cdr stats read what the spool wrote, within --since/--until."""
    with CdrSpool(tmp_path / "cdr") as spool:
        for n, hour in enumerate((8, 10, 12)):
            start = f"2026-11-22T{hour:02d}:00:00.000Z"
            unanswered = {"answer_stamp": None, "disposition": "NO_ANSWER"}
            spool.write(make_record(n, start_stamp=start, end_stamp=start, **unanswered))
    out = io.StringIO()
    count = cdr_export_command(
        tmp_path, since="2026-11-22T09:00", until="2026-11-22T12:00", fmt="csv", out=out
    )
    assert count == 1
    assert [row[16] for row in csv.reader(io.StringIO(out.getvalue()))] == ["uniqueid", "u1"]
    report = io.StringIO()
    stats = cdr_stats_command(tmp_path, since=None, until=None, out=report)
    assert stats.total.calls == 3
    assert report.getvalue().startswith("calls 3  answered 0  ASR 0.0 %  ACD 0.0 s\n")


def test_csv_writes_control_characters_escaped() -> None:
    """A control character in a CDR text field reaches the CSV as \\u0000, never raw."""
    record = make_record(1, caller_raw="06\x001\x1b[2J", dialplan="plan\x7f")
    row = csv_row(record)
    assert row[1] == "06\\u00001\\u001b[2J"
    assert row[3] == "plan\\u007f"
    assert not any(isinstance(cell, str) and ("\x00" in cell or "\x1b" in cell) for cell in row)
