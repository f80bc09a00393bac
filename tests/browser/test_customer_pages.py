"""The portal's pages a customer reads about itself, in Chromium against a real `callserver
run`: acme sees what it bought and uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.chromium import Browser, headless_chromium
from tests.browser.portal import ACME, ADMIN, log_in, open_page
from tests.e2e.conftest import HOST, ServerProcess, start_server

TRUNKS: dict[str, object] = {
    "customers": {"acme": {"channels": 4, "agents": 2}, "globex": {}},
    "trunks": {"acme-pbx": {"match": [HOST], "customer": "acme"}},
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """`callserver run` where acme bought 4 channels and 2 agent licences."""
    process = start_server(tmp_path_factory.mktemp("portal-customer"), trunks=TRUNKS, admin=ADMIN)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with headless_chromium("customer") as running:
        yield running


def test_a_customer_sees_its_package(browser: Browser, server: ServerProcess) -> None:
    """acme's package page shows its 4 channels and 2 agent licences, and its trunk."""
    log_in(browser, server, ACME)
    package = open_page(browser, server, "package", "package")
    assert "0 / 4" in package.text
    assert "0 / 2" in package.text
    assert "acme-pbx" in package.text
    browser.screenshot("package")
