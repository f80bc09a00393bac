"""The portal's login and live calls page in Chromium against a real `callserver run`: each
token's role is shown, a customer sees only its own calls, and a SIPp call is hung up from the
page (SIPp gets the BYE, the CDR says admin)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import (
    ACME,
    ADMIN,
    GLOBEX,
    OPERATOR,
    banner,
    log_in,
    open_page,
    server_until,
)
from tests.e2e.admin_client import CALLED, TRUNKS
from tests.e2e.conftest import (
    HOST,
    SCENARIOS,
    ServerProcess,
    exported_cdrs,
    free_port,
    media_port,
    popen_sipp,
    start_server,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `callserver run` for the module: acme's trunk is 127.0.0.1; calls last 60 s."""
    process = start_server(
        tmp_path_factory.mktemp("portal-calls"), trunks=TRUNKS, admin=ADMIN, hangup_after=60.0
    )
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with headless_chromium("live-calls") as running:
        yield running


def test_each_token_logs_in_with_its_role_and_customer(
    browser: Browser, server: ServerProcess
) -> None:
    """The login page shows operator for the operator's token, customer acme for acme's, and
    the API's error in the banner for a token that is not one of admin.tokens."""
    assert log_in(browser, server, OPERATOR) == {
        "name": "noc",
        "role": "operator",
        "customer": "all customers",
    }
    browser.screenshot("login-operator")
    assert log_in(browser, server, ACME) == {
        "name": "acme-portal",
        "role": "customer",
        "customer": "acme",
    }
    browser.screenshot("login-customer")
    browser.driver.execute_script("sessionStorage.clear()")
    browser.driver.refresh()
    browser.wait(lambda d: d.find_element(By.ID, "token")).send_keys("guessed")
    browser.driver.find_element(By.ID, "login-button").click()
    message = browser.wait(lambda d: banner(d))
    assert "the token is not one of admin.tokens" in message
    assert browser.driver.execute_script("return sessionStorage.length") == 0
    browser.screenshot("login-refused")


def _hold_call(sipp: str, server: ServerProcess, cwd: Path) -> subprocess.Popen[str]:
    """SIPp placing one call answered until the server's BYE."""
    cmd = [
        sipp,
        f"{HOST}:{server.port}",
        *("-i", HOST, "-p", str(free_port(both=False)), "-mp", str(media_port())),
        *("-sf", str(SCENARIOS / "uac-expect-server-bye.xml"), "-s", CALLED, "-m", "1"),
        *("-nostdin", "-timeout", "40s", "-timeout_error"),
    ]
    return popen_sipp(cmd, cwd)


def _listed(browser: Browser, answered: bool = False) -> list[str]:
    """The Call-IDs of the live list's rows, once it is shown (and its first call answered)."""

    def rows(driver: WebDriver) -> tuple[list[str]] | None:
        driver.find_element(By.ID, "calls-count")
        found = driver.find_elements(By.CSS_SELECTOR, "#calls-list tr[data-call-id]")
        if answered and not (found and "answered" in found[0].text):
            return None
        return ([row.get_attribute("data-call-id") or "" for row in found],)

    return browser.wait(rows)[0]


def test_a_call_is_listed_by_customer_and_hung_up_from_the_page(
    sipp: str, browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    """SIPp's acme call is on the operator's and acme's lists, not globex's; the operator's
    Hang up button sends SIPp the BYE and the call's CDR says admin."""
    caller = _hold_call(sipp, server, tmp_path)
    try:
        log_in(browser, server, OPERATOR)
        open_page(browser, server, "calls", "calls-count")
        (call_id,) = _listed(browser, answered=True)
        browser.screenshot("calls-operator")
        log_in(browser, server, GLOBEX)
        open_page(browser, server, "calls", "calls-count")
        assert _listed(browser) == []
        browser.wait(lambda d: d.find_element(By.ID, "calls-count").text == "0 call(s) in progress")
        browser.screenshot("calls-other-customer")
        log_in(browser, server, ACME)
        open_page(browser, server, "calls", "calls-count")
        assert _listed(browser) == [call_id]
        browser.screenshot("calls-customer")
        log_in(browser, server, OPERATOR)
        open_page(browser, server, "calls", "calls-count")
        browser.click(f'button[data-call-id="{call_id}"]')
        browser.wait(lambda d: d.find_element(By.ID, "calls-count").text == "0 call(s) in progress")
        browser.screenshot("calls-hung-up")
        assert caller.wait(timeout=15) == 0, caller.communicate()[0]
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.wait()
    (cdr,) = server_until(server, lambda s: exported_cdrs(s.data_dir))
    assert (cdr["call_id"], cdr["hangup_by"], cdr["end_reason"]) == (call_id, "admin", "admin")


def test_a_failed_hang_up_stays_in_the_banner_after_the_next_poll(
    browser: Browser, server: ServerProcess
) -> None:
    """A hang-up the API refuses (a call that is gone) keeps its message in the banner after
    the page's next successful poll of the list; the close button hides it."""
    log_in(browser, server, OPERATOR)
    drawn = open_page(browser, server, "calls", "calls-count")
    browser.driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "import('/portal/static/api.js').then(({ api }) =>"
        " api('/api/calls/' + encodeURIComponent('gone/1#x@pbx'), { method: 'DELETE' }))"
        ".then(() => done('answered'), () => done('refused'));"
    )
    message = browser.wait(lambda d: banner(d))
    assert "gone/1#x@pbx" in message

    def redrawn(driver: WebDriver) -> bool:
        return driver.find_element(By.ID, "calls-count") != drawn

    browser.wait(redrawn)
    assert banner(browser.driver) == message
    browser.screenshot("calls-hang-up-refused")
    browser.click("#banner button")
    browser.wait(lambda d: banner(d) == "")
