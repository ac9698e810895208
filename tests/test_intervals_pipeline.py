"""One market in two intervals at once (1h and 1d), through import, train, predict, backtest and the
views, on SQLite and Postgres: neither ever touches the other's candles, models, forecasts or job
runs. Day candles are made from the real 2023 hours in this test (the only place resampling is
allowed) and start at 00:00 UTC, as Binance's and Upbit's days do."""
from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from exchanges.base import parse_market
from forecaster.config import ModelConfig
from jobs.backtest import backtest_market
from jobs.bootstrap import bootstrap
from jobs.import_csv import import_csv
from jobs.predict import predict_market
from jobs.settings import load_settings
from reports.status import collect_status
from jobs.train import train_market
from tests.helpers.paths import BINANCE_CSV

HOURLY, DAILY = parse_market("binance:ETH-USDT"), parse_market("binance:ETH-USDT@1d")
TINY_1H = ModelConfig.for_interval("1h", lookback=48, hidden_size=8, max_epochs=2, val_steps=200, patience=1)
TINY_1D = ModelConfig.for_interval("1d", lookback=20, patch=5, hidden_size=8, max_epochs=2, val_steps=60, patience=1)
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


def _day_candles() -> pd.DataFrame:
    hours = pd.read_csv(BINANCE_CSV)
    hours.index = pd.to_datetime(hours.pop("ts"), utc=True)
    days = hours.astype(float).resample("24h").agg(AGG).dropna()
    return days.reset_index().rename(columns={"index": "ts"}).assign(
        ts=lambda d: d["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


@pytest.fixture
def services(migrated, tmp_path):
    url, _, _ = migrated
    pd.read_csv(BINANCE_CSV).tail(1_400).to_csv(tmp_path / "hours.csv", index=False)
    _day_candles().to_csv(tmp_path / "days.csv", index=False)
    svc = bootstrap(load_settings(database_url=url, device="cpu"))
    import_csv(svc, tmp_path / "hours.csv", HOURLY)
    import_csv(svc, tmp_path / "days.csv", DAILY)
    yield svc
    svc.close()


def _query(svc, sql, **params):
    with svc.engine.connect() as conn:
        return conn.execute(sa.text(sql), params).mappings().all()


def test_hourly_and_daily_candles_of_one_market_never_touch_each_other(services):
    counts = {r["interval"]: r["n"] for r in _query(
        services, "SELECT interval, COUNT(*) AS n FROM candles GROUP BY interval")}
    assert counts == {"1h": 1_400, "1d": 365}

    hourly = train_market(services, HOURLY, train_hours=1_200, config=TINY_1H)
    daily = train_market(services, DAILY, train_hours=300, config=TINY_1D)
    assert hourly.status == daily.status == "promoted"  # the second did not retire the first
    runs = {r["interval"]: r for r in _query(services, "SELECT * FROM model_runs WHERE status = 'promoted'")}
    assert runs["1h"]["id"] == hourly.model_run_id and runs["1d"]["id"] == daily.model_run_id

    h, d = predict_market(services, HOURLY), predict_market(services, DAILY)
    assert (h.rows, d.rows) == (24, 7)
    latest = _query(services, "SELECT interval, COUNT(*) AS n, MIN(target_time) AS first, MAX(origin_time) AS origin "
                              "FROM latest_forecast GROUP BY interval ORDER BY interval")
    by_interval = {r["interval"]: r for r in latest}
    assert by_interval["1h"]["n"] == 24 and by_interval["1d"]["n"] == 7
    day_origin = pd.Timestamp(by_interval["1d"]["origin"])
    assert pd.Timestamp(by_interval["1d"]["first"]) == day_origin + pd.Timedelta(days=1)  # a day ahead
    live = _query(services, "SELECT interval, model_run_id FROM predictions WHERE kind = 'live'")
    assert {(r["interval"], r["model_run_id"]) for r in live} == {("1h", hourly.model_run_id),
                                                                  ("1d", daily.model_run_id)}

    # A backtest of the day market writes day rows only, in day steps.
    result = backtest_market(services, DAILY, days=20, step=1, retrain_every=10, train_hours=300,
                             horizon=7, config=TINY_1D)
    assert result.summary.n_origins == 20 and list(result.table["horizon"]) == list(range(1, 8))
    assert "empirical" in result.report() and "7 days" in result.report()
    rows = _query(services, "SELECT DISTINCT interval FROM predictions WHERE kind = 'backtest'")
    assert [r["interval"] for r in rows] == ["1d"]

    # Every job run says which of the two it was for; status shows both, each with its own figures.
    jobs = _query(services, "SELECT job, interval, COUNT(*) AS n FROM job_runs GROUP BY job, interval")
    assert {(r["job"], r["interval"]) for r in jobs} == {
        ("import", "1h"), ("import", "1d"), ("train", "1h"), ("train", "1d"), ("predict", "1h"),
        ("predict", "1d"), ("backtest", "1d")}
    report = collect_status(services, [HOURLY, DAILY])
    one, two = report["markets"]
    assert (one["market"], one["interval"], one["candles"]) == ("binance:ETH-USDT", "1h", 1_400)
    assert (two["market"], two["interval"], two["candles"]) == ("binance:ETH-USDT@1d", "1d", 365)
    assert one["model"]["id"] == hourly.model_run_id and two["model"]["id"] == daily.model_run_id
    assert one["jobs"]["backtest"] is None and two["jobs"]["backtest"]["status"] == "ok"

    # The accuracy view judges each forecast against its own interval's candle.
    judged = _query(services, "SELECT DISTINCT interval FROM forecast_accuracy WHERE kind = 'backtest'")
    assert [r["interval"] for r in judged] == ["1d"]


def test_a_five_minute_market_is_imported_trained_and_forecast_an_hour_ahead(migrated, tmp_path):
    """5m, the interval added last, through the same use cases with nothing of its own: its
    defaults forecast 12 steps (an hour) ahead, every target on its 5-minute grid."""
    from tests.helpers.candle_data import load_csv_slice, split_hours
    market = parse_market("binance:ETH-USDT@5m")
    parts = split_hours(load_csv_slice(BINANCE_CSV)[-1_100:], 12)  # test data only: synthetic 5m
    pd.DataFrame({"ts": [c.open_time.strftime("%Y-%m-%dT%H:%M:%SZ") for c in parts],
                  **{k: [getattr(c, k) for c in parts] for k in AGG}}).to_csv(tmp_path / "5m.csv", index=False)
    url, _, _ = migrated
    svc = bootstrap(load_settings(database_url=url, device="cpu"))
    try:
        assert import_csv(svc, tmp_path / "5m.csv", market).new_rows == 13_200
        config = ModelConfig.for_interval("5m", val_steps=1_000)
        assert (config.horizon, config.lookback) == (12, 576)
        trained = train_market(svc, market, train_hours=3_000, config=config)
        forecast = predict_market(svc, market)
        rows = _query(svc, "SELECT origin_time, target_time, horizon FROM latest_forecast WHERE interval = '5m' "
                           "ORDER BY horizon")
    finally:
        svc.close()
    assert trained.status == "promoted" and forecast.rows == 12
    origin = pd.Timestamp(rows[0]["origin_time"])
    assert [pd.Timestamp(r["target_time"]) - origin for r in rows] == [pd.Timedelta(minutes=5 * h) for h in range(1, 13)]
