"""docs/sql.md cannot rot: every worked query runs on SQLite and on Postgres, on data made by the real
pipeline (a real Binance slice imported, a tiny model trained and retrained, a forecast every hour
as the daemon makes them, a walk-forward backtest, a real Upbit slice with its outage gaps, a
failed job), and returns the rows a user expects."""
from __future__ import annotations

import math
import os
import re
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import BINANCE_CSV, REPO, UPBIT_CSV

DOC = REPO / "docs" / "sql.md"
QUERY_RE = re.compile(r"```sql\n-- query: (\w+)(?: \[(\w+)\])?\n(.*?)```", re.S)
DIALECTS = ("sqlite", "postgresql")
SLICE_HOURS = 2000     # of the real Binance series, ending 2023-12-31T23:00Z
LIVE_HOURS = 36        # the last hours arrive one by one, each followed by a live forecast
UPBIT_HOURS = 800      # holds Upbit's 2023-12-03 and 2023-12-31 maintenance gaps


def documented_queries() -> dict[str, dict[str, str]]:
    """name -> {dialect: SQL}; a block without a [dialect] tag serves both."""
    queries: dict[str, dict[str, str]] = {}
    for name, only, sql in QUERY_RE.findall(DOC.read_text()):
        for dialect in ([only] if only else DIALECTS):
            assert dialect in DIALECTS, f"{name}: unknown dialect {dialect!r}"
            assert dialect not in queries.get(name, {}), f"{name} is documented twice for {dialect}"
            queries.setdefault(name, {})[dialect] = sql.strip()
    return queries


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
            import_csv(services.sessions, workdir / name, market)

        rows = pd.read_csv(BINANCE_CSV).tail(SLICE_HOURS)
        load(binance, rows.iloc[:-LIVE_HOURS], "history.csv")
        train_market(services, binance, train_hours=1000, config=config)
        for i in range(LIVE_HOURS):
            load(binance, rows.iloc[[len(rows) - LIVE_HOURS + i]], "hour.csv")
            predict_market(services, binance)
            if i == LIVE_HOURS // 2:  # the nightly retrain: a second model run
                train_market(services, binance, train_hours=1000, config=config)
        backtest_market(services, binance, days=7, step=24, retrain_every=168, train_hours=1000,
                        horizon=24, config=config)
        load(upbit, pd.read_csv(UPBIT_CSV).tail(UPBIT_HOURS), "upbit.csv")
        with pytest.raises(JobError):  # no model for Upbit yet: a failed predict job run
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


@pytest.fixture(scope="module", params=DIALECTS)
def bi(request, tmp_path_factory):
    yield from bi_database(request, tmp_path_factory, request.param)


