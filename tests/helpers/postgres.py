"""The real Postgres server the tests use: its admin URL, and an outage of one database on it."""
from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get("FORECASTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def set_database_open(name: str, open_: bool) -> None:
    """Close the database to new connections and drop the daemon's current ones, or reopen it:
    an outage of this database only, without touching the shared server."""
    import psycopg
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(open_).lower()}')
        if not open_:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
