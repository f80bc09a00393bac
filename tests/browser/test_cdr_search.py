"""The portal's CDR search in Chromium against a real `callserver run`: SIPp's call is found by
its number, the CSV and JSON lines downloaded from the page are `callserver cdr export`'s, and
another customer finds nothing."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By

from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import ADMIN, GLOBEX, OPERATOR, log_in, open_page, server_until
from tests.e2e.admin_client import CALLED, TRUNKS, api
from tests.e2e.conftest import SCENARIOS, ServerProcess, run_sipp, start_server


@pytest.fixture(scope="module")
def server(sipp: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`callserver run` that has had one SIPp call from acme's trunk (ended by the server's
    BYE half a second after the answer), its CDR written."""
    tmp_path = tmp_path_factory.mktemp("portal-cdrs")
    process = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, hangup_after=0.5)
    scenario = str(SCENARIOS / "uac-expect-server-bye.xml")
    result = run_sipp(sipp, tmp_path, process.port, "-sf", scenario, "-s", CALLED, "-m", "1")
    assert result.returncode == 0, result.output[-2000:]
    # The CDR is written as the call ends, just after SIPp's last message.
    server_until(process, lambda s: api(s, "GET", "/api/cdrs", OPERATOR)[1]["total"] == 1)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One headless Chromium for the module, downloading into a directory of its own."""
    with headless_chromium("cdrs", downloads=tmp_path_factory.mktemp("downloads")) as running:
        yield running


def _exported(server: ServerProcess, fmt: str) -> bytes:
    """What `callserver cdr export --format FMT` writes for the server's data directory."""
    command = [sys.executable, "-m", "callserver", "cdr", "export", "--format", fmt]
    proc = subprocess.run(
        [*command, "--data-dir", str(server.data_dir)], capture_output=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _downloaded(browser: Browser, name: str) -> bytes:
    """The file ``name`` once the browser has finished downloading it."""
    path = browser.downloads / name
    browser.wait(lambda d: path.exists() and not Path(f"{path}.crdownload").exists())
    return path.read_bytes()


def _search(browser: Browser, server: ServerProcess, number: str) -> str:
    """Search the records of ``number`` on the page; the result line's text."""
    open_page(browser, server, "cdrs", "cdr-search")
    browser.driver.find_element(By.ID, "cdr-number").send_keys(number)
    browser.driver.find_element(By.ID, "cdr-search-button").click()
    return str(browser.wait(lambda d: d.find_element(By.ID, "cdr-total").text))


def test_the_call_is_found_and_its_downloads_are_the_exports(
    browser: Browser, server: ServerProcess
) -> None:
    """The operator finds SIPp's call by the called number; Download CSV and Download JSONL
    give the bytes `callserver cdr export` writes."""
    status, listed = api(server, "GET", "/api/cdrs", OPERATOR)
    assert (status, listed["total"]) == (200, 1)
    (record,) = listed["cdrs"]
    log_in(browser, server, OPERATOR)
    assert _search(browser, server, CALLED) == "records 1 to 1 of 1"
    row = browser.driver.find_element(By.CSS_SELECTOR, "#cdr-results tr[data-call-id]")
    assert row.get_attribute("data-call-id") == record["call_id"]
    assert "ANSWERED" in row.text
    browser.screenshot("search-found")
    browser.driver.find_element(By.ID, "cdr-csv").click()
    assert _downloaded(browser, "cdrs.csv") == _exported(server, "csv")
    browser.driver.find_element(By.ID, "cdr-jsonl").click()
    assert _downloaded(browser, "cdrs.jsonl") == _exported(server, "jsonl")


def test_another_customer_finds_nothing(browser: Browser, server: ServerProcess) -> None:
    """globex's token searches the same number and finds no record of acme's call."""
    log_in(browser, server, GLOBEX)
    assert _search(browser, server, CALLED) == "no record found"
    assert browser.driver.find_element(By.ID, "cdr-customer").get_attribute("value") == "globex"
    browser.screenshot("search-other-customer")
