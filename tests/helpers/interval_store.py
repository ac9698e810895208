"""One market served in 1h, 4h and 1d, stored as three markets on SQLite and on Postgres: candles of
the real Binance series (tests/data) resampled as the exchange serves 4h and 1d, live forecasts of
each interval's own horizon, and a failed ingest each. `store` is a module-scoped fixture: import it
into a test module to use it there."""
from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
import pytest

from core.market import Market
from db.candles import write_candles
from db.job_runs import finish_job_run, start_job_run
from db.models import ModelRun
from db.predictions import write_predictions
from tests.helpers.paths import BINANCE_CSV

KEYS = {"1h": "binance:ETH-USDT", "4h": "binance:ETH-USDT@4h", "1d": "binance:ETH-USDT@1d"}
HORIZON = {"1h": 24, "4h": 18, "1d": 7}  # each interval's default (forecaster/defaults.py)
STEP = {"1h": pd.Timedelta(hours=1), "4h": pd.Timedelta(hours=4), "1d": pd.Timedelta(days=1)}
ORIGINS = 30  # live origins per interval, the newest ones
MISSING_DAY = pd.Timestamp("2023-12-20", tz="UTC")  # one real gap, in the 1d series only


def _candles() -> dict[str, pd.DataFrame]:
    raw = pd.read_csv(BINANCE_CSV)
    hourly = raw.assign(ts=pd.to_datetime(raw.ts, utc=True)).set_index("ts").loc["2023-09-01":]
    hourly.index.name = "open_time"
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    out = {"1h": hourly}
    for interval, rule in (("4h", "4h"), ("1d", "1D")):
        out[interval] = hourly.resample(rule, label="left", closed="left").agg(agg).dropna()
    out["1d"] = out["1d"].drop(MISSING_DAY)
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def store(request, tmp_path_factory):
    from db.engine import make_engine, make_session_factory
    from db.migrate import upgrade
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('intervals') / 'forecaster.db'}"
        admin = name = None
    else:
        import uuid

        import psycopg
        admin = request.getfixturevalue("pg_server")
        name = f"forecaster_iv_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1) + "/" + name
    engine = make_engine(url)
    upgrade(engine)
    sessions = make_session_factory(engine)
    candles = _candles()
    with sessions() as s, s.begin():
        for interval, frame in candles.items():
            write_candles(frame, session=s, market=Market("binance", "ETH", "USDT", interval), source="csv")
            run = ModelRun(exchange="binance", symbol="ETH-USDT", interval=interval, status="promoted",
                           started_at=datetime(2023, 8, 1, tzinfo=timezone.utc))
            s.add(run)
            s.flush()
            for origin in frame.index[-ORIGINS:]:
                close = frame.loc[origin, "close"]
                h = pd.RangeIndex(1, HORIZON[interval] + 1)
                forecast = pd.DataFrame({"origin_time": origin, "target_time": [origin + STEP[interval] * k for k in h],
                                         "horizon": h, "yhat": close, "yhat_lower": close * 0.97,
                                         "yhat_upper": close * 1.03})
                write_predictions(forecast, session=s, market=Market("binance", "ETH", "USDT", interval),
                                  kind="live", model_run_id=run.id)
            job = start_job_run(session=s, job="ingest", market=Market("binance", "ETH", "USDT", interval))
            finish_job_run(session=s, run_id=job, status="failed", rows=0, message=f"{interval} failed")
    yield engine, candles
    engine.dispose()
    if name:
        import psycopg
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