def utc(value) -> pd.Timestamp:
    """SQLite gives times as UTC text, Postgres as aware datetimes: the same instant either way."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _truth() -> pd.Series:
    closes = pd.read_csv(BINANCE_CSV).tail(SLICE_HOURS)
    return pd.Series(closes["close"].to_numpy(), index=pd.to_datetime(closes["ts"], utc=True))


NEWEST = pd.Timestamp("2023-12-31T23:00Z")
HORIZONS = list(range(1, 25))


def check_latest_forecast(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    assert {utc(t) for t in rows["origin_time"]} == {NEWEST}
    assert [utc(t) for t in rows["target_time"]] == [NEWEST + pd.Timedelta(hours=h) for h in HORIZONS]
    assert (rows["last_close"] == _truth()[NEWEST]).all()
    assert ((rows["yhat_lower"] <= rows["yhat"]) & (rows["yhat"] <= rows["yhat_upper"])).all()
    assert ((rows["change_pct"].astype(float).abs()) < 20).all()


def check_latest_forecast_all(rows, db):
    # Upbit has candles but no model: only the Binance market has a forecast.
    assert set(zip(rows["exchange"], rows["symbol"])) == {("binance", "ETH-USDT")}
    assert rows["horizon"].tolist() == [1, 6, 12, 24]


def check_accuracy_by_horizon_30d(rows, db):
    # Origins are the last 48 hours: horizon h has a known truth for 48 - h of them.
    assert rows["horizon"].tolist() == HORIZONS
    assert rows["n"].tolist() == [LIVE_HOURS - h for h in HORIZONS]
    # The same MAE computed from the raw forecasts and the CSV, not through the view.
    live = db.query("SELECT origin_time, horizon, yhat FROM predictions "
                    "WHERE kind = 'live' AND exchange = 'binance' AND symbol = 'ETH-USDT'")
    truth = _truth()
    live["origin_time"] = live["origin_time"].map(utc)
    live["actual"] = [truth.get(o + pd.Timedelta(hours=int(h))) for o, h in zip(live["origin_time"], live["horizon"])]
    live["naive"] = [truth[o] for o in live["origin_time"]]
    known = live.dropna(subset=["actual"])
    for h in (1, 12, 24):
        at = known[known["horizon"] == h]
        row = rows[rows["horizon"] == h].iloc[0]
        mae, naive = (at["yhat"] - at["actual"]).abs().mean(), (at["naive"] - at["actual"]).abs().mean()
        assert math.isclose(row["mae"], mae, rel_tol=1e-9)
        assert math.isclose(row["naive_mae"], naive, rel_tol=1e-9)
        assert math.isclose(row["rmae"], mae / naive, rel_tol=1e-9)
    assert ((rows["coverage"].astype(float) >= 0) & (rows["coverage"].astype(float) <= 1)).all()


def check_band_coverage_30d(rows, db):
    by_kind = rows.set_index("kind")
    assert rows["kind"].tolist() == ["backtest", "live"]
    assert by_kind.loc["live", "n"] == sum(LIVE_HOURS - h for h in HORIZONS)
    assert by_kind.loc["backtest", "n"] == 7 * 24  # 7 daily origins, all 24 hours known
    shares = rows[["coverage", "below_band", "above_band"]].astype(float).sum(axis=1)
    assert all(math.isclose(s, 1.0) for s in shares)
    assert (rows["band_width_pct"].astype(float) > 0).all()


def check_daily_accuracy(rows, db):
    days = [pd.Timestamp(str(d)).date() for d in rows["day"]]
    # Live targets run from the first live origin + 1 h (2023-12-30T01Z) to the newest candle.
    assert days == [pd.Timestamp("2023-12-30").date(), NEWEST.date()]
    assert rows["n"].sum() == sum(LIVE_HOURS - h for h in HORIZONS)


def check_forecast_vs_actual(rows, db):
    assert rows["horizon"].tolist() == HORIZONS
    origin = NEWEST - pd.Timedelta(hours=24)
    assert {utc(t) for t in rows["origin_time"]} == {origin}
    truth = _truth()
    assert rows["actual"].tolist() == [truth[origin + pd.Timedelta(hours=h)] for h in HORIZONS]
    assert (rows["naive"] == truth[origin]).all()


def check_model_history(rows, db):
    assert len(rows) == 2  # the first training and the retrain
    assert rows["status"].iloc[0] in ("promoted", "retired")
    assert set(rows["status"]) <= {"promoted", "retired", "rejected"}
    assert (rows["n_train"] > 0).all() and (rows["val_rmae"] > 0).all()
    assert (rows["device"] == "cpu").all()


def check_accuracy_by_model_run(rows, db):
    served = db.query("SELECT DISTINCT model_run_id FROM predictions WHERE kind = 'live'")
    assert sorted(rows["model_run_id"]) == sorted(served["model_run_id"])
    assert rows["n"].sum() == sum(LIVE_HOURS - h for h in HORIZONS)
    assert (rows["live_rmae"] > 0).all()


def check_candle_gaps(rows, db):
    # Upbit maintenance in the slice (tests/data/README.md); the Binance slice has no gap.
    got = [(ex, utc(a), utc(b), int(n)) for ex, a, b, n in
           zip(rows["exchange"], rows["last_before_gap"], rows["first_after_gap"], rows["missing_hours"])]
    assert got == [("upbit", utc("2023-12-03T15Z"), utc("2023-12-03T21Z"), 5),
                   ("upbit", utc("2023-12-31T17Z"), utc("2023-12-31T21Z"), 3)]


def check_candle_lag(rows, db):
    assert list(zip(rows["exchange"], rows["symbol"])) == [("binance", "ETH-USDT"), ("upbit", "ETH-KRW")]
    assert {utc(t) for t in rows["newest_candle"]} == {NEWEST}
    now = datetime.now(timezone.utc)
    expected = int((now - NEWEST.to_pydatetime()) / timedelta(hours=1)) - 1
    assert all(abs(int(lag) - expected) <= 1 for lag in rows["lag_hours"])


def check_job_failures_last_day(rows, db):
    assert list(zip(rows["job"], rows["exchange"], rows["symbol"])) == [("predict", "upbit", "ETH-KRW")]
    assert "no promoted model" in rows["message"].iloc[0]


def check_job_summary_last_day(rows, db):
    runs = {(j, e, st): n for j, e, st, n in zip(rows["job"], rows["exchange"], rows["status"], rows["runs"])}
    assert runs[("predict", "binance", "ok")] == LIVE_HOURS
    assert runs[("train", "binance", "ok")] == 2
    assert runs[("predict", "upbit", "failed")] == 1
    assert runs[("import", "binance", "ok")] == 1 + LIVE_HOURS
    assert (rows["avg_seconds"].astype(float) >= 0).all()


CHECKS = {name.removeprefix("check_"): fn for name, fn in globals().items() if name.startswith("check_")}


def test_the_doc_has_ten_or_more_queries_each_for_both_databases_and_each_checked():
    queries = documented_queries()
    assert len(queries) >= 10
    for name, variants in queries.items():
        assert set(variants) == set(DIALECTS), f"{name} lacks a variant for {set(DIALECTS) - set(variants)}"
    assert set(queries) == set(CHECKS), "every documented query has a check here, and only those"


@pytest.mark.parametrize("name", sorted(documented_queries()))
def test_documented_query_runs_and_answers(bi, name):
    rows = bi.query(documented_queries()[name][bi.dialect])
    assert len(rows) > 0, f"{name} returned no rows on {bi.dialect}"
    CHECKS[name](rows, bi)


def test_every_table_and_view_column_is_documented(bi):
    text = DOC.read_text()
    for table in ("candles", "predictions", "model_runs", "model_weights", "job_runs",
                  "latest_forecast", "forecast_accuracy"):
        section = text.split(f"### {table}", 1)[1].split("\n### ", 1)[0]
        for column in bi.query(f"SELECT * FROM {table} WHERE 1 = 0").columns:
            assert re.search(rf"\b{column}\b", section), f"{table}.{column} is not documented"


def test_latest_forecast_gives_the_rows_of_its_plain_definition(bi):
    """Migration 0003 finds each market's newest origin by index probes; the rows must be those of
    the plain definition: the live rows of the newest live origin of each market."""
    plain = bi.query("""
        SELECT p.exchange, p.symbol, p.interval, p.origin_time, p.target_time, p.horizon,
               p.yhat, p.yhat_lower, p.yhat_upper, p.model_run_id
        FROM predictions p
        JOIN (SELECT exchange, symbol, interval, MAX(origin_time) AS origin_time FROM predictions
              WHERE kind = 'live' GROUP BY exchange, symbol, interval) n
          ON p.exchange = n.exchange AND p.symbol = n.symbol AND p.interval = n.interval
         AND p.origin_time = n.origin_time
        WHERE p.kind = 'live'
        ORDER BY p.exchange, p.symbol, p.horizon""")
    view = bi.query("SELECT * FROM latest_forecast ORDER BY exchange, symbol, horizon")
    assert len(view) == 24
    pd.testing.assert_frame_equal(view, plain)
