"""A real headless Chromium driven by selenium (Debian ``chromium`` and ``chromium-driver``).

``headless_chromium(...)`` starts the browser with a fresh profile in a temporary directory and
the flags that keep it from reaching any outside host, and ends it after the block; the
``chromium`` fixture starts browsers for one test (``start(*extra)``). ``Browser.screenshot``
writes PNGs into ``$CALLSERVER_ARTIFACTS`` when it is set, else the repository's
``build/artifacts/screenshots/`` (ignored by git). Extra Chromium arguments (fake media
devices for WebRTC, ...) are passed through.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
INSTALL_HINT = "apt-get install chromium chromium-driver (or: make test, which runs make chromium)"
REPOSITORY = Path(__file__).resolve().parents[2]

# Headless as root, and nothing fetched from outside hosts at start (TESTING-NOTES "Chromium").
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
)

T = TypeVar("T")


def artifacts_directory() -> Path:
    """Where screenshots go: ``$CALLSERVER_ARTIFACTS``, else build/artifacts/screenshots."""
    chosen = os.environ.get("CALLSERVER_ARTIFACTS")
    return Path(chosen) if chosen else REPOSITORY / "build" / "artifacts" / "screenshots"


def require_chromium() -> None:
    """Fail the test (with the install hint) when chromium or chromedriver is missing."""
    for program in (CHROMIUM, CHROMEDRIVER):
        if not (program.exists() and os.access(program, os.X_OK)):
            pytest.fail(f"{program} not found: {INSTALL_HINT}")


@dataclass
class Browser:
    """A running Chromium: the selenium driver, its downloads directory and its screenshots."""

    driver: WebDriver
    downloads: Path
    prefix: str

    def screenshot(self, name: str) -> Path:
        """Write the whole page (beyond the window too) as ``<prefix>-<name>.png`` into the
        artifacts directory."""
        directory = artifacts_directory()
        directory.mkdir(parents=True, exist_ok=True)
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{self.prefix}-{name}").strip("-")
        path = directory / f"{safe}.png"
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def wait(self, condition: Callable[[WebDriver], T], timeout: float = 10.0) -> T:
        """``condition``'s first truthy answer, polled by WebDriverWait (TimeoutException). An
        element missing, or gone stale because the page drew its data anew, is polled again."""
        ignored = (NoSuchElementException, StaleElementReferenceException)
        wait = WebDriverWait(self.driver, timeout, 0.05, ignored_exceptions=ignored)
        return wait.until(condition)

    def console_errors(self) -> list[str]:
        """The messages the page logged as errors (script errors, failed loads) since the
        last call."""
        return [e["message"] for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]

    def click(self, css: str, timeout: float = 10.0) -> None:
        """Click the element ``css`` selects once it is there (again if the page redrew it)."""

        def clicked(driver: WebDriver) -> bool:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return True

        self.wait(clicked, timeout)


Start = Callable[..., WebDriver]


def start_chromium(profile: Path, *extra: str, downloads: Path | None = None) -> WebDriver:
    """A headless Chromium with ``FLAGS``, ``extra`` and its profile in ``profile``; files
    download into ``downloads`` (default: ``profile/downloads``)."""
    require_chromium()
    into = downloads or profile / "downloads"
    into.mkdir(parents=True, exist_ok=True)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (*FLAGS, f"--user-data-dir={profile / 'profile'}", *extra):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(into), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(into)}
        )
    except Exception:
        driver.quit()
        raise
    return driver


@contextlib.contextmanager
def headless_chromium(
    prefix: str, extra_arguments: Sequence[str] = (), downloads: Path | None = None
) -> Iterator[Browser]:
    """Headless Chromium with a fresh profile for the block; ``prefix`` names its screenshots,
    ``extra_arguments`` are added to the command line, files download into ``downloads``
    (default: a temporary directory). For a module's tests to share one browser."""
    profile = Path(tempfile.mkdtemp(prefix="callserver-chromium-"))
    try:
        into = downloads or profile / "downloads"
        driver = start_chromium(profile, *extra_arguments, downloads=into)
        try:
            yield Browser(driver, into, prefix)
        finally:
            driver.quit()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Start]:
    """Starts browsers for one test (``start(*extra)``), each with its own profile under the
    test's tmp dir; quits them after it."""
    started: list[WebDriver] = []

    def start(*extra: str) -> WebDriver:
        driver = start_chromium(tmp_path / f"chromium-{len(started)}", *extra)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()
