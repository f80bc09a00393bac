"""Headless Chromium driven by selenium for the portal's pages (Debian chromium and
chromium-driver, installed by `make chromium`).

``chromium`` is a fixture giving a function that starts a browser with the flags of a quiet,
sandbox-free headless run in a fresh profile under the test's tmp dir, plus the caller's own
(``extra``: fake media devices, loopback WebRTC ...); every browser started is quit at the
test's end. A missing binary fails the test with the install command.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
QUIET = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

Start = Callable[..., webdriver.Chrome]


def start_chromium(profile: Path, *extra: str) -> webdriver.Chrome:
    """A headless Chromium with the quiet flags, ``extra`` and its profile in ``profile``."""
    for binary in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(binary) is None:
            pytest.fail(
                f"{binary} not found: run `make chromium` or apt-get install chromium "
                "chromium-driver"
            )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (*QUIET, f"--user-data-dir={profile}", *extra):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Start]:
    """Starts browsers (``start(*extra)``), each with its own profile; quits them after."""
    started: list[webdriver.Chrome] = []

    def start(*extra: str) -> webdriver.Chrome:
        driver = start_chromium(tmp_path / f"chromium-{len(started)}", *extra)
        started.append(driver)
        return driver

    yield start
    for driver in started:
        driver.quit()
