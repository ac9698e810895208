"""The tests read only what the repository holds: tests/data is complete, documented and small, and
no test reaches for data outside the repository."""
from __future__ import annotations

import gzip
import hashlib
import re

import pytest

from tests.helpers.paths import REPO, TEST_DATA

README = TEST_DATA / "README.md"
# | `file` | ... | `sha256` |: the last backticked 64-hex column of a README table row.
ROW_RE = re.compile(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", re.M)
# Written as patterns so that this file does not name what it looks for.
OUTSIDE_RE = re.compile(r"shared[/\\]data|\.\./shared|/work[/]")


def documented() -> dict[str, str]:
    """file name -> sha256 from tests/data/README.md (of the CSV inside, for a .csv.gz)."""
    return dict(ROW_RE.findall(README.read_text()))


def test_every_file_in_tests_data_is_documented_and_the_folder_stays_small():
    files = {p.relative_to(TEST_DATA).as_posix() for p in TEST_DATA.rglob("*") if p.is_file()} - {"README.md"}
    names = {f.rsplit("/", 1)[-1] for f in files}
    assert names == set(documented()), "tests/data/README.md must list exactly the files of tests/data"
    assert sum(p.stat().st_size for p in TEST_DATA.rglob("*") if p.is_file()) < 3_000_000


@pytest.mark.parametrize("name", sorted(n for n in documented() if n.endswith(".csv.gz")))
def test_each_series_is_what_the_readme_says(name):
    text = gzip.decompress((TEST_DATA / name).read_bytes())
    assert hashlib.sha256(text).hexdigest() == documented()[name]
    lines = text.decode().splitlines()
    assert lines[0] == "ts,open,high,low,close,volume"
    row = next(line for line in README.read_text().splitlines() if line.startswith(f"| `{name}` |"))
    assert f"| {len(lines) - 1} |" in row  # the row count
    assert lines[1].startswith("2023-01-01T00:00:00Z,") and lines[-1].startswith("2023-12-31T23:00:00Z,")


@pytest.mark.parametrize("name", sorted(n for n in documented() if not n.endswith(".csv.gz")))
def test_each_api_sample_is_unchanged(name):
    assert hashlib.sha256((TEST_DATA / "api_samples" / name).read_bytes()).hexdigest() == documented()[name]


def test_no_file_under_tests_names_data_outside_the_repository():
    offenders = []
    for path in (REPO / "tests").rglob("*"):
        if path.is_file() and path.suffix in {".py", ".md", ".json", ".csv", ".txt", ".sh", ".toml", ".ini", ".cfg"}:
            for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                if OUTSIDE_RE.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{lineno}: {line.strip()}")
    assert not offenders, "tests must read only tests/data:\n" + "\n".join(offenders)
