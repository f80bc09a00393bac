"""/api/dialplans on a real port over an in-process server with its dialplans in a tmp dir:
scoping by the customer owning the number, validation by the loader, atomic uploads."""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from structlog.testing import capture_logs
from yarl import URL

from callserver.admin.dialplans_api import DialplansApi, number_owners
from callserver.admin.server import AdminServer
from callserver.app import Server
from callserver.dialplan.compiler import plan_version
from tests.admin.in_process import PLANS, in_process_server
from tests.admin.tokens import ACME, GLOBEX, OPERATOR, TOKEN_SETTINGS
from tests.dialplan.test_corpus import BAD, VERBS

CORPUS = Path(__file__).resolve().parents[1] / "dialplans"
TRUNKS = {
    "customers": {
        "acme": {"numbers": ["+38733100200", "+38733100201"]},  # 201 has no dialplan yet
        "globex": {"numbers": ["+38780050050"]},
    },
    "trunks": {"local": {"match": ["127.0.0.1"]}},
}
ACME_PLAN, GLOBEX_PLAN, NOBODYS = "38733100200", "38780050050", "38790291100"
PINNED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)  # the clock naming the kept files
ANY_VERB = "unknown verb {!r} (the verbs are " + VERBS + ")"
NEW_TEXT = "language: en\nsteps:\n  hello:\n    play: greeting\n  bye:\n    hangup:\n"


@dataclass
class Admin:
    server: Server
    admin: AdminServer
    directory: Path
    session: aiohttp.ClientSession

    async def request(
        self, method: str, path: str, token: str = OPERATOR, body: object = None
    ) -> tuple[int, Any]:
        url = URL(f"http://127.0.0.1:{self.admin.port}{path}", encoded=True)
        headers = {"Authorization": f"Bearer {token}"}
        async with self.session.request(method, url, headers=headers, json=body) as response:
            return response.status, json.loads(await response.read())

    def version_in_force(self, name: str) -> str:
        return self.server.routing.dialplans.plans.plans[name].version


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Admin]:
    """The shipped dialplans copied to tmp, acme and globex owning one each, a pinned clock."""
    directory = tmp_path / "dialplans"
    shutil.copytree(PLANS, directory)
    trunks = tmp_path / "trunks.yaml"
    trunks.write_text(yaml.safe_dump(TRUNKS))
    settings = {
        "trunks": trunks,
        "centrex": tmp_path / "centrex.yaml",  # none
        "admin": {"listen": "127.0.0.1:0", "tokens": TOKEN_SETTINGS},
    }
    server, _ = in_process_server(tmp_path, directory, settings)
    assert len(server.routing.dialplans.plans) == 4
    owners = lambda: number_owners(server.admission.table.config.customers)  # noqa: E731
    admin = AdminServer(
        tokens=lambda: server.settings.admin.tokens,
        ready=lambda: _nothing(),
        resources=[DialplansApi(server.routing.dialplans, owners, wall=PINNED.timestamp)],
    )
    assert await admin.start("127.0.0.1", 0)
    async with aiohttp.ClientSession() as session:
        yield Admin(server, admin, directory, session)
    await admin.close()


async def _nothing() -> list[str]:
    return []


def _loader_line(error: dict[str, Any]) -> str:
    """An API error as the loader's line: ``file:line: field: message``."""
    field = "" if error["field"] is None else f" {error['field']}:"
    return f"{error['file']}:{error['line']}:{field} {error['message']}"


async def test_the_list_is_scoped_by_the_customer_owning_each_number(api: Admin) -> None:
    """The operator lists every file with its owner and version in force; a customer its own."""
    status, data = await api.request("GET", "/api/dialplans")
    assert status == 200
    listed = {d["name"]: d for d in data["dialplans"]}
    assert sorted(listed) == sorted([ACME_PLAN, GLOBEX_PLAN, NOBODYS, "default"])
    acme = listed[ACME_PLAN]
    assert (acme["customer"], acme["file"]) == ("acme", str(api.directory / f"{ACME_PLAN}.yaml"))
    assert acme["version"] == api.version_in_force(ACME_PLAN)
    assert acme["modified"].endswith("Z")
    assert (listed[NOBODYS]["customer"], listed["default"]["customer"]) == (None, None)
    _, mine = await api.request("GET", "/api/dialplans", ACME)
    assert [d["name"] for d in mine["dialplans"]] == [ACME_PLAN]
    _, theirs = await api.request("GET", "/api/dialplans", GLOBEX)
    assert [d["name"] for d in theirs["dialplans"]] == [GLOBEX_PLAN]


