"""``PortalResource``: the portal's page shells under ``/portal/`` and its static files under
``/portal/static/``, and ``/`` and ``/portal`` sent on to ``/portal/``.

A shell is one HTML template (``shell.html``) with the page's title, the shared navigation and
the page's own script module; it holds no data, so it is served without a token (``is_public``
tells the server's token check). Files are read from the package once, in a worker thread, and
kept. Every answer carries a Content-Security-Policy that lets the pages load only this
server's scripts and styles and talk only to this server: data put into a page can never run.
"""

from __future__ import annotations

import asyncio
import html
from pathlib import Path
from string import Template

from aiohttp import web

__all__ = ["PAGES", "PUBLIC_PATHS", "PortalResource", "is_public"]

DIRECTORY = Path(__file__).parent
STATIC = DIRECTORY / "static"

# Each page: its path under /portal/ ("" is the login page) and its title, in the nav's order.
PAGES: dict[str, str] = {
    "": "Log in",
    "dashboard": "Dashboard",
    "calls": "Live calls",
    "cdrs": "Call records",
    "wallboard": "Queue wallboard",
    "dialplans": "Dialplans",
    "recordings": "Recordings",
    "package": "Package",
    "softphone": "Softphone",
}
PUBLIC_PATHS = frozenset({"/", "/portal", *(f"/portal/{page}" for page in PAGES)})
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_STATIC_NAME = r"[a-z0-9_-]+\.(?:js|css|svg)"
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_public(path: str) -> bool:
    """True for the paths served without a token: ``/``, ``/portal``, the shells and the
    static files."""
    return path in PUBLIC_PATHS or path.startswith("/portal/static/")


class PortalResource:
    """The handlers of ``/``, ``/portal/<page>`` and ``/portal/static/<file>``."""

    def __init__(self, directory: Path = DIRECTORY) -> None:
        """``directory`` holds ``shell.html`` and ``static/`` (the package's by default)."""
        self._directory = directory
        self._files: dict[str, bytes] = {}

    def add_routes(self, router: web.UrlDispatcher) -> None:
        """GET ``/`` and ``/portal`` (redirects), one GET per page, and GET of a static file
        by name."""
        router.add_get("/", self.root)
        router.add_get("/portal", self.root)
        for page in PAGES:
            router.add_get(f"/portal/{page}", self.shell)
        router.add_get("/portal/static/{name:" + _STATIC_NAME + "}", self.static)

    async def root(self, request: web.Request) -> web.StreamResponse:
        """The portal is the admin server's front page (and its login page's path ends in
        '/')."""
        raise web.HTTPFound("/portal/")

    async def shell(self, request: web.Request) -> web.Response:
        """The page's shell: its title, the navigation and its script; no data."""
        page = request.path.removeprefix("/portal/")
        template = Template((await self._read("shell.html")).decode())
        body = template.substitute(
            title=html.escape(PAGES[page]),
            page=page or "login",
            nav=_nav(page),
        )
        return web.Response(text=body, content_type="text/html", headers=HEADERS)

    async def static(self, request: web.Request) -> web.Response:
        """One of the package's static files, else 404."""
        name = request.match_info["name"]
        try:
            body = await self._read(f"static/{name}")
        except FileNotFoundError:
            raise web.HTTPNotFound(
                text=f"no portal file {name}: the pages load theirs from /portal/static/"
            ) from None
        content_type = _TYPES[Path(name).suffix]
        return web.Response(body=body, content_type=content_type, headers=HEADERS)

    async def _read(self, name: str) -> bytes:
        """A file of the portal's directory, read once in a worker thread."""
        body = self._files.get(name)
        if body is None:
            body = await asyncio.to_thread((self._directory / name).read_bytes)
            self._files[name] = body
        return body


def _nav(current: str) -> str:
    """The shared navigation: a link per page, the current one marked."""
    links = []
    for page, title in PAGES.items():
        if not page:
            continue
        mark = ' aria-current="page"' if page == current else ""
        links.append(f'<a href="/portal/{page}"{mark}>{html.escape(title)}</a>')
    return "\n      ".join(links)
