"""The repository is self-contained: its text refers only to itself, and its architecture page to
modules and sections that exist."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = ROOT / "docs" / "architecture.md"
SCANNED = ("callserver", "tests", "bench", "docs")
SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}

# Written as patterns so that this file does not match itself.
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|STYLE\s*§|\.\./shared\b")
CITATION = re.compile(r"docs/architecture\.md[^\"\n]*\"([^\"\n]+)\"")
HEADING = re.compile(r"^#{2,3} (.+)$", re.MULTILINE)
CONCERN_ROW = re.compile(r"^\| [^|]+ \| (.+) \|$", re.MULTILINE)
MODULE = re.compile(r"`([\w./]+)`")


def _text_files() -> Iterator[Path]:
    """Every text file under the scanned directories, and the README."""
    yield ROOT / "README.md"
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and not SKIPPED_DIRS.intersection(path.parts):
                data = path.read_bytes()
                if b"\0" not in data:
                    yield path


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    text = path.read_bytes().decode("utf-8", errors="replace")
    yield from enumerate(text.splitlines(), start=1)


def test_no_file_refers_to_documents_outside_the_repository() -> None:
    """No source, test, benchmark or document cites design notes or paths beside the checkout."""
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _text_files()
        for number, line in _lines(path)
        if OUTSIDE.search(line)
    ]
    assert found == []


def test_every_cited_section_of_the_architecture_page_exists() -> None:
    """Each section of the architecture page that a file cites by title is one of its headings."""
    headings = set(HEADING.findall(ARCHITECTURE.read_text(encoding="utf-8")))
    cited = {
        f"{path.relative_to(ROOT)}:{number}: {title}"
        for path in _text_files()
        for number, line in _lines(path)
        for title in CITATION.findall(line)
        if title not in headings
    }
    assert cited == set()


def test_the_concern_table_names_modules_that_exist() -> None:
    """Each module in the "Where each concern lives" table is a file or package of callserver."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    table = text.split("## Where each concern lives", 1)[1].split("\n## ", 1)[0]
    rows = CONCERN_ROW.findall(table)
    assert len(rows) > 40
    missing = []
    for row in rows:
        folder = Path()
        for name in MODULE.findall(row):
            if "/" in name and not name.endswith("/"):
                folder = Path(name).parent
                path = ROOT / "callserver" / name
            else:
                path = ROOT / "callserver" / (name if "/" in name else folder / name)
            if not path.exists():
                missing.append(name)
    assert missing == []