async def test_a_customer_reads_its_own_dialplan_and_no_other(api: Admin) -> None:
    """acme reads its file's text and version; globex's, the operator's and none are 404."""
    status, data = await api.request("GET", f"/api/dialplans/{ACME_PLAN}", ACME)
    assert status == 200
    assert data["text"] == (api.directory / f"{ACME_PLAN}.yaml").read_text()
    assert (data["name"], data["version"]) == (ACME_PLAN, api.version_in_force(ACME_PLAN))
    for name in (GLOBEX_PLAN, NOBODYS, "default", "38733100201"):
        status, data = await api.request("GET", f"/api/dialplans/{name}", ACME)
        assert status == 404, name
        assert data["error"] == f"no dialplan {name}: GET /api/dialplans lists yours"
    status, data = await api.request("GET", "/api/dialplans/default")
    assert (status, data["version"]) == (200, api.version_in_force("default"))


async def test_a_good_text_is_valid_and_a_bad_one_has_the_loaders_errors(api: Admin) -> None:
    """validate answers the loader's verdict, each error with file, line and field; nothing
    is written."""
    before = (api.directory / f"{ACME_PLAN}.yaml").read_bytes()
    path = f"/api/dialplans/{ACME_PLAN}/validate"
    status, data = await api.request("POST", path, ACME, {"text": NEW_TEXT})
    assert status == 200
    assert (data["valid"], data["errors"]) == (True, [])
    assert data["version"] == plan_version(NEW_TEXT.encode())
    file = str(api.directory / f"{ACME_PLAN}.yaml")
    for mistake in ("unknown-verb", "yaml-syntax", "unknown-step", "bad-timezone"):
        bad = (CORPUS / "bad" / f"{mistake}.yaml").read_text()
        status, data = await api.request("POST", path, ACME, {"text": bad})
        assert (status, data["valid"]) == (200, False)
        assert [_loader_line(e) for e in data["errors"]] == [file + m for m in BAD[mistake]]
    _, data = await api.request("POST", path, ACME, {"text": "steps:\n  a:\n    paly: x\n"})
    assert data["errors"] == [
        {"file": file, "line": 2, "field": "steps.a", "message": ANY_VERB.format("paly")}
    ]
    _, data = await api.request("POST", path, ACME, {"text": "steps: [\n"})
    [error] = data["errors"]
    assert (error["file"], error["line"], error["field"]) == (file, 2, None)
    assert error["message"].startswith("not valid YAML: ")
    assert (api.directory / f"{ACME_PLAN}.yaml").read_bytes() == before
    assert not (api.directory / ".previous").exists()


async def test_a_bad_upload_is_422_and_the_version_in_force_stays(api: Admin) -> None:
    """The file is untouched, no copy is kept, and the plan in force is the one before."""
    file = api.directory / f"{ACME_PLAN}.yaml"
    before, version = file.read_bytes(), api.version_in_force(ACME_PLAN)
    bad = (CORPUS / "bad" / "unknown-step.yaml").read_text()
    status, data = await api.request("PUT", f"/api/dialplans/{ACME_PLAN}", ACME, {"text": bad})
    assert status == 422
    assert f"nothing was written and version {version} stays in force" in data["error"]
    assert data["errors"] and all(e["file"] == str(file) for e in data["errors"])
    assert all(isinstance(e["line"], int) and e["field"] for e in data["errors"])
    assert file.read_bytes() == before
    assert not (api.directory / ".previous").exists()
    assert sorted(p.name for p in api.directory.iterdir()) == sorted(
        p.name for p in PLANS.iterdir()
    )
    plan = api.server.routing.dialplans.plan_for("+387 33 100 200")
    assert plan is not None and plan.version == version and "screen" in plan.steps


