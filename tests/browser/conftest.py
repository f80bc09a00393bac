"""Browser tests: a real ``callserver run`` per module and a real headless Chromium
(``tests.browser.chromium``), SIPp as the caller."""

from __future__ import annotations

import pytest

from tests.browser.chromium import chromium
from tests.e2e.conftest import sipp

__all__ = ["chromium", "sipp"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser is end-to-end (a server process, a browser, SIPp)."""
    for item in items:
        if "tests/browser" in str(item.path):
            item.add_marker(pytest.mark.e2e)
