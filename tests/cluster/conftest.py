"""Tests of several nodes: real Redis, PostgreSQL and Kamailio (``tests.cluster.peers``),
SIPp as the caller."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import sipp

__all__ = ["sipp"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/cluster carries the e2e and cluster markers."""
    for item in items:
        if "tests/cluster" in str(item.path):
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.cluster)
