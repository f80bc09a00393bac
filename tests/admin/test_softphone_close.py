"""The softphone's socket ends cleanly whatever fails as it closes: the outbox's writer is
cancelled even when the session's close raises, and a writer that failed is logged, not
raised into the web server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from callserver.admin import softphone_api
from callserver.softphone.session import SoftphoneSession
from tests.admin.serving import serving
from tests.admin.test_softphone_agents import _api
from tests.admin.tokens import ACME


async def _open_and_close() -> None:
    """A softphone of agent 201 that says ready, closed by the browser."""
    async with serving(_api()) as client:
        ws = await client.session.ws_connect(client.url + "/api/softphone")
        await ws.send_json({"type": "hello", "token": ACME, "agent": "201"})
        assert (await ws.receive_json())["type"] == "ready"
        await ws.close()


async def test_the_writer_is_cancelled_when_the_session_close_raises(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cancelled = asyncio.Event()
    write, close = softphone_api._Outbox.write, SoftphoneSession.close

    async def watched_write(self: Any) -> None:
        try:
            await write(self)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def failing_close(self: SoftphoneSession) -> None:
        await close(self)
        raise RuntimeError("close failed")

    monkeypatch.setattr(softphone_api._Outbox, "write", watched_write)
    monkeypatch.setattr(SoftphoneSession, "close", failing_close)
    await _open_and_close()
    await asyncio.wait_for(cancelled.wait(), 3.0)


async def test_a_writer_that_failed_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing_write(self: Any) -> None:
        message = await self._queue.get()  # the ready, then the writer fails
        await self._ws.send_json(message)
        raise RuntimeError("writer failed")

    monkeypatch.setattr(softphone_api._Outbox, "write", failing_write)
    with structlog.testing.capture_logs() as logs:
        await _open_and_close()
        for _ in range(300):
            if any(e["event"] == "softphone.closed" for e in logs):
                break
            await asyncio.sleep(0.01)
    events = [e["event"] for e in logs]
    assert "softphone.writer_failed" in events and "softphone.closed" in events, events
