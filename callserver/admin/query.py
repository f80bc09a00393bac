"""Query parameters of the admin API, checked: a parameter a path does not take is a 400
naming the ones it does, so a typing mistake never passes as "no filter"."""

from __future__ import annotations

from collections.abc import Collection

from aiohttp import web

__all__ = ["choice", "only_parameters"]


def only_parameters(request: web.Request, allowed: Collection[str]) -> None:
    """Nothing else but ``allowed`` in the request's query; else 400 naming them."""
    unknown = sorted(set(request.query) - set(allowed))
    if unknown:
        takes = ", ".join(sorted(allowed)) or "no parameter"
        raise web.HTTPBadRequest(
            text=f"unknown query parameter {unknown[0]!r}: {request.path} takes {takes}"
        )


def choice(request: web.Request, name: str, choices: Collection[str]) -> str | None:
    """The value of parameter ``name``, one of ``choices``; None when it is not given; else
    400 naming the expected values."""
    value = request.query.get(name)
    if value is None or value in choices:
        return value
    expected = ", ".join(sorted(choices))
    raise web.HTTPBadRequest(text=f"{name}={value!r} is not one of: {expected}")
