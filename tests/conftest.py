"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Speed is never asserted in a test: hypothesis's per-example deadline and its "too slow"
# health check would fail a property when the machine is busy (parallel tests), not when the
# property is false. Every property test runs under this profile.
settings.register_profile("callserver", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("callserver")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CALLSERVER_* variable of the caller's shell leaks in; no default file is found."""
    for name in list(os.environ):
        if name.upper().startswith("CALLSERVER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
