"""The SQLite databases of the data dir, all opened the same way.

Autocommit (each statement or explicit ``BEGIN`` is its own transaction), a write-ahead log
so readers (``callserver cdr``, ``callserver subscribers show``) never wait for the writer,
``synchronous=NORMAL`` (in WAL mode a commit survives a crash of the process; only a loss
of power may take the last ones; the CDR database is rebuilt from the spool), and a busy
timeout of 10 s for the rare moment a reader holds a lock.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

__all__ = ["open_database", "transaction"]


def open_database(path: Path, schema: str, *, threads: bool = False) -> sqlite3.Connection:
    """``path`` opened as the module docstring says, with ``schema`` (DDL that may run again:
    ``CREATE ... IF NOT EXISTS``) applied. ``threads``: the connection is used from another
    thread than this one (one thread at a time: the stores' single worker).

    Raises:
        sqlite3.Error: the file cannot be opened, or is not a database.
    """
    db = sqlite3.connect(path, isolation_level=None, timeout=10.0, check_same_thread=not threads)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """The block as one write transaction: ``BEGIN IMMEDIATE`` (the write lock taken at once,
    so it never fails halfway for a reader's lock), ``COMMIT`` when the block ends, however it
    returns, and ``ROLLBACK`` when it raises."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