async def test_a_good_upload_is_in_force_at_once_and_the_old_file_kept(api: Admin) -> None:
    """200 with the new version; the plan a new call gets is the new one; the old bytes are
    under .previous named with the time and their version; the audit log names the token."""
    file = api.directory / f"{ACME_PLAN}.yaml"
    before = file.read_bytes()
    with capture_logs() as logs:
        status, data = await api.request(
            "PUT", f"/api/dialplans/{ACME_PLAN}", ACME, {"text": NEW_TEXT}
        )
    assert status == 200, data
    version = plan_version(NEW_TEXT.encode())
    kept = api.directory / ".previous" / f"{ACME_PLAN}.20260304T050607Z.{plan_version(before)}.yaml"
    assert data == {"name": ACME_PLAN, "file": str(file), "version": version, "previous": str(kept)}
    assert file.read_text() == NEW_TEXT
    assert kept.read_bytes() == before
    plan = api.server.routing.dialplans.plan_for("+387 33 100 200")
    assert plan is not None and (plan.version, list(plan.steps)) == (version, ["hello", "bye"])
    assert plan.source == str(file)
    assert [p.name for p in api.directory.iterdir() if p.suffix == ".tmp"] == []
    audit = [e for e in logs if e["event"] == "admin.audit"]
    assert audit == [
        {
            "event": "admin.audit",
            "log_level": "info",
            "token": "acme-portal",
            "role": "customer",
            "method": "PUT",
            "path": f"/api/dialplans/{ACME_PLAN}",
            "status": 200,
        }
    ]
    [uploaded] = [e for e in logs if e["event"] == "admin.dialplan_uploaded"]
    assert (uploaded["token"], uploaded["version"]) == ("acme-portal", version)
    status, listed = await api.request("GET", "/api/dialplans", ACME)
    assert [d["version"] for d in listed["dialplans"]] == [version]


@pytest.mark.parametrize(
    "name", ["..", ".hidden", "38733100200.yaml", "..%2F..%2Fetc%2Fpasswd", "a%2Fb", "a%00b"]
)
async def test_a_name_that_is_not_a_plain_file_stem_is_400(api: Admin, name: str) -> None:
    """Dots, slashes (encoded) and other characters never reach the file system."""
    for method, path in (
        ("GET", f"/api/dialplans/{name}"),
        ("PUT", f"/api/dialplans/{name}"),
        ("POST", f"/api/dialplans/{name}/validate"),
    ):
        status, data = await api.request(method, path, body={"text": NEW_TEXT})
        assert status == 400, (method, path, data)
        assert "is not a dialplan name" in data["error"]
    assert not (api.directory.parent / "etc").exists()
    assert not (api.directory / ".previous").exists()


async def test_customer_writes_are_scoped_and_new_numbers_unowned_need_an_operator(
    api: Admin,
) -> None:
    """acme: another customer's plan is 404, an unowned number's or default's 403; its own
    number without a plan may be created. The operator creates one for an unowned number."""
    body = {"text": NEW_TEXT}
    for method, path in (("PUT", "/api/dialplans/{}"), ("POST", "/api/dialplans/{}/validate")):
        status, data = await api.request(method, path.format(GLOBEX_PLAN), ACME, body)
        assert status == 404, (method, data)
        for name in (NOBODYS, "default", "38733100999"):
            status, data = await api.request(method, path.format(name), ACME, body)
            assert status == 403, (method, name, data)
            assert "needs an operator token" in data["error"]
    assert api.version_in_force(GLOBEX_PLAN) != plan_version(NEW_TEXT.encode())
    status, data = await api.request("PUT", "/api/dialplans/38733100201", ACME, body)
    assert (status, data["previous"]) == (200, None)
    status, data = await api.request("PUT", "/api/dialplans/38733100999", OPERATOR, body)
    assert (status, data["previous"]) == (200, None)
    assert api.version_in_force("38733100999") == plan_version(NEW_TEXT.encode())
    assert (api.directory / "38733100999.yaml").read_text() == NEW_TEXT


async def test_a_name_that_is_no_number_is_the_loaders_422_and_a_bad_body_400(
    api: Admin,
) -> None:
    """The loader names a file stem that is not E.164; a body without text is 400."""
    status, data = await api.request("PUT", "/api/dialplans/sales", body={"text": NEW_TEXT})
    assert status == 422
    assert [e["field"] for e in data["errors"]] == ["(file name)"]
    assert not (api.directory / "sales.yaml").exists()
    for body in ({"yaml": NEW_TEXT}, [NEW_TEXT], {"text": 5}):
        status, data = await api.request("PUT", f"/api/dialplans/{ACME_PLAN}", body=body)
        assert status == 400
        assert '{"text":' in data["error"]


async def test_a_text_that_is_no_unicode_is_400_and_nothing_is_written(api: Admin) -> None:
    """A JSON text holding a lone surrogate (\\ud800) cannot be a file's UTF-8: 400 saying
    so, for a validation and an upload alike, not a 500; the file is unchanged."""
    before = (api.directory / f"{ACME_PLAN}.yaml").read_bytes()
    for method, path in (
        ("POST", f"/api/dialplans/{ACME_PLAN}/validate"),
        ("PUT", f"/api/dialplans/{ACME_PLAN}"),
    ):
        status, data = await api.request(method, path, body={"text": "steps: \ud800\n"})
        assert status == 400 and "UTF-8" in data["error"], data
    assert (api.directory / f"{ACME_PLAN}.yaml").read_bytes() == before
