"""The web portal's shells and files on a real port: no token needed, no data in them, a
strict Content-Security-Policy, and ``/api/whoami`` answering each token's role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from callserver.admin.portal import PAGES
from callserver.admin.portal.resource import STATIC, PortalResource
from callserver.admin.session_api import SessionApi
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, OPERATOR


@pytest.fixture
async def portal() -> AsyncIterator[Client]:
    """An admin server with the portal and the session resource on a free loopback port."""
    async with serving(SessionApi(), PortalResource()) as client:
        yield client


async def test_every_page_shell_is_served_without_a_token(portal: Client) -> None:
    """Each page is HTML with its title, the shared nav and its own script, and no token."""
    for page, title in PAGES.items():
        answer = await portal.get(f"/portal/{page}", token=None)
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in answer.headers["Content-Security-Policy"]
        body = answer.body.decode()
        assert f"<title>{title} · callserver</title>" in body
        assert f'src="/portal/static/{page or "login"}.js"' in body
        assert "$" not in body  # every placeholder of the template filled
        assert body.count('<a href="/portal/') == len(PAGES) - 1  # a link to every other page


async def test_the_root_is_sent_on_to_the_portal(portal: Client) -> None:
    """GET / and GET /portal answer 302 to /portal/ without a token."""
    async with portal.session.get(portal.url + "/", allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "/portal/")
    async with portal.session.get(portal.url + "/portal", allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "/portal/")


async def test_static_files_have_their_types_and_others_are_json_404(portal: Client) -> None:
    """A script, the style sheet and the icon with their types; a missing file or a path out
    of the directory is a JSON 404, and the API still wants its token."""
    for name, content_type in (
        ("api.js", "text/javascript"),
        ("portal.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ):
        answer = await portal.get(f"/portal/static/{name}", token=None)
        assert (answer.status, answer.headers["Content-Type"].split(";")[0]) == (
            200,
            content_type,
        )
        assert answer.body == (STATIC / name).read_bytes()
    missing = await portal.get("/portal/static/nothing.js", token=None)
    assert missing.status == 404
    assert "no portal file nothing.js" in missing.json["error"]
    assert (await portal.get("/portal/static/..%2Fshell.html", token=None)).status == 404
    assert (await portal.get("/portal/static/../../api/whoami", token=None)).status == 401


async def test_whoami_answers_the_tokens_role_and_customer(portal: Client) -> None:
    """The operator's token is an operator without a customer; acme's is acme's; none is 401."""
    expected = {
        OPERATOR: {"name": "noc", "role": "operator", "customer": None},
        ACME: {"name": "acme-portal", "role": "customer", "customer": "acme"},
    }
    for token, whoami in expected.items():
        assert await portal.json("GET", "/api/whoami", token) == (200, whoami)
    assert (await portal.get("/api/whoami", token=None)).status == 401


def test_the_pages_put_data_into_the_dom_only_as_text() -> None:
    """No script of the portal writes HTML from a string (innerHTML and the like), and every
    page's script is shipped."""
    html_sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(")
    for script in STATIC.glob("*.js"):
        assert not html_sinks.search(script.read_text()), script.name
    for page in PAGES:
        assert (STATIC / f"{page or 'login'}.js").is_file(), page
