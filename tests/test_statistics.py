"""After a bulk write the planner knows how many rows there are, even where autovacuum is off:
the service runs ANALYZE on the tables it filled (db/statistics.py). Without it, Postgres plans
every worked query of docs/sql.md as if each table held one row (issue 18: four of them ran into
the 60 s statement timeout)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from core.market import Market
from db.predictions import write_predictions
from exchanges.base import parse_market
from jobs.import_csv import import_csv
from jobs.retention import prune_live_forecasts
from tests.helpers.paths import BINANCE_CSV
from tests.helpers.services import services_for

MARKET = parse_market("binance:ETH-USDT")
MARKET_FILTER = "exchange = 'binance' AND symbol = 'ETH-USDT' AND interval = '1h'"


def _autovacuum_off(sessions) -> None:
    with sessions() as s, s.begin():
        for table in ("candles", "predictions", "prediction_history"):
            s.execute(sa.text(f"ALTER TABLE {table} SET (autovacuum_enabled = off)"))


def _planned_rows(sessions, sql: str) -> int:
    with sessions() as s:
        return s.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}")).scalar_one()[0]["Plan"]["Plan Rows"]


def _analysed(sessions, table: str) -> bool:
    with sessions() as s:
        return s.execute(sa.text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables WHERE relname = :t"),
                         {"t": table}).scalar_one()


def _csv(tmp_path, rows: int):
    path = tmp_path / f"{rows}.csv"
    pd.read_csv(BINANCE_CSV, nrows=rows).to_csv(path, index=False)
    return path


def test_after_import_csv_the_planner_expects_the_rows_imported(pg_url, tmp_path):
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    migrated = (pg_url, engine, sessions)
    _autovacuum_off(sessions)
    try:
        import_csv(services_for(migrated), _csv(tmp_path, 50), MARKET)
        assert not _analysed(sessions, "candles")  # 50 new rows: left to autovacuum
        import_csv(services_for(migrated), _csv(tmp_path, 3000), MARKET)
        assert _analysed(sessions, "candles")
        planned = _planned_rows(sessions, f"SELECT * FROM candles WHERE {MARKET_FILTER}")
        assert 2700 <= planned <= 3300, planned
        with sessions() as s:  # vacuumed too: its pages are all-visible, for index-only scans
            visible, pages = s.execute(sa.text("SELECT relallvisible, relpages FROM pg_class "
                                               "WHERE relname = 'candles'")).one()
        assert pages > 0 and visible == pages
    finally:
        engine.dispose()


def test_retention_that_deletes_many_forecasts_refreshes_the_statistics(pg_url):
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    engine = make_engine(pg_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    _autovacuum_off(sessions)
    now = datetime(2023, 12, 31, tzinfo=timezone.utc)
    origins = pd.date_range(now - timedelta(days=60), now, freq="h", tz="UTC")
    frame = pd.DataFrame({"origin_time": origins, "target_time": origins + timedelta(hours=1), "horizon": 1,
                          "yhat": 1.0, "yhat_lower": 0.5, "yhat_upper": 1.5})
    try:
        with sessions() as s, s.begin():
            write_predictions(frame, session=s, market=Market("binance", "ETH", "USDT"), kind="live",
                              model_run_id=None)
        assert not _analysed(sessions, "predictions")  # written outside a job: nothing analysed it
        deleted = prune_live_forecasts(services_for((pg_url, engine, sessions)), [MARKET], 7, now=now)
        assert deleted > 1000
        assert _analysed(sessions, "predictions")
        planned = _planned_rows(sessions, f"SELECT * FROM predictions WHERE {MARKET_FILTER}")
        assert planned < 400, planned  # about the 7 days kept (169 rows), not the 1,441 written
    finally:
        engine.dispose()


def test_sqlite_gets_no_statistics_table(sqlite_url, tmp_path):
    """SQLite's planner follows its rules unless sqlite_stat1 exists; the documented queries were
    written for those rules, so the service does not create it."""
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    engine = make_engine(sqlite_url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    try:
        import_csv(services_for((sqlite_url, engine, sessions)), _csv(tmp_path, 3000), MARKET)
        with sessions() as s:
            assert s.execute(sa.text("SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")).scalar_one() == 0
    finally:
        engine.dispose()
