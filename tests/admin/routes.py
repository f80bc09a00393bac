"""The routes an admin application serves, as the OpenAPI document names them."""

from __future__ import annotations

from aiohttp import web

METHODS = frozenset({"get", "put", "post", "delete", "patch", "head", "options"})


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    """(path template, lower-case method) of every route but the HEADs aiohttp adds to GETs;
    a ``{id:.+}`` placeholder is named ``{id}`` as in OpenAPI."""
    served = set()
    for route in app.router.routes():
        if route.method == "HEAD":
            continue
        canonical = route.resource.canonical if route.resource is not None else ""
        served.add((canonical, route.method.lower()))
    return served
