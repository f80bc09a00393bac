"""process/sqlite.open_database: the data dir's databases opened one way."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from callserver.process.sqlite import open_database, transaction

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER);"


def test_write_ahead_log_autocommit_and_schema_again(tmp_path: Path) -> None:
    """The file is in WAL mode with synchronous NORMAL; a row written is there when the file
    is opened again, the schema applied a second time changing nothing."""
    path = tmp_path / "a.sqlite"
    db = open_database(path, SCHEMA)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    db.execute("INSERT INTO t VALUES ('a', 1)")  # autocommit: no commit() needed
    db.close()
    again = open_database(path, SCHEMA)
    assert again.execute("SELECT k, v FROM t").fetchall() == [("a", 1)]
    again.close()


def test_threads_lets_a_worker_use_the_connection(tmp_path: Path) -> None:
    """Opened with threads=True, the connection is used from a worker thread."""
    db = open_database(tmp_path / "b.sqlite", SCHEMA, threads=True)
    worker = threading.Thread(target=lambda: db.execute("INSERT INTO t VALUES ('w', 2)"))
    worker.start()
    worker.join()
    assert db.execute("SELECT v FROM t").fetchall() == [(2,)]
    db.close()


def test_a_transaction_commits_or_rolls_back_whole(tmp_path: Path) -> None:
    """A block that ends keeps its writes; one that raises keeps none of them."""
    db = open_database(tmp_path / "c.sqlite", SCHEMA)
    with transaction(db):
        db.execute("INSERT INTO t VALUES ('kept', 1)")
    with pytest.raises(RuntimeError), transaction(db):
        db.execute("INSERT INTO t VALUES ('gone', 2)")
        raise RuntimeError("half done")
    assert db.execute("SELECT k FROM t").fetchall() == [("kept",)]
    assert not db.in_transaction
    db.close()
