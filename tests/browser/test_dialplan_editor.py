"""The portal's dialplan editor in Chromium against a real `callserver run`: a plan with a
mistake is validated and uploaded from the page, its error is marked at its line with the
message beside it, and the version before stays in force."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import ADMIN, OPERATOR, banner, log_in, open_page
from tests.e2e.admin_client import api
from tests.e2e.conftest import HOST, ServerProcess, start_server

CALLED, OTHER, NEW = "38733100200", "38733100201", "38733100202"
TRUNKS: dict[str, object] = {
    "customers": {"acme": {}},
    "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme"}},
    "numbers": {CALLED: {}, OTHER: {}, NEW: {}},
}
IN_FORCE = "steps:\n  welcome:\n    play: greeting\n  goodbye:\n    hangup:\n    after: 0.5s\n"
# The step of line 7 names a verb that does not exist (the loader reports the step's line).
MISTAKEN = IN_FORCE + "  transfer:\n    forwrad: +38733100300\n"
MISTAKE_LINE = 7


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`callserver run` with two numbers' dialplans (one for each test)."""
    tmp_path = tmp_path_factory.mktemp("portal-dialplans")
    plans = tmp_path / "dialplans"
    plans.mkdir()
    (plans / f"{CALLED}.yaml").write_text(IN_FORCE)
    (plans / f"{OTHER}.yaml").write_text(IN_FORCE)
    process = start_server(tmp_path, trunks=TRUNKS, admin=ADMIN, dialplans=plans)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with headless_chromium("dialplans") as running:
        yield running


def _error_line(browser: Browser) -> tuple[str, str]:
    """The gutter's marked line number and the message beside it, once there is one."""

    def marked(driver: object) -> tuple[str, str] | None:
        gutter = browser.driver.find_elements(By.CSS_SELECTOR, "#dp-gutter div.error")
        notes = browser.driver.find_elements(By.CSS_SELECTOR, "#dp-messages div.error")
        if len(gutter) != 1 or len(notes) != 1:
            return None
        return str(gutter[0].get_attribute("data-line")), str(notes[0].get_attribute("title"))

    return browser.wait(marked)


def test_a_mistake_is_shown_at_its_line_and_the_plan_before_stays(
    browser: Browser, server: ServerProcess
) -> None:
    """Validate marks the unknown verb's line; Upload is refused (422) with the same mark and
    the reason in the banner; the server keeps the version before, on disk and in force."""
    old_version = hashlib.sha256(IN_FORCE.encode()).hexdigest()[:12]
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "dialplans", "dp-list")
    row = browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-dialplan="{CALLED}"]'))
    assert old_version in row.text
    row.find_element(By.CSS_SELECTOR, "button[data-open]").click()
    text = browser.wait(lambda d: d.find_element(By.ID, "dp-text"))
    browser.wait(lambda d: text.get_attribute("value") == IN_FORCE)
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(MISTAKEN)
    assert text.get_attribute("value") == MISTAKEN
    browser.driver.find_element(By.ID, "dp-validate").click()
    line, message = _error_line(browser)
    assert line == str(MISTAKE_LINE)
    assert "forwrad" in message
    browser.screenshot("validated-with-error")
    browser.driver.find_element(By.ID, "dp-upload").click()
    refused = browser.wait(lambda d: banner(d))
    assert "stays in force" in refused
    assert old_version in refused
    assert _error_line(browser)[0] == str(MISTAKE_LINE)
    browser.screenshot("upload-refused")
    status, plan = api(server, "GET", f"/api/dialplans/{CALLED}", OPERATOR)
    assert (status, plan["version"], plan["text"]) == (200, old_version, IN_FORCE)
    assert (server.data_dir.parent / "dialplans" / f"{CALLED}.yaml").read_text() == IN_FORCE


def test_a_corrected_plan_uploads_and_is_in_force(browser: Browser, server: ServerProcess) -> None:
    """The same plan without the mistake uploads: no mark left, the new version in force."""
    fixed = IN_FORCE.replace("0.5s", "1s")
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "dialplans", "dp-list")
    browser.click(f'button[data-open="{OTHER}"]')
    text = browser.wait(lambda d: d.find_element(By.ID, "dp-text"))
    browser.wait(lambda d: text.get_attribute("value") == IN_FORCE)
    text.send_keys(Keys.CONTROL, "a")
    text.send_keys(fixed)
    browser.driver.find_element(By.ID, "dp-upload").click()
    version = hashlib.sha256(fixed.encode()).hexdigest()[:12]
    said = browser.wait(lambda d: d.find_element(By.ID, "dp-status").text)
    assert f"version {version} is in force" in said
    assert browser.driver.find_elements(By.CSS_SELECTOR, "#dp-gutter div.error") == []
    browser.screenshot("uploaded")
    assert api(server, "GET", f"/api/dialplans/{OTHER}", OPERATOR)[1]["version"] == version


def test_a_new_dialplan_is_loaded_from_a_file_and_uploaded(
    browser: Browser, server: ServerProcess, tmp_path: Path
) -> None:
    """A number without a dialplan: New opens an empty editor, a YAML file from the computer
    fills it, Upload writes it and the list shows it in force."""
    plan = IN_FORCE.replace("0.5s", "2s")
    source = tmp_path / "new-plan.yaml"
    source.write_text(plan)
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "dialplans", "dp-list")
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-dialplan="{CALLED}"]'))
    browser.driver.find_element(By.ID, "dp-new-name").send_keys(NEW)
    browser.driver.find_element(By.ID, "dp-new-open").click()
    assert browser.wait(lambda d: d.find_element(By.ID, "dp-name")).text == NEW
    browser.driver.find_element(By.ID, "dp-file").send_keys(str(source))
    text = browser.driver.find_element(By.ID, "dp-text")
    browser.wait(lambda d: text.get_attribute("value") == plan)
    browser.driver.find_element(By.ID, "dp-upload").click()
    version = hashlib.sha256(plan.encode()).hexdigest()[:12]
    browser.wait(
        lambda d: f"version {version} is in force" in d.find_element(By.ID, "dp-status").text
    )
    row = browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-dialplan="{NEW}"]'))
    assert version in row.text
    browser.screenshot("new-from-file")
    assert (server.data_dir.parent / "dialplans" / f"{NEW}.yaml").read_text() == plan
