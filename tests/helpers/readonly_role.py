"""db/readonly.sql run with psql, as an operator adds the read-only role for a BI tool."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.helpers.paths import REPO

SCRIPT = REPO / "db" / "readonly.sql"


def _psql() -> str:
    psql = shutil.which("psql")
    if psql is None:
        if os.environ.get("CI"):
            pytest.fail("psql must be installed in CI to run db/readonly.sql")
        pytest.skip("psql is not installed")
    return psql


def run_script(dsn: str, user: str | None, password: str | None = "s3cret'with quote", connection_limit=None):
    env = {k: v for k, v in os.environ.items() if k not in ("BI_USER", "BI_PASSWORD", "BI_CONNECTION_LIMIT")}
    env.update({k: v for k, v in (("BI_USER", user), ("BI_PASSWORD", password),
                                  ("BI_CONNECTION_LIMIT", connection_limit)) if v is not None})
    return subprocess.run([_psql(), dsn, "-X", "-q", "-f", str(SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=60)
