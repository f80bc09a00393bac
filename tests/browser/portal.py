"""What the browser tests do on the portal: log in with a token, open a page, wait for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.admin.tokens import ACME, GLOBEX, OPERATOR
from tests.browser.chromium import Browser
from tests.e2e.admin_client import ADMIN
from tests.e2e.conftest import HOST, ServerProcess

__all__ = [
    "ACME",
    "ADMIN",
    "GLOBEX",
    "OPERATOR",
    "banner",
    "log_in",
    "open_page",
    "portal_url",
    "server_until",
]
T = TypeVar("T")


def server_until(
    server: ServerProcess, condition: Callable[[ServerProcess], T], timeout: float = 10.0
) -> T:
    """``condition(server)``'s first truthy answer (what the server wrote, its API), polled as
    the browser's waits poll the page."""
    return WebDriverWait(server, timeout, poll_frequency=0.05).until(condition)


def portal_url(server: ServerProcess, page: str = "") -> str:
    """The URL of a portal page on ``server``'s admin port."""
    port = server.wait_for("admin.listening")["port"]
    return f"http://{HOST}:{port}/portal/{page}"


def log_in(browser: Browser, server: ServerProcess, token: str) -> dict[str, str]:
    """Log in on the login page with ``token`` (any earlier session forgotten); the role and
    customer the page then shows."""
    driver = browser.driver
    driver.get(portal_url(server))
    driver.execute_script("sessionStorage.clear()")
    driver.get(portal_url(server))
    field = browser.wait(lambda d: d.find_element(By.ID, "token"))
    field.send_keys(token)
    driver.find_element(By.ID, "login-button").click()
    role = browser.wait(lambda d: d.find_element(By.ID, "session-role"))
    return {
        "name": driver.find_element(By.ID, "session-name").text,
        "role": role.text,
        "customer": driver.find_element(By.ID, "session-customer").text,
    }


def open_page(browser: Browser, server: ServerProcess, page: str, ready: str) -> WebElement:
    """Open ``page`` and wait for the element with id ``ready`` (the page has its data)."""
    browser.driver.get(portal_url(server, page))
    return browser.wait(lambda d: d.find_element(By.ID, ready))


def banner(driver: WebDriver) -> str:
    """The error banner's text ('' while hidden)."""
    element = driver.find_element(By.ID, "banner")
    return element.text if element.is_displayed() else ""
