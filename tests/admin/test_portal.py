"""The web portal's shells and files on a real port: no token needed, no data in them, a
strict Content-Security-Policy, and ``/api/whoami`` answering each token's role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import aiohttp
import pytest

from callserver.admin.portal import PAGES
from callserver.admin.portal.resource import STATIC, PortalResource
from callserver.admin.server import AdminServer
from callserver.admin.session_api import SessionApi
from callserver.config.admin import AdminToken, token_digest

OPERATOR, ACME = "operator-secret", "acme-secret"
TOKENS = (
    AdminToken(name="noc", role="operator", sha256=token_digest(OPERATOR)),
    AdminToken(name="acme-portal", role="customer", customer="acme", sha256=token_digest(ACME)),
)


async def _ready() -> list[str]:
    return []


@pytest.fixture
async def portal() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    """An admin server with the portal and the session resource on a free loopback port."""
    server = AdminServer(
        tokens=lambda: TOKENS, ready=_ready, resources=[SessionApi(), PortalResource()]
    )
    assert await server.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield session, f"http://127.0.0.1:{server.port}"
    await server.close()


async def test_every_page_shell_is_served_without_a_token(
    portal: tuple[aiohttp.ClientSession, str],
) -> None:
    """Each page is HTML with its title, the shared nav and its own script, and no token."""
    session, url = portal
    for page, title in PAGES.items():
        async with session.get(f"{url}/portal/{page}") as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
            body = await response.text()
        assert f"<title>{title} · callserver</title>" in body
        assert f'src="/portal/static/{page or "login"}.js"' in body
        assert "$" not in body  # every placeholder of the template filled
        assert body.count('<a href="/portal/') == len(PAGES) - 1  # a link to every other page


async def test_the_root_is_sent_on_to_the_portal(portal: tuple[aiohttp.ClientSession, str]) -> None:
    """GET / and GET /portal answer 302 to /portal/ without a token."""
    session, url = portal
    for path in ("/", "/portal"):
        async with session.get(f"{url}{path}", allow_redirects=False) as response:
            assert (response.status, response.headers["Location"]) == (302, "/portal/")


async def test_static_files_have_their_types_and_others_are_json_404(
    portal: tuple[aiohttp.ClientSession, str],
) -> None:
    """A script, the style sheet and the icon with their types; a missing file or a path out
    of the directory is a JSON 404, and the API still wants its token."""
    session, url = portal
    for name, content_type in (
        ("api.js", "text/javascript"),
        ("portal.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        async with session.get(f"{url}/portal/static/{name}") as response:
            assert (response.status, response.content_type) == (200, content_type)
            assert await response.read() == (STATIC / name).read_bytes()
    async with session.get(f"{url}/portal/static/nothing.js") as response:
        assert response.status == 404
        assert "no portal file nothing.js" in (await response.json())["error"]
    async with session.get(f"{url}/portal/static/..%2Fshell.html") as response:
        assert response.status == 404
    async with session.get(f"{url}/portal/static/../../api/whoami") as response:
        assert response.status == 401


async def test_whoami_answers_the_tokens_role_and_customer(
    portal: tuple[aiohttp.ClientSession, str],
) -> None:
    """The operator's token is an operator without a customer; acme's is acme's; none is 401."""
    session, url = portal
    expected = {
        OPERATOR: {"name": "noc", "role": "operator", "customer": None},
        ACME: {"name": "acme-portal", "role": "customer", "customer": "acme"},
    }
    for token, whoami in expected.items():
        headers = {"Authorization": f"Bearer {token}"}
        async with session.get(f"{url}/api/whoami", headers=headers) as response:
            assert (response.status, await response.json()) == (200, whoami)
    async with session.get(f"{url}/api/whoami") as response:
        assert response.status == 401


def test_the_pages_put_data_into_the_dom_only_as_text() -> None:
    """No script of the portal writes HTML from a string (innerHTML and the like), and every
    page's script is shipped."""
    html_sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for script in STATIC.glob("*.js"):
        assert not html_sinks.search(script.read_text()), script.name
    for page in PAGES:
        assert (STATIC / f"{page or 'login'}.js").is_file(), page
