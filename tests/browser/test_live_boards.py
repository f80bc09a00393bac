"""The portal's queue wallboard and dashboard in Chromium against a real `callserver run`: a
SIPp caller waiting in acme's queue (its agent logged in, its phone not registered) shows on
the wallboard, and the dashboard shows the call in progress, its channel and the chart."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest
from selenium.webdriver.common.by import By

from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import ACME, ADMIN, GLOBEX, OPERATOR, log_in, open_page
from tests.e2e.conftest import ServerProcess, plan_dir, start_server
from tests.e2e.rtp_party import RtpParty, tone_party
from tests.e2e.subscribers import CALLING, write_group
from tests.e2e.test_queue_calls import PLAN, QUEUE_NUMBER, logged_in, queue_caller
from tests.e2e.transfers import reap

# The callers' trunk is acme's, so a call holds one of acme's channels.
TRUNKS = {
    **CALLING,
    "trunks": {"acme-pbx": {"match": ["127.0.0.1"], "customer": "acme"}},
    "customers": {"acme": {"agents": 2, "channels": 4}, "globex": {}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`callserver run` with acme's queue ``support`` (agent 201 logged in, its phone not
    registered: a caller waits until the queue's maximum wait)."""
    tmp_path = tmp_path_factory.mktemp("portal-boards")
    write_group(tmp_path)
    logged_in(tmp_path, "201")
    plan = PLAN.format(max_wait="60s", strategy="longest_idle", ring_timeout="10s")
    plans = plan_dir(tmp_path, QUEUE_NUMBER, plan)
    process = start_server(tmp_path, trunks=TRUNKS, dialplans=plans, admin=ADMIN)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def waiting(
    sipp: str, server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[subprocess.Popen[str]]:
    """A SIPp caller in the queue for the module's tests (it would leave after 30 s)."""
    rtp: RtpParty = tone_party(300.0)
    caller = queue_caller(
        sipp, tmp_path_factory.mktemp("caller"), server, rtp, 30000, "+38761000001"
    )
    yield caller
    reap([caller])
    rtp.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with headless_chromium("boards") as running:
        yield running


def _figure(browser: Browser, queue: str, name: str, wanted: str) -> None:
    """Wait until the wallboard's ``name`` figure of ``queue`` reads ``wanted``."""
    css = f'[data-queue="{queue}"] [data-figure="{name}"] .value'
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, css).text == wanted)


def test_the_wallboard_shows_the_waiting_caller_by_customer(
    browser: Browser, server: ServerProcess, waiting: subprocess.Popen[str]
) -> None:
    """The operator and acme see support's caller waiting (its wait growing) and agent 201;
    globex sees no queue."""
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "wallboard", "wb-queues")
    _figure(browser, "support", "waiting", "1")
    browser.wait(
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, '[data-queue="support"] [data-figure="longest_wait"] .value'
            ).text
            not in ("0:00", "\u2013")
        )
    )
    agent = browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#wb-agents tr[data-agent]"))
    assert "201" in agent.text
    browser.screenshot("wallboard-operator")
    log_in(browser, server, ACME)
    open_page(browser, server, "wallboard", "wb-queues")
    _figure(browser, "support", "waiting", "1")
    browser.screenshot("wallboard-customer")
    log_in(browser, server, GLOBEX)
    open_page(browser, server, "wallboard", "wb-queues")
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#wb-queues .hint").text == "no queue")
    assert browser.driver.find_elements(By.CSS_SELECTOR, "[data-queue]") == []
    browser.screenshot("wallboard-other-customer")


def test_the_dashboard_shows_the_call_its_channel_and_the_chart(
    browser: Browser, server: ServerProcess, waiting: subprocess.Popen[str]
) -> None:
    """The operator's dashboard: one call in progress, acme's pool holding 1 of its 4 bought
    channels, a call rate measured, and the chart drawn with acme's line at 1."""
    log_in(browser, server, OPERATOR)
    open_page(browser, server, "dashboard", "dash-tiles")
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#calls-in-progress .value").text == "1")
    pool = browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-pool="customer:acme"]'))
    assert "1 / 4" in pool.text
    browser.wait(lambda d: d.find_element(By.CSS_SELECTOR, "#calls-per-second .value").text != "…")
    browser.wait(lambda d: "acme: 1" in d.find_element(By.ID, "chart-legend").text)
    drawn = browser.driver.execute_script(
        "const c = document.getElementById('channels-chart');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;"
    )
    assert drawn > 1000, "the chart drew nothing"
    browser.screenshot("dashboard-operator")
