"""The pieces of answers the resources share: UTC times and WAV downloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from aiohttp import web

from callserver.admin.answers import iso_utc, wav_download
from tests.admin.serving import serving

SARAJEVO_WINTER = timezone(timedelta(hours=1))


def test_a_moment_is_utc_with_a_z_in_the_precision_asked() -> None:
    """Any zone's moment is written in UTC with ``Z``: milliseconds unless seconds are asked."""
    moment = datetime(2026, 12, 7, 13, 5, 9, 250_000, tzinfo=SARAJEVO_WINTER)
    assert iso_utc(moment) == "2026-12-07T12:05:09.250Z"
    assert iso_utc(moment, timespec="seconds") == "2026-12-07T12:05:09Z"
    assert iso_utc(datetime(2026, 12, 7, tzinfo=UTC), timespec="seconds") == "2026-12-07T00:00:00Z"


class _Wav:
    def __init__(self, path: Path) -> None:
        self.path = path

    def add_routes(self, router: web.UrlDispatcher) -> None:
        async def get(request: web.Request) -> web.FileResponse:
            return wav_download(self.path)

        router.add_get("/api/wav", get)


async def test_a_wav_is_an_attachment_named_by_its_file_and_ranges_work(tmp_path: Path) -> None:
    """The file as ``audio/wav``, an attachment of its own name, streamed with ranges."""
    path = tmp_path / "u1.wav"
    path.write_bytes(b"RIFF" + bytes(range(60)))
    async with serving(_Wav(path)) as client:
        whole = await client.get("/api/wav")
        headers = {"Authorization": "Bearer operator-secret", "Range": "bytes=0-3"}
        async with client.session.get(f"{client.url}/api/wav", headers=headers) as part:
            first = (part.status, await part.read())
    assert (whole.status, whole.body) == (200, path.read_bytes())
    assert whole.headers["Content-Type"] == "audio/wav"
    assert whole.headers["Content-Disposition"] == 'attachment; filename="u1.wav"'
    assert first == (206, b"RIFF")
