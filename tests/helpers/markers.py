"""Which markers a test gets from what it uses, so that `-m "not postgres"` runs without a database
and `-m "not slow"` without daemons or the pipeline's training: a test cannot forget its marker.
conftest.py applies them at collection; tests/test_markers.py checks the selection."""
from __future__ import annotations

# A test that uses one of these fixtures, itself or through another, reaches the real Postgres.
POSTGRES_FIXTURES = frozenset({"pg_server", "pg_url"})
# The Postgres variant of a fixture parametrized over both databases (db_url, and the module-scoped
# stores of some test modules) has one of these parameters; it reaches Postgres at run time
# (request.getfixturevalue), which the fixture names alone do not show.
POSTGRES_PARAMS = frozenset({"postgres", "postgresql"})
# Slow (tens of seconds): a test that starts the `forecaster run` daemon in a subprocess
# (start_daemon), or reads a database the real pipeline filled, training as it goes (test_sql_docs'
# `bi`, test_deploy's `pipeline_pg`; tests/test_markers.py checks these names are still in use).
SLOW_FIXTURES = frozenset({"start_daemon", "bi", "pipeline_pg"})


def uses_postgres(fixtures, params) -> bool:
    """`fixtures`: every fixture a test uses; `params`: its parameter values."""
    return bool(POSTGRES_FIXTURES & set(fixtures)) or any(isinstance(v, str) and v in POSTGRES_PARAMS
                                                          for v in params)


def markers_for(fixtures, params) -> list[str]:
    """The markers a test with these fixtures and parameter values must carry."""
    wanted = ["postgres"] if uses_postgres(fixtures, params) else []
    return wanted + (["slow"] if SLOW_FIXTURES & set(fixtures) else [])
