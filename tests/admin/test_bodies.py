"""Every JSON body of the admin API's writes is read one way (``admin.bodies.json_object``): a
body that is not UTF-8, not JSON or not an object is 400 saying what to send, never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.admin.provisioned import provisioned
from tests.admin.tokens import OPERATOR

WRITES = [
    ("PUT", "/api/dialplans/38733100200"),
    ("POST", "/api/dialplans/38733100200/validate"),
    ("POST", "/api/agents/+38733100201/pause"),
    ("POST", "/api/originate"),
    ("POST", "/api/campaigns"),
    ("PATCH", "/api/subscribers/+38733100201/services"),
]
JSON = "application/json"
BAD = [
    (b'{"text": ', JSON, "the body is not JSON (Expecting value at line 1 column 10)"),
    (b'{"text": "\xff"}', JSON, "the body is not UTF-8 text (byte 10)"),
    (b'["text"]', JSON, "the body is an array, not a JSON object"),
    (b"null", JSON, "the body is null, not a JSON object"),
    (b"[" * 100_000, JSON, "the body is not JSON we read (nested too deeply)"),
    (b'{"text"', "application/json; charset=klingon", "the body is not JSON (Expecting ':'"),
    (b"{" + b'"n": 1' + b"0" * 5000 + b"}", JSON, "the body is not JSON we read (Exceeds"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
async def test_a_body_that_is_no_json_object_is_400_saying_what_to_send(
    tmp_path: Path, method: str, path: str
) -> None:
    """Each bad body is 400 naming what is wrong with it and the object to send."""
    async with provisioned(tmp_path) as api:
        url = f"http://127.0.0.1:{api.admin.port}{path}"
        for data, content_type, wrong in BAD:
            headers = {"Authorization": f"Bearer {OPERATOR}", "Content-Type": content_type}
            async with api.session.request(method, url, headers=headers, data=data) as answer:
                status, error = answer.status, (await answer.json())["error"]
            assert (status, error.startswith(wrong)) == (400, True), (data[:20], error)
            assert ": send a JSON object " in error, error


@pytest.mark.parametrize(("method", "path"), [w for w in WRITES if "/agents/" not in w[1]])
async def test_an_empty_body_is_400_where_a_body_is_needed(
    tmp_path: Path, method: str, path: str
) -> None:
    """No body at all is 400 where the request needs one (an agent's action needs none)."""
    async with provisioned(tmp_path) as api:
        status, data = await api.request(method, path, body=b"")
    assert (status, data["error"].startswith("the body is empty: send a JSON object ")) == (
        400,
        True,
    ), data
