"""`callserver recordings list|export|purge` on recordings laid out as the server writes them."""

from __future__ import annotations

import csv
import io
import tarfile
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np

from callserver.commands.recordings import purge_recordings, select
from callserver.media.recording import open_part, publish_part
from tests.test_cli import callserver

NOW = datetime(2027, 6, 30, 12, 0, tzinfo=UTC)


def put(data_dir: Path, customer: str, day: date, uuid: str, seconds: float) -> Path:
    """A mono 8 kHz recording of ``seconds`` of silence, published as the server does."""
    path = data_dir / "recordings" / customer / f"{day:%Y/%m/%d}" / f"{uuid}.wav"
    file, wav = open_part(path, rate=8000, channels=1)
    wav.writeframesraw(np.zeros(round(seconds * 8000), dtype=np.int16).tobytes())
    publish_part(wav, file, path)
    return path


def three(data_dir: Path) -> None:
    """acme's recordings of 1 March and 1 June, bigco's of 2 June."""
    put(data_dir, "acme", date(2027, 3, 1), "a1", 1.5)
    put(data_dir, "acme", date(2027, 6, 1), "a2", 2.0)
    put(data_dir, "bigco", date(2027, 6, 2), "b1", 0.5)


def test_list_filters_by_customer_and_days(tmp_path: Path) -> None:
    """`list --customer acme --since 2027-05-01` shows acme's June recording only."""
    three(tmp_path)
    result = callserver(
        "recordings", "list", "--data-dir", str(tmp_path), "--customer", "acme",
        "--since", "2027-05-01", "--until", "2027-07-01",
    )  # fmt: skip
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    assert result.stdout == (
        "2027-06-01  acme  a2       2.0 s  recordings/acme/2027/06/01/a2.wav\n"
    )


def test_export_copies_the_files_with_an_index(tmp_path: Path) -> None:
    """`export DIR` copies every chosen file in its layout and writes index.csv of them."""
    data = tmp_path / "var"
    three(data)
    out = tmp_path / "out"
    result = callserver("recordings", "export", str(out), "--data-dir", str(data))
    assert result.returncode == 0, result.stderr
    assert (out / "acme" / "2027" / "03" / "01" / "a1.wav").read_bytes() == (
        data / "recordings" / "acme" / "2027" / "03" / "01" / "a1.wav"
    ).read_bytes()
    rows = list(csv.DictReader((out / "index.csv").open()))
    assert [(r["uuid"], r["customer"], r["day"], r["seconds"]) for r in rows] == [
        ("a1", "acme", "2027-03-01", "1.500"),
        ("a2", "acme", "2027-06-01", "2.000"),
        ("b1", "bigco", "2027-06-02", "0.500"),
    ]


def test_export_to_a_tar_file(tmp_path: Path) -> None:
    """`export FILE.tar.gz --customer bigco` writes the index and bigco's file only."""
    data = tmp_path / "var"
    three(data)
    target = tmp_path / "bigco.tar.gz"
    result = callserver(
        "recordings", "export", str(target), "--data-dir", str(data), "--customer", "bigco"
    )
    assert result.returncode == 0, result.stderr
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["index.csv", "bigco/2027/06/02/b1.wav"]


def test_bad_dates_and_taken_names_are_refused_clearly(tmp_path: Path) -> None:
    """A date that is not ISO 8601 and an export onto an existing file fail with a sentence."""
    three(tmp_path)
    bad = callserver("recordings", "list", "--data-dir", str(tmp_path), "--since", "March")
    assert bad.returncode == 1 and "'March' is not an ISO 8601 date" in bad.stderr
    taken = tmp_path / "taken.tar"
    taken.write_bytes(b"")
    again = callserver("recordings", "export", str(taken), "--data-dir", str(tmp_path))
    assert again.returncode == 1 and "exists: name a new tar file" in again.stderr


def test_purge_now_deletes_only_what_is_past_retention(tmp_path: Path) -> None:
    """On 30 June, with 90 days for acme, a dry run lists acme's March file, the run deletes it."""
    three(tmp_path)
    out = io.StringIO()
    assert purge_recordings(tmp_path, lambda _c: 90, NOW, out, dry_run=True) == 1
    assert len(select(tmp_path)) == 3
    assert purge_recordings(tmp_path, lambda _c: 90, NOW, out) == 1
    assert [r.path.stem for r in select(tmp_path)] == ["a2", "b1"]
    assert out.getvalue().splitlines() == [
        "would delete recordings/acme/2027/03/01/a1.wav",
        "would delete 1 recording(s), 24044 bytes",
        "deleted recordings/acme/2027/03/01/a1.wav",
        "deleted 1 recording(s), 24044 bytes",
    ]


def test_purge_command_reads_the_retention_from_trunks_yaml(tmp_path: Path) -> None:
    """`recordings purge --dry-run` runs with the configuration's retention and deletes nothing."""
    three(tmp_path)
    result = callserver("recordings", "purge", "--dry-run", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("would delete ")
    assert len(select(tmp_path)) == 3
