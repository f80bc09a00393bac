"""What the browser tests do on the portal: log in with a token, open a page, wait for it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

from callserver.config.admin import token_digest
from tests.browser.chromium import Browser
from tests.e2e.conftest import HOST, ServerProcess

OPERATOR, ACME, GLOBEX = "noc-token-portal", "acme-token-portal", "globex-token-portal"
ADMIN: dict[str, object] = {
    "tokens": [
        {"name": "noc", "role": "operator", "sha256": token_digest(OPERATOR)},
        {"name": "acme", "role": "customer", "customer": "acme", "sha256": token_digest(ACME)},
        {
            "name": "globex",
            "role": "customer",
            "customer": "globex",
            "sha256": token_digest(GLOBEX),
        },
    ]
}


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


def api_request(
    server: ServerProcess, path: str, token: str = OPERATOR, method: str = "GET"
) -> tuple[int, Any]:
    """The status and JSON answer of a request to ``server``'s admin API (the test's own look,
    beside the page's)."""
    port = server.wait_for("admin.listening")["port"]
    request = urllib.request.Request(f"http://{HOST}:{port}{path}", method=method)
    request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
