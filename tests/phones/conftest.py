"""Phone tests run real SIP phones (baresip, pyVoIP) against SIPp on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sipp

__all__ = ["sipp"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/phones carries the e2e marker (it needs real peers)."""
    for item in items:
        if "tests/phones" in str(item.path):
            item.add_marker(pytest.mark.e2e)
