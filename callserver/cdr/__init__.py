"""Call detail records: the record, its durable spool, the SQLite store and the exports.

A leg is journalled when admitted (``CdrSpool.open_call``), its ``CdrRecord`` is written when
it ends (``CdrSpool.write``, fsync'd, group commit), a crash leaves ABORTED records after the
next start (``CdrSpool.recover``), and ``CdrStore.ingest`` feeds SQLite for queries, exports
and statistics (``callserver cdr export`` / ``callserver cdr stats``).
"""

from callserver.cdr.export import CSV_COLUMNS, export, format_stats, parse_time
from callserver.cdr.record import (
    CdrRecord,
    CdrSink,
    Disposition,
    EndReason,
    parse_stamp,
    stamp_from_epoch,
    utc_stamp,
)
from callserver.cdr.spool import CdrSpool, SpoolStatistics
from callserver.cdr.store import CdrStats, CdrStore, GroupStats, IngestResult

__all__ = [
    "CSV_COLUMNS",
    "CdrRecord",
    "CdrSink",
    "CdrSpool",
    "CdrStats",
    "CdrStore",
    "Disposition",
    "EndReason",
    "GroupStats",
    "IngestResult",
    "SpoolStatistics",
    "export",
    "format_stats",
    "parse_stamp",
    "parse_time",
    "stamp_from_epoch",
    "utc_stamp",
]
