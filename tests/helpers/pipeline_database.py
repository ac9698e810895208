"""A database of one dialect filled by the real pipeline, for the queries a BI tool or Grafana runs:
a real Binance slice imported, a tiny model trained and retrained, a forecast every hour as the daemon
makes them, one origin forecast again by `predict --at --replace`, a walk-forward backtest run twice,
a real Upbit slice with its outage gaps, a failed job, then an Upbit model and forecast."""
from __future__ import annotations

import os
import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.helpers.paths import BINANCE_CSV, UPBIT_CSV

SLICE_HOURS = 2000     # of the real Binance series, ending 2023-12-31T23:00Z
LIVE_HOURS = 36        # the last hours arrive one by one, each followed by a live forecast
UPBIT_HOURS = 800      # holds Upbit's 2023-12-03 and 2023-12-31 maintenance gaps
NEWEST = pd.Timestamp("2023-12-31T23:00Z")  # the newest candle of the pipeline's data


def build_bi_database(url: str, workdir: Path) -> None:
    """Fill a migrated-from-empty database the way the service does, with the real code."""
    from db.migrate import upgrade
    from exchanges.base import parse_market
    from forecaster.config import ModelConfig
    from jobs.backtest import backtest_market
    from jobs.bootstrap import bootstrap
    from jobs.errors import JobError
    from jobs.import_csv import import_csv
    from jobs import predict as predict_module
    from jobs.predict import predict_market
    from jobs.predict_at import predict_at
    from jobs.settings import load_settings
    from jobs.train import train_market

    binance, upbit = parse_market("binance:ETH-USDT"), parse_market("upbit:ETH-KRW")
    config = ModelConfig(lookback=48, hidden_size=8, max_epochs=2, val_steps=200)
    services = bootstrap(load_settings(database_url=url, device="cpu"))
    predict_module._MODEL_CACHE.clear()  # start from a cold cache, as a fresh process would
    try:
        upgrade(services.engine)

        def load(market, rows: pd.DataFrame, name: str) -> None:
            rows.to_csv(workdir / name, index=False)
            import_csv(services, workdir / name, market)

        rows = pd.read_csv(BINANCE_CSV).tail(SLICE_HOURS)
        load(binance, rows.iloc[:-LIVE_HOURS], "history.csv")
        train_market(services, binance, train_hours=1000, config=config)
        for i in range(LIVE_HOURS):
            load(binance, rows.iloc[[len(rows) - LIVE_HOURS + i]], "hour.csv")
            origin = predict_market(services, binance).origin
            if i == LIVE_HOURS // 2:  # the nightly retrain: a second model run
                train_market(services, binance, train_hours=1000, config=config)
                # a third, trained up to this origin and not promoted, forecasts it again
                train_market(services, binance, train_hours=1000, config=config, until=origin)
                predict_at(services, binance, origin, origin, replace=True)
        for _ in range(2):  # the second backtest supersedes the first one's rows
            backtest_market(services, binance, days=7, step=24, retrain_every=168, train_hours=1000,
                            horizon=24, config=config)
        load(upbit, pd.read_csv(UPBIT_CSV).tail(UPBIT_HOURS), "upbit.csv")
        with pytest.raises(JobError):  # no model for Upbit yet: a failed predict job run
            predict_market(services, upbit)
        train_market(services, upbit, train_hours=600, config=config)
        predict_market(services, upbit)
    finally:
        services.close()


@dataclass
class BIDatabase:
    dialect: str
    url: str          # SQLAlchemy URL
    dsn: str          # what a BI tool connects with: a file path or a libpq URL

    def query(self, sql: str) -> pd.DataFrame:
        """Runs SQL through the plain driver, as a BI tool would; times as aware UTC Timestamps."""
        if self.dialect == "sqlite":
            conn = sqlite3.connect(f"file:{self.dsn}?mode=ro", uri=True)
        else:
            import psycopg
            conn = psycopg.connect(self.dsn)
        try:
            cur = conn.cursor()
            cur.execute(sql)
            frame = pd.DataFrame(cur.fetchall(), columns=[d[0] for d in cur.description])
        finally:
            conn.close()
        return frame


def bi_database(request, tmp_path_factory, dialect: str):
    """A database of one dialect filled by the pipeline (FORECASTER_* and any .env kept out of the
    build); yields a BIDatabase and drops it afterwards."""
    import psycopg

    workdir = tmp_path_factory.mktemp(f"bi-{dialect}")
    name = None
    if dialect == "sqlite":
        path = workdir / "forecaster.db"
        db = BIDatabase(dialect, f"sqlite:///{path}", str(path))
    else:
        admin = request.getfixturevalue("pg_server")
        name = f"forecaster_bi_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        dsn = f"{admin.rsplit('/', 1)[0]}/{name}"
        db = BIDatabase(dialect, dsn.replace("postgresql://", "postgresql+psycopg://", 1), dsn)
    try:
        with pytest.MonkeyPatch.context() as mp:
            for key in list(os.environ):
                if key.startswith("FORECASTER_") and key != "FORECASTER_TEST_PG":
                    mp.delenv(key)
            mp.chdir(workdir)
            build_bi_database(db.url, workdir)
        yield db
    finally:
        if name:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
