"""Shared fixtures: a SQLite file and a fresh database on the real Postgres, both migrated with the
project's own migrations; and the markers each test gets from the fixtures it uses. Helpers the tests
import live in tests/helpers."""
from __future__ import annotations

import os
import uuid

import pytest

from tests.helpers.markers import markers_for
from tests.helpers.postgres import PG_ADMIN_URL


def pytest_collection_modifyitems(config, items):
    """Mark each test `postgres` and `slow` by the fixtures and parameters it uses (tests/helpers/markers.py)."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        for name in markers_for(getattr(item, "fixturenames", ()), callspec.params.values() if callspec else ()):
            item.add_marker(name)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """Tests never read the developer's .env or FORECASTER_* variables."""
    for key in list(os.environ):
        if key.startswith("FORECASTER_") and key != "FORECASTER_TEST_PG":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)


def _pg_available() -> str | None:
    try:
        import psycopg
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as e:  # the reason is shown in the skip message
        return str(e).splitlines()[0]


@pytest.fixture(scope="session")
def pg_server():
    reason = _pg_available()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must run in CI: {reason}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {reason}")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_server):
    """A fresh, empty Postgres database for one test; dropped afterwards."""
    import psycopg
    name = f"forecaster_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = pg_server.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'forecaster.db'}"


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request):
    """Runs the test once on a SQLite file and once on the real Postgres."""
    if request.param == "sqlite":
        return request.getfixturevalue("sqlite_url")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def migrated(db_url):
    """(url, engine, session factory) of a database migrated to head with the project's migrations."""
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    engine = make_engine(db_url)
    upgrade(engine)
    yield db_url, engine, make_session_factory(engine)
    engine.dispose()
