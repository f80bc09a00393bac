"""Run every async transport test on asyncio's own loop and on uvloop, the production runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest
import uvloop


@pytest.hookimpl(optionalhook=True)
def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Name the event loops each test runs on (pytest-asyncio parametrises over them)."""
    return {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}
