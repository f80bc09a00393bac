"""The JSON bodies of the API's writes, read one way: a bad one is 400 saying what to send.

A body is UTF-8 JSON text (RFC 8259 §8.1: "JSON text exchanged between systems that are not
part of a closed ecosystem MUST be encoded using UTF-8"), so a ``charset`` the request's
Content-Type names is not used to decode it. Each resource checks its own fields afterwards.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["json_object"]

_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
}


async def json_object(request: web.Request, what: str, *, optional: bool = False) -> dict[str, Any]:
    """The request's body, a JSON object; 400 naming what is wrong and what to send.

    Args:
        request: the request whose body is read.
        what: the body to send, as the 400 shows it (``'{"file": "spring.yaml"}'``).
        optional: an empty body is ``{}`` rather than a 400.

    Raises:
        web.HTTPBadRequest: the body is empty (unless ``optional``), not UTF-8, not JSON, or
            JSON that is not an object.
    """
    data = await request.read()
    send = f"send a JSON object {what}"
    if not data.strip():
        if optional:
            return {}
        raise web.HTTPBadRequest(text=f"the body is empty: {send}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise web.HTTPBadRequest(
            text=f"the body is not UTF-8 text (byte {exc.start}): {send}, encoded in UTF-8"
        ) from None
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"{exc.msg} at line {exc.lineno} column {exc.colno}"
        raise web.HTTPBadRequest(text=f"the body is not JSON ({where}): {send}") from None
    except (ValueError, RecursionError) as exc:  # an integer too long; arrays nested too deep
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise web.HTTPBadRequest(text=f"the body is not JSON we read ({why}): {send}") from None
    if not isinstance(body, dict):
        kind = "null" if body is None else _KINDS.get(type(body), "not an object")
        raise web.HTTPBadRequest(text=f"the body is {kind}, not a JSON object: {send}")
    return body
