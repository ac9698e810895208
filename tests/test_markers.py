"""The markers select what they say: `-m "not postgres"` runs no test that reaches Postgres (through
pg_url, pg_server, the Postgres variant of a fixture parametrized over both databases, or a fixture
that fills a Postgres database through a helper), and `-m "not slow"` none that starts the daemon or
reads the pipeline's database; every marker in use is registered in pyproject.toml."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.helpers.collection_report import REPORT_VARIABLE
from tests.helpers.markers import SLOW_FIXTURES, uses_postgres
from tests.helpers.paths import REPO


def collect(tmp_path, *args: str) -> tuple[list[dict], list[dict]]:
    """(selected, deselected) tests as pytest collects them with `args` from the repository, the way
    a user runs it (`--strict-markers`: an unregistered marker is an error)."""
    report = tmp_path / "collected.json"
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "--strict-markers",
                           "-p", "no:cacheprovider", "-p", "tests.helpers.collection_report", *args],
                          cwd=REPO, env={**os.environ, REPORT_VARIABLE: str(report)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tests = json.loads(report.read_text())
    return tests["selected"], tests["deselected"]


def test_not_postgres_selects_no_test_that_reaches_postgres_and_slow_marks_daemons_and_the_pipeline(tmp_path):
    selected, deselected = collect(tmp_path, "-m", "not postgres")
    assert [t["id"] for t in selected if uses_postgres(t["fixtures"], t["params"].values())] == []
    assert deselected and all("postgres" in t["markers"] for t in deselected)
    # The SQLite variants stay; the dashboard's tests, on a Postgres database a helper fills, go.
    assert any(t["params"].get("db_url") == "sqlite" for t in selected)
    assert [t["id"] for t in selected if "pipeline_pg" in t["fixtures"]] == []
    # Every test that starts the daemon or reads the pipeline's database is marked slow, and each
    # fixture named for that is still in use.
    everything = selected + deselected
    for fixture in SLOW_FIXTURES:
        users = [t for t in everything if fixture in t["fixtures"]]
        assert users, f"no test uses {fixture} any more: tests/helpers/markers.py names a stale fixture"
        assert all("slow" in t["markers"] for t in users), fixture
