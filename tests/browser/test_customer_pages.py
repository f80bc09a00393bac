"""The portal's recordings and package pages, and every page's load, in Chromium against a
real `callserver run` as a customer: acme plays one of its recordings in the page and deletes
it (globex's stays), sees what it bought and uses, and no page logs an error."""

from __future__ import annotations

import uuid
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select

from callserver.admin.portal import PAGES
from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import (
    ACME,
    ADMIN,
    OPERATOR,
    banner,
    log_in,
    open_page,
    portal_url,
)
from tests.e2e.conftest import HOST, ServerProcess, start_server

TRUNKS: dict[str, object] = {
    "customers": {"acme": {"channels": 4, "agents": 2}, "globex": {}},
    "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme"}},
}
ACME_RECORDING, GLOBEX_RECORDING = str(uuid.uuid4()), str(uuid.uuid4())
SECONDS = 1.5
# What each page draws once it has its data (a CSS selector): an element made only from an
# API answer, so the checks after it see the page's requests answered.
READY = {
    "": "#session-role",
    "dashboard": "#calls-in-progress",
    "calls": "#calls-count",
    "cdrs": "#cdr-search",
    "wallboard": "#wb-agents table",
    "dialplans": "#dp-list table",
    "recordings": "#rec-list table",
    "package": "#package",
    "softphone": "#connect",
}


def _write_recording(data_dir: Path, customer: str, name: str) -> Path:
    """A mono 8 kHz WAV of SECONDS of 440 Hz where the server keeps ``customer``'s recordings
    of 2026-12-01."""
    folder = data_dir / "recordings" / customer / "2026" / "12" / "01"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.wav"
    t = np.arange(int(8000 * SECONDS)) / 8000
    samples = (8000 * np.sin(2 * np.pi * 440 * t)).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(samples.tobytes())
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`callserver run` whose data directory holds a recording of acme and one of globex."""
    tmp_path = tmp_path_factory.mktemp("portal-customer")
    _write_recording(tmp_path / "var", "acme", ACME_RECORDING)
    _write_recording(tmp_path / "var", "globex", GLOBEX_RECORDING)
    process = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with headless_chromium("customer") as running:
        yield running


def _listed(browser: Browser) -> list[str]:
    """The ids of the recordings listed, once the list is drawn (its table is made from the
    API's answer; the section is there before it)."""
    rows = browser.wait(
        lambda d: (
            d.find_element(By.CSS_SELECTOR, "#rec-list table")
            and (
                [
                    row.get_attribute("data-recording")
                    for row in d.find_elements(By.CSS_SELECTOR, "#rec-list tr[data-recording]")
                ],
            )
        )
    )
    return [str(name) for name in rows[0]]


def test_a_customer_plays_its_recording_in_the_page_and_deletes_it(
    browser: Browser, server: ServerProcess
) -> None:
    """acme lists its recording alone (the page's count: 1 to 1 of 1), plays it (the page's
    <audio> decodes the WAV fetched with the token: SECONDS long) and deletes it once it said
    yes: gone from the list and the disk, globex's still there for the operator."""
    log_in(browser, server, ACME)
    open_page(browser, server, "recordings", "rec-list")
    assert _listed(browser) == [ACME_RECORDING]
    assert browser.driver.find_element(By.ID, "rec-total").text == "recordings 1 to 1 of 1"
    browser.click(f'button[data-play="{ACME_RECORDING}"]')
    audio = browser.wait(lambda d: d.find_element(By.ID, "rec-audio"))
    assert str(audio.get_attribute("src")).startswith("blob:")
    duration = browser.wait(
        lambda d: d.execute_script("return document.getElementById('rec-audio').duration")
    )
    assert abs(float(duration) - SECONDS) < 0.05
    browser.screenshot("recording-playing")
    browser.click(f'button[data-delete="{ACME_RECORDING}"]')
    browser.wait(expected_conditions.alert_is_present()).accept()
    browser.wait(lambda d: _listed(browser) == [])
    assert browser.driver.find_element(By.ID, "rec-total").text == "no recording"
    assert list((server.data_dir / "recordings").rglob(f"{ACME_RECORDING}.wav")) == []
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "recordings", "rec-list")
    assert _listed(browser) == [GLOBEX_RECORDING]
    browser.screenshot("recordings-operator")


def test_a_customer_sees_its_package(browser: Browser, server: ServerProcess) -> None:
    """acme's package page shows its 4 channels and 2 agent licences, and its trunk."""
    log_in(browser, server, ACME)
    package = open_page(browser, server, "package", "package")
    assert "0 / 4" in package.text
    assert "0 / 2" in package.text
    assert "acme-pbx" in package.text
    browser.screenshot("package")


def test_an_operator_picks_the_customer_whose_package_it_reads(
    browser: Browser, server: ServerProcess
) -> None:
    """The operator's package page lists every customer; picking globex shows its package."""
    log_in(browser, server, OPERATOR)
    package = open_page(browser, server, "package", "package")
    assert "0 / 4" in package.text  # acme, the first by name
    picker = Select(browser.driver.find_element(By.ID, "customer"))
    assert [option.text for option in picker.options] == ["acme", "globex"]
    picker.select_by_visible_text("globex")
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#pkg-view h2").text == "globex")
    assert "0 / no limit" in browser.driver.find_element(By.ID, "package").text
    browser.screenshot("package-operator")


def test_every_page_loads_for_a_customer_without_an_error(
    browser: Browser, server: ServerProcess
) -> None:
    """Each page, opened with acme's token, draws its data; no banner, no script error."""
    log_in(browser, server, ACME)
    browser.console_errors()
    for page in PAGES:
        browser.driver.get(portal_url(server, page))
        browser.wait(lambda d, css=READY[page]: d.find_elements(By.CSS_SELECTOR, css) or banner(d))
        assert banner(browser.driver) == "", page
        assert browser.console_errors() == [], page
        browser.screenshot(f"page-{page or 'login'}")
