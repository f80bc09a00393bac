"""``/api/recordings`` on a real port over real files: list, download, delete, scope, ids."""

from __future__ import annotations

import os
import wave
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from callserver.admin.recordings_api import RecordingsApi
from callserver.cdr.store import CdrStore
from callserver.commands.recordings import select
from tests.admin.serving import Client, serving
from tests.admin.tokens import ACME, GLOBEX
from tests.cdr import append_records, make_record

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def _wav(path: Path, seconds: float) -> None:
    """A mono 8 kHz 16-bit WAV of ``seconds`` of a ramp."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(8000 * seconds)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join((n % 256).to_bytes(2, "little") for n in range(frames)))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """acme's recordings of 21 and 22 November (u1's CDR ingested), globex's of the 22nd
    (written after u2), a file being written and one outside the recordings folder."""
    root = tmp_path / "recordings"
    _wav(root / "acme/2026/11/21/u1.wav", 1.5)
    _wav(root / "acme/2026/11/22/u2.wav", 0.25)
    _wav(root / "globex/2026/11/22/g1.wav", 0.5)
    for name, hour in (("acme/2026/11/21/u1", 10), ("acme/2026/11/22/u2", 9)):
        written = datetime(2026, 11, 21 + name.endswith("u2"), hour, tzinfo=UTC).timestamp()
        os.utime(root / f"{name}.wav", (written, written))
    written = datetime(2026, 11, 22, 11, tzinfo=UTC).timestamp()
    os.utime(root / "globex/2026/11/22/g1.wav", (written, written))
    _wav(root / "acme/2026/11/22/.u3.wav.part", 0.1)
    _wav(tmp_path / "secret.wav", 0.1)
    append_records(tmp_path, make_record(1, start_stamp="2026-11-21T09:00:00.000Z"))
    with CdrStore(tmp_path / "cdr.sqlite") as store:
        store.ingest(tmp_path / "cdr", report=False)
    return tmp_path


@pytest.fixture
async def api(data_dir: Path) -> AsyncIterator[Client]:
    """The recordings resource over ``data_dir``, its clock pinned."""
    async with serving(RecordingsApi(lambda: data_dir, lambda: NOW)) as client:
        yield client


def _ids(data: dict[str, list[dict[str, object]]]) -> list[object]:
    return [recording["id"] for recording in data["recordings"]]


async def test_the_operator_lists_what_callserver_recordings_lists(
    api: Client, data_dir: Path
) -> None:
    """Every published recording (not the one being written), newest first, with its CDR's
    Call-ID and start when the CDR is in cdr.sqlite."""
    data = (await api.get("/api/recordings")).json
    assert sorted(_ids(data)) == sorted(r.path.stem for r in select(data_dir))
    assert (_ids(data), data["total"], data["offset"]) == (["g1", "u2", "u1"], 3, 0)
    first = data["recordings"][2]
    assert first == {
        "id": "u1",
        "customer": "acme",
        "call_id": "c1",
        "start": "2026-11-21T09:00:00.000Z",
        "day": "2026-11-21",
        "bytes": (data_dir / "recordings/acme/2026/11/21/u1.wav").stat().st_size,
        "seconds": 1.5,
        "file": "recordings/acme/2026/11/21/u1.wav",
    }
    assert (data["recordings"][1]["call_id"], data["recordings"][1]["start"]) == (None, None)


async def test_the_list_is_paged_newest_first_with_the_total(api: Client) -> None:
    """``limit`` (1 to 1000) from ``offset``, newest day first and, in a day, the file
    written last first; ``total`` counts them all; a bad limit or offset is 400."""
    page = (await api.get("/api/recordings?limit=2")).json
    assert (_ids(page), page["total"], page["offset"]) == (["g1", "u2"], 3, 0)
    rest = (await api.get("/api/recordings?limit=2&offset=2")).json
    assert (_ids(rest), rest["total"], rest["offset"]) == (["u1"], 3, 2)
    acme = (await api.get("/api/recordings?customer=acme&offset=1", ACME)).json
    assert (_ids(acme), acme["total"]) == (["u1"], 2)
    for query in ("limit=0", "limit=1001", "offset=-1", "limit=x"):
        answer = await api.get(f"/api/recordings?{query}")
        name = query.split("=")[0]
        assert (answer.status, answer.json["error"].split(":")[0]) == (
            400,
            f"query parameter {name}",
        )


async def test_the_list_is_picked_by_day_and_customer(api: Client) -> None:
    """``from``/``to`` by the day folder, ``customer`` by name; bad ones are 400 naming them."""
    assert _ids((await api.get("/api/recordings?from=2026-11-22")).json) == ["g1", "u2"]
    assert _ids((await api.get("/api/recordings?to=2026-11-22T12:00Z")).json) == ["u1"]
    assert _ids((await api.get("/api/recordings?customer=globex")).json) == ["g1"]
    for query, name in (("from=soon", "from"), ("page=3", "page"), ("customer=", "customer")):
        answer = await api.get(f"/api/recordings?{query}")
        assert (answer.status, answer.json["error"].split(":")[0]) == (
            400,
            f"query parameter {name}",
        )


async def test_a_customer_sees_and_fetches_only_its_own(api: Client, data_dir: Path) -> None:
    """acme lists and downloads its recordings; globex's are 404 to it, as missing ones."""
    assert _ids((await api.get("/api/recordings", ACME)).json) == ["u2", "u1"]
    assert (await api.get("/api/recordings?customer=globex", ACME)).status == 404
    answer = await api.get("/api/recordings/u1", ACME)
    assert (answer.status, answer.headers["Content-Type"]) == (200, "audio/wav")
    assert answer.body == (data_dir / "recordings/acme/2026/11/21/u1.wav").read_bytes()
    assert answer.headers["Content-Disposition"] == 'attachment; filename="u1.wav"'
    missing = await api.get("/api/recordings/g1", ACME)
    assert (missing.status, missing.json) == (404, {"error": "no recording with id g1"})
    assert (await api.get("/api/recordings/g1", GLOBEX)).status == 200


