"""`pip install .` (not editable) into a fresh virtual environment gives a `forecaster` command that
works from any directory, migrations included: what a user or an image gets, not the checkout."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from contextlib import closing
from pathlib import Path

import pytest

from db.migrate import head_revision
from tests.helpers.paths import REPO

# What `pip install .` must not need: everything else the checkout holds besides the package sources.
NOT_SOURCES = (".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.db", "tests", "bench",
               "docs", "deploy", "out")


def _run(*args, cwd: Path, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("FORECASTER_", "PYTHON"))}
    result = subprocess.run([str(a) for a in args], cwd=cwd, env={**base, **(env or {})}, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_pip_install_gives_a_forecaster_command_that_migrates_from_any_directory(tmp_path):
    # A copy of the sources, so the build writes nothing into the checkout (setuptools leaves build/).
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SOURCES))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    site = Path(_run(bin_dir / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).stdout.strip())
    # The dependencies (torch alone is gigabytes) come from the environment running this test, added
    # as a plain path after the new venv's own: its .pth files, and so its editable install of this
    # project, stay inactive, so the project can only come from what pip installs below.
    (site / "zz_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(bin_dir / "python", "-m", "pip", "install", "-q", "--no-deps", source, cwd=tmp_path, timeout=300)
    shutil.rmtree(source)  # nothing may point back at the sources

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run(bin_dir / "python", "-c", "import jobs, migrations.versions; print(jobs.__file__)", cwd=elsewhere)
    assert Path(where.stdout.strip()).is_relative_to(site)
    env = {"FORECASTER_DATABASE_URL": f"sqlite:///{elsewhere / 'new.db'}"}
    upgraded = _run(bin_dir / "forecaster", "db", "upgrade", cwd=elsewhere, env=env)
    assert f"at migration {head_revision()}" in upgraded.stdout
    with closing(sqlite3.connect(elsewhere / "new.db")) as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (head_revision(),)
        assert db.execute("SELECT COUNT(*) FROM latest_forecast").fetchone() == (0,)  # the BI views too
    status = json.loads(_run(bin_dir / "forecaster", "status", "--json", cwd=elsewhere, env=env).stdout)
    assert [m["market"] for m in status["markets"]] == ["bithumb:ETH-KRW"] and status["markets"][0]["candles"] == 0
