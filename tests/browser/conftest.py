"""Browser tests: a real ``callserver run`` per module and a real headless Chromium."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sipp

__all__ = ["sipp"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser is end-to-end (a server process, a browser, SIPp)."""
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.e2e)