@pytest.mark.parametrize(
    "wanted", ["..", "../../secret", "../../../secret.wav", ".u3.wav", ".u3", "u1.wav", "secret"]
)
async def test_no_id_reaches_a_file_outside_the_published_recordings(
    api: Client, wanted: str
) -> None:
    """Dots, slashes (encoded), names of files being written or outside: all 404."""
    for method in ("GET", "DELETE"):
        answer = await api.request(method, "/api/recordings/" + quote(wanted, safe=""))
        assert answer.status == 404, wanted
        assert "error" in answer.json


async def test_a_delete_removes_the_file_and_its_folders_and_notes_it(
    api: Client, data_dir: Path
) -> None:
    """DELETE answers the recording, removes it and the day folders it emptied, and notes it
    in cdr.sqlite as the purge notes its deletions; another customer's is 404 and stays."""
    assert (await api.request("DELETE", "/api/recordings/g1", ACME)).status == 404
    assert (data_dir / "recordings/globex/2026/11/22/g1.wav").is_file()
    answer = await api.request("DELETE", "/api/recordings/u1", ACME)
    assert answer.status == 200
    assert (answer.json["deleted"]["id"], answer.json["deleted"]["call_id"]) == ("u1", "c1")
    assert not (data_dir / "recordings/acme/2026/11").joinpath("21").exists()
    assert (data_dir / "recordings/acme/2026/11/22/u2.wav").is_file()
    with CdrStore(data_dir / "cdr.sqlite") as store:
        assert store.purged() == {"recordings/acme/2026/11/21/u1.wav": "2026-11-23T08:00:00.000Z"}
    assert (await api.request("DELETE", "/api/recordings/u1")).status == 404
    assert _ids((await api.get("/api/recordings")).json) == ["g1", "u2"]
