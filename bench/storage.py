"""Bytes per row on Postgres (table, TOAST and indexes) of the tables that grow with markets and time,
written with the project's own writers: the per-row figures behind docs/scaling.md's estimates.

    .venv/bin/python bench/storage.py [--markets 20] [--days 30]
"""
from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import pandas as pd  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from core.market import Market
from db.candles import write_candles  # noqa: E402
from db.engine import make_engine, make_session_factory  # noqa: E402
from db.job_runs import finish_job_run, start_job_run  # noqa: E402
from db.migrate import upgrade  # noqa: E402
from db.predictions import write_predictions  # noqa: E402

PG_ADMIN = os.environ.get("FORECASTER_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
HORIZON = 24


def fill(sessions, markets: int, days: int) -> None:
    end = datetime(2023, 12, 31, tzinfo=timezone.utc)
    hours = pd.date_range(end - timedelta(days=days), end, freq="h", inclusive="left")
    candles = pd.DataFrame({"open": 2.5e6, "high": 2.51e6, "low": 2.49e6, "close": 2.505e6, "volume": 12.5},
                           index=pd.DatetimeIndex(hours, name="open_time"))
    for i in range(markets):
        market = Market("upbit", f"M{i}", "KRW")
        with sessions() as s, s.begin():
            write_candles(candles, session=s, market=market, source="api")
            forecast = pd.DataFrame([{"origin_time": t, "target_time": t + timedelta(hours=h), "horizon": h,
                                      "yhat": 2.5e6, "yhat_lower": 2.4e6, "yhat_upper": 2.6e6}
                                     for t in hours for h in range(1, HORIZON + 1)])
            write_predictions(forecast, session=s, market=market, kind="live", model_run_id=None)
            for t in hours:  # an ingest and a predict run per hour
                for job, message in (("ingest", "1 new candles, fetched 3, newest 2023-12-30T23:00Z"),
                                     ("predict", "origin 2023-12-30T23:00Z, model run 123")):
                    run_id = start_job_run(session=s, job=job, market=market)
                    finish_job_run(session=s, run_id=run_id, status="ok", rows=24, message=message)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markets", type=int, default=20)
    ap.add_argument("--days", type=int, default=30)
    args = ap.parse_args()
    name = f"forecaster_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{PG_ADMIN.rsplit('/', 1)[0].replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"
    engine = make_engine(url)
    try:
        upgrade(engine)
        fill(make_session_factory(engine), args.markets, args.days)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
            for table in ("candles", "predictions", "job_runs"):
                n = conn.execute(text(f"SELECT count(*) FROM {table}")).scalar()
                total, heap = conn.execute(text(f"SELECT pg_total_relation_size('{table}'), "
                                                f"pg_relation_size('{table}')")).one()
                print(f"{table:12} {n:>9} rows  {total / n:6.0f} B/row in all ({heap / n:4.0f} table, "
                      f"{(total - heap) / n:4.0f} indexes and TOAST)")
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
