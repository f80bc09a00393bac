"""The OpenAPI document of a whole server's admin API names exactly the routes it serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from callserver.admin.openapi_document import FRAGMENTS, openapi_document
from callserver.admin.server import open_admin
from tests.admin.in_process import PLANS, in_process_server
from tests.admin.routes import METHODS, served_routes


async def test_the_document_names_every_route_of_the_server_and_no_other(tmp_path: Path) -> None:
    """Every (path, method) the running admin server serves is documented, and nothing more."""
    server, _ = in_process_server(tmp_path, PLANS)
    admin = await open_admin(server)
    assert admin is not None
    try:
        document = openapi_document()
        documented = {
            (p, method)
            for p, item in document["paths"].items()
            for method in item
            if method in METHODS
        }
        assert documented == served_routes(admin.app)
    finally:
        await admin.close()


def test_a_path_named_by_two_fragments_is_refused(tmp_path: Path) -> None:
    """Two fragments describing one path is a packaging mistake, named with its file."""
    for fragment in FRAGMENTS.glob("*.json"):
        (tmp_path / fragment.name).write_text(fragment.read_text())
    (tmp_path / "zz.json").write_text('{"paths": {"/healthz": {}}}')
    with pytest.raises(ValueError, match=r"zz\.json: path /healthz is already in the document"):
        openapi_document(tmp_path)
