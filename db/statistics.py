"""Planner statistics after bulk writes (Postgres).

Postgres plans a query from each table's statistics, and only ANALYZE (run by autovacuum, or by
hand) gathers them. A table filled in one go by `import-csv`, a back-fill, a backtest or
`predict --at` has none until autovacuum gets to it, and none at all where autovacuum is off or
lags behind: the planner then expects one row everywhere and the worked queries of docs/sql.md
choose nested loops that run for minutes instead of milliseconds (bench/query_speed.py shows both).
So the service analyses the tables it has just filled itself, with `VACUUM (ANALYZE)`: the vacuum
part marks the new pages all-visible, so index-only scans need not visit the heap for every row
(the bench measured the dashboard's alert query at 60-70 ms without it), and on pages already
visible it skips the work. A job that wrote only a few rows
(the hourly ingest and forecast) leaves it to autovacuum: ANALYZE reads a sample of the table
(30,000 rows by default), not worth it for 24 new rows.

SQLite: nothing. Its planner picks indexes by rules, not by gathered statistics, unless
`sqlite_stat1` exists; creating that table would change the plans the documented queries were
written and tested for.
"""
from __future__ import annotations

import logging

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from core.names import Job

log = logging.getLogger("forecaster.jobs")

# Rows a job must have written before its tables are analysed: about what autovacuum's own
# threshold (50 rows + 10% of the table) asks of a table of 10,000 rows.
BULK_ROWS = 1000

# The tables each job fills in bulk: what it writes, and what a query of what it wrote joins.
JOB_TABLES: dict[str, tuple[str, ...]] = {
    Job.IMPORT: ("candles",),
    Job.INGEST: ("candles", "candle_gaps"),
    Job.PREDICT: ("predictions", "prediction_history"),
    Job.BACKTEST: ("predictions", "prediction_history", "backtest_runs", "backtest_horizons"),
    Job.RETENTION: ("predictions",),
}


def analyze_after_write(sessions: sessionmaker[Session], job: str, rows: int | None) -> bool:
    """ANALYZE the tables `job` writes if it wrote at least BULK_ROWS rows, on Postgres; True when it
    did. Never raises: the rows are committed already, and statistics are only a speed-up."""
    tables = JOB_TABLES.get(job, ())
    if not tables or rows is None or rows < BULK_ROWS:
        return False
    return analyze(sessions, tables)


def analyze(sessions: sessionmaker[Session], tables: tuple[str, ...]) -> bool:
    try:
        with sessions() as s:
            engine = s.get_bind()
        if engine.dialect.name != "postgresql":
            return False
        # VACUUM cannot run inside a transaction block: a connection of its own, in autocommit.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in tables:  # names from JOB_TABLES only, never from input
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
        return True
    except Exception as exc:  # a busy or read-only database: autovacuum will do it later
        log.warning("could not gather planner statistics (VACUUM (ANALYZE) %s): %s", ", ".join(tables),
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return False
