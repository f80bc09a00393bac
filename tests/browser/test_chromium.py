"""The browser harness itself: extra arguments reach Chromium, screenshots go where
$CALLSERVER_ARTIFACTS says, and a missing binary fails with the install command."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.browser import chromium as harness
from tests.browser.chromium import Start, headless_chromium


def test_extra_arguments_reach_the_browser(chromium: Start) -> None:
    """A user agent given as an extra argument is the page's navigator.userAgent."""
    driver = chromium("--user-agent=callserver-harness-check")
    driver.get("data:text/html,<title>check</title>")
    assert driver.execute_script("return navigator.userAgent") == "callserver-harness-check"


def test_screenshots_go_to_the_artifacts_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With $CALLSERVER_ARTIFACTS set, screenshot(name) writes <prefix>-<name>.png there."""
    monkeypatch.setenv("CALLSERVER_ARTIFACTS", str(tmp_path / "shots"))
    with headless_chromium("harness") as browser:
        browser.driver.get("data:text/html,<h1>shot</h1>")
        path = browser.screenshot("a page/1")
    assert path == tmp_path / "shots" / "harness-a-page-1.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_missing_chromium_fails_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No /usr/bin/chromium: the test fails saying apt-get install chromium chromium-driver."""
    monkeypatch.setattr(harness, "CHROMIUM", tmp_path / "chromium")
    with pytest.raises(pytest.fail.Exception, match="apt-get install chromium chromium-driver"):
        harness.require_chromium()
