"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No CALLSERVER_* variable of the caller's shell leaks in; no default file is found."""
    for name in list(os.environ):
        if name.upper().startswith("CALLSERVER_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
