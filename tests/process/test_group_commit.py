"""Tests for the group-commit writer thread shared by the CDR spool and the queue event log."""

from __future__ import annotations

import threading

from structlog.testing import capture_logs

from callserver.process.group_commit import GroupCommit


def test_everything_submitted_before_close_is_committed_then_stopped_runs() -> None:
    """close() commits the queue in order, runs stopped last, and refuses later items."""
    seen: list[int] = []
    events: list[str] = []
    writer: GroupCommit[int] = GroupCommit(
        seen.extend, name="t", max_delay=0.0, stopped=lambda: events.append("stopped")
    )
    writer.start()
    assert all(writer.submit(n) for n in range(100))
    writer.close(10)
    assert seen == list(range(100))
    assert events == ["stopped"]
    assert writer.submit(100) is False


def test_a_failing_commit_is_logged_and_the_writer_goes_on() -> None:
    """An exception from commit ends that batch only: the next item is still committed."""
    seen: list[int] = []
    done = threading.Event()

    def commit(items: list[int]) -> None:
        if 0 in items:
            raise RuntimeError("bug")
        seen.extend(items)
        if 1 in items:
            done.set()

    writer: GroupCommit[int] = GroupCommit(commit, name="t", max_batch=1)
    with capture_logs() as logs:
        writer.start()
        writer.submit(0)
        writer.submit(1)
        assert done.wait(10)
        writer.close(10)
    assert seen == [1]
    assert [e["event"] for e in logs] == ["process.group_commit_error"]


def test_close_of_a_writer_never_started_runs_stopped() -> None:
    """A writer closed before start() still runs its stopped callback, once."""
    events: list[str] = []
    writer: GroupCommit[int] = GroupCommit(
        lambda items: None, name="t", stopped=lambda: events.append("stopped")
    )
    writer.close()
    writer.close()
    assert events == ["stopped"]


def test_an_idle_writer_calls_commit_with_an_empty_batch() -> None:
    """After idle seconds without items, commit gets [] (the owner's retry or heartbeat)."""
    empty = threading.Event()

    def commit(items: list[int]) -> None:
        if not items:
            empty.set()

    writer: GroupCommit[int] = GroupCommit(commit, name="t", idle=0.01)
    writer.start()
    assert empty.wait(10)
    writer.close(10)
